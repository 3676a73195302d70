"""Losing the broker, and losing the bridge: bands are never left without a safe ending."""

from __future__ import annotations

import asyncio
import signal

import pytest

from acudevice.protocol import FaultCode, FirmwareState
from simulator.loopback import Simulation
from simulator.options import SimOptions
from simulator.server import TcpServer
from tests.bridge_helpers import (
    GW,
    LONG,
    bridge_command,
    command,
    payload,
    running_bridge,
    start_body,
    topic,
    until,
)
from tests.mqtt_broker import Broker, Watcher

pytestmark = pytest.mark.mqtt


async def test_broker_killed_mid_session_stops_remote_sessions_after_the_grace_only(
    broker: Broker,
) -> None:
    bands = {"remote": "sim://?speed=5&seed=1", "local": "sim://?speed=5&seed=2"}
    async with running_bridge(
        broker,
        bands,
        allow_remote_start=True,
        broker_grace_s=0.5,
        backoff_initial_s=4.0,
        backoff_max_s=4.0,
    ) as bridge:
        async with Watcher(broker, f"acudevice/{GW}/#") as watch:
            reply = await command(broker, watch, "remote", "start", start_body(LONG, "r1"), "r1")
            assert reply["status"] == "ok", reply["reason"]
        await bridge.start_local("local", LONG)
        remote, local = bridge.agents["remote"], bridge.agents["local"]
        remote_device, local_session = remote.device, local.session
        assert remote_device is not None and local_session is not None

        broker.kill()
        await until(lambda: not bridge.connected.is_set())
        await until(lambda: remote.session is None)  # stopped after the grace period
        # The band is still connected and heartbeated; the local session goes on.
        assert remote.device is remote_device and remote_device.connected
        status = await remote_device.status()
        assert (
            status.state in (FirmwareState.IDLE, FirmwareState.VENTING)
            and status.fault is FaultCode.NONE
        )
        assert local.session is local_session
        assert (await local.device.status()).state is FirmwareState.RUNNING  # type: ignore[union-attr]

        broker.start()  # the same port; the bridge's next try is 2-4 s away
        async with Watcher(broker, f"acudevice/{GW}/#") as watch:
            outage = await watch.wait_for(
                lambda s: (
                    s.topic == topic("remote", "events") and payload(s)["event"] == "broker-outage"
                )
            )
            assert "stopped the remotely started session" in payload(outage)["detail"]
            finished = await watch.wait_for(
                lambda s: (
                    s.topic == topic("remote", "events")
                    and payload(s)["event"] == "session-finished"
                )
            )
            assert (
                payload(finished)["outcome"] == "stopped"
                and payload(finished)["origin"] == "remote"
            )
            back = await watch.wait_for(lambda s: s.topic == f"acudevice/{GW}/events")
            assert (
                payload(back)["event"] == "broker-outage"
                and "back after" in payload(back)["detail"]
            )
            status_now = await broker.retained(f"acudevice/{GW}/status")
            assert status_now[f"acudevice/{GW}/status"] == "online"
        assert local.session is local_session  # still running after the outage
        assert (await remote_device.status()).fault is FaultCode.NONE  # heartbeated throughout


async def test_sigkill_of_the_bridge_publishes_the_will_and_the_band_vents_by_its_watchdog(
    broker: Broker,
) -> None:
    sim = Simulation(SimOptions(speed=5, seed=3))
    server = TcpServer(sim)
    port = await server.start()
    proc = await asyncio.create_subprocess_exec(
        *bridge_command(broker, "--device", f"band=tcp://127.0.0.1:{port}", "--allow-remote-start"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with Watcher(broker, f"acudevice/{GW}/#") as watch:
            await watch.wait_for(
                lambda s: s.topic == topic("band", "availability") and s.payload == "online"
            )
            reply = await command(broker, watch, "band", "start", start_body(LONG, "w1"), "w1")
            assert reply["status"] == "ok", reply["reason"]
            await until(lambda: sim.device.true_level > 3_000)
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            will = await watch.wait_for(
                lambda s: s.topic == f"acudevice/{GW}/status" and s.payload == "offline"
            )
            assert not will.retained  # delivered live by the broker, as the last will
        await until(lambda: sim.device.firmware.state is FirmwareState.FAULT, within_s=10)
        assert sim.device.firmware.fault is FaultCode.WATCHDOG
        await until(lambda: sim.device.true_level < 2_000, within_s=10)
        retained = await broker.retained(f"acudevice/{GW}/status")
        assert retained == {f"acudevice/{GW}/status": "offline"}
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await server.close()
        await sim.stop()
