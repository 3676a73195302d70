"""The publishing path: no wait per telemetry message, no Nagle stall, nothing urgent behind
telemetry, and a bounded telemetry buffer that drops the oldest and says how many."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import socket
import time
from pathlib import Path
from types import ModuleType

import pytest

from acudevice.bridge.acl import passwd_commands
from acudevice.bridge.mqtt import BrokerAddress, MqttClient, paho_client
from acudevice.bridge.outgoing import Message, Outgoing
from tests.mqtt_broker import Broker, Watcher

pytestmark = pytest.mark.mqtt
ROOT = Path(__file__).resolve().parent.parent


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mqtt_fleet", ROOT / "bench" / "mqtt_fleet.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_mosquitto_config_the_project_writes_sets_tcp_nodelay(tmp_path: Path) -> None:
    broker = Broker(tmp_path / "b")
    configs = {
        "tests/mqtt_broker.py": broker.conf.read_text(),
        "bench/mqtt_fleet.py": _bench().mosquitto_conf(1883),
        "acudevice mqtt-acl": passwd_commands(["kitchen"]),
        "docs/mqtt.md": (ROOT / "docs" / "mqtt.md").read_text(),
    }
    for where, text in configs.items():
        lines = [line.lstrip("# ").strip() for line in text.splitlines()]
        assert "set_tcp_nodelay true" in lines, where


@pytest.mark.parametrize("tls", [False, True], ids=["mqtt", "mqtts"])
async def test_the_bridge_socket_has_tcp_nodelay(tmp_path: Path, tls: bool) -> None:
    broker = Broker(tmp_path / "b", tls=tls)
    broker.start()
    try:
        client = MqttClient(BrokerAddress.parse(broker.url), client_id="nodelay", ca_file=broker.ca)
        async with client.connect() as link:
            sock = link.raw_socket()
            assert sock is not None
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        broker.stop()


async def test_the_paho_client_is_where_publish_nowait_expects_it() -> None:
    """Fails loudly when an aiomqtt release moves `Client._client` (pyproject pins both)."""
    import aiomqtt
    from paho.mqtt.client import MQTTMessageInfo

    paho = paho_client(aiomqtt.Client("127.0.0.1", 1))
    info = paho.publish("t", b"x", 0, False)  # not connected: refused, not raised
    assert isinstance(info, MQTTMessageInfo) and info.rc != 0
    assert callable(info.is_published) and callable(paho.socket)


async def test_telemetry_handed_without_waiting_arrives_in_order(broker: Broker) -> None:
    client = MqttClient(BrokerAddress.parse(broker.url), client_id="fast")
    async with Watcher(broker, "fast/#") as watch, client.connect() as link:
        out = Outgoing()
        out.attach(link)
        for i in range(500):
            out.telemetry("fast/t", str(i))  # a plain call: nothing to await
        got = await watch.wait_for(lambda s: s.payload == "499", within_s=10)
        assert got.topic == "fast/t"
        assert [int(s.payload) for s in watch.on("fast/t")] == list(range(500))
        assert out.counters.dropped_messages == 0
        out.detach()


async def test_a_stalled_broker_fills_the_buffer_which_drops_the_oldest_and_urgent_goes_first(
    broker: Broker,
) -> None:
    """The broker stops reading (SIGSTOP): the socket fills, then paho's small window, then our
    buffer of 10, which drops its oldest. A state message queued during the stall still
    arrives within a second of the broker's return, ahead of the buffered telemetry."""
    assert broker.proc is not None
    client = MqttClient(BrokerAddress.parse(broker.url), client_id="stall")
    padding = "x" * 32_000
    async with Watcher(broker, "stall/#") as watch, client.connect() as link:
        out = Outgoing(buffer=10)
        out.attach(link)
        os.kill(broker.proc.pid, signal.SIGSTOP)
        offered = 0
        try:
            async with asyncio.timeout(20):
                while out.counters.dropped_messages < 25:
                    out.telemetry("stall/t", f"{offered} {padding}")
                    offered += 1
                    await asyncio.sleep(0.001)  # paho writes between two samples
            buffered = list(range(offered - 10, offered))
            out.urgent(Message("stall/state", "state", qos=1, retain=False))
            await asyncio.sleep(0.05)  # a writer hands it to paho
        finally:
            resumed = time.time()
            os.kill(broker.proc.pid, signal.SIGCONT)
        state = await watch.wait_for(lambda s: s.topic == "stall/state", within_s=10)
        assert state.at - resumed < 1.0
        dropped = out.counters.dropped_messages
        await watch.wait_for(lambda s: s.payload.startswith(f"{offered - 1} "), within_s=10)
        numbers = [int(s.payload.split(" ", 1)[0]) for s in watch.on("stall/t")]
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
        assert len(numbers) + dropped == offered  # every sample is delivered or counted
        assert out.counters.dropped_samples == dropped
        assert set(buffered) <= set(numbers)  # the newest survived, the oldest went
        order = [s.topic for s in watch.seen]
        first_buffered = next(
            i for i, s in enumerate(watch.seen) if s.payload.startswith(f"{buffered[0]} ")
        )
        assert order.index("stall/state") < first_buffered
        out.detach()


async def test_qos1_waits_for_the_brokers_puback_and_qos0_never_waits(broker: Broker) -> None:
    """QoS 1 (replies, events) keeps its guarantee: publish returns once the broker has it.
    paho's costly per-message callback is set only while such a confirmation is awaited."""
    assert broker.proc is not None
    client = MqttClient(BrokerAddress.parse(broker.url), client_id="confirm")
    async with Watcher(broker, "confirm/#") as watch, client.connect() as link:
        paho = paho_client(client._client)
        assert paho.on_publish is None
        os.kill(broker.proc.pid, signal.SIGSTOP)
        try:
            pending = asyncio.create_task(link.publish("confirm/event", "e1", qos=1))
            link.publish_nowait("confirm/telemetry", "t1")  # returns at once, stalled or not
            await asyncio.sleep(0.3)
            assert not pending.done() and paho.on_publish is not None
        finally:
            os.kill(broker.proc.pid, signal.SIGCONT)
        async with asyncio.timeout(10):
            await pending
        assert paho.on_publish is None
        await watch.wait_for(lambda s: s.payload == "e1")
        await watch.wait_for(lambda s: s.payload == "t1")
