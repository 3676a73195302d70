"""A flood of commands, a slow subscriber, a stalled broker: stops, replies, state and events
stay on time.

Delays are measured end to end, through a real Mosquitto, from the moment a command is sent
(or a message is made, by its `ts`, or the broker resumes) to the moment a subscriber reads
it. The bound is the issue's: a second, on a busy 2-core machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
from typing import Any

import pytest

from tests.bridge_helpers import GW, LONG, payload, result_for, running_bridge, topic, until
from tests.mqtt_broker import Broker, Watcher

pytestmark = pytest.mark.mqtt

FLOOD_PER_S = 2000
FLOOD_S = 3.0
MAX_DELAY_S = 1.0


async def _flooder(broker: Broker, band: str, verb: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "mosquitto_pub",
        *broker.args(None),
        "-q",
        "1",
        "-t",
        topic(band, f"cmd/{verb}"),
        "-l",
        stdin=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def _flood(streams: list[tuple[asyncio.subprocess.Process, bytes]], seconds: float) -> int:
    """FLOOD_PER_S lines a second over the streams (`mosquitto_pub -l`: a message a line)."""
    per_tick = FLOOD_PER_S // 100
    shares = [per_tick // len(streams) + (i < per_tick % len(streams)) for i in range(len(streams))]
    sent = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    tick = 0
    while loop.time() - start < seconds:
        for (proc, line), share in zip(streams, shares, strict=True):
            assert proc.stdin is not None
            proc.stdin.write(line * share)
            sent += share
        tick += 1
        await asyncio.sleep(max(0.0, start + tick * 0.01 - loop.time()))
    for proc, _ in streams:
        assert proc.stdin is not None
        await proc.stdin.drain()
    return sent


async def test_a_flood_of_2000_commands_a_second_never_delays_a_stop_replies_state_or_events(
    broker: Broker,
) -> None:
    bands = {"a": "sim://?seed=1", "b": "sim://?seed=2", "c": "sim://?seed=3"}
    async with running_bridge(broker, bands) as bridge:
        await bridge.start_local("a", LONG)
        await bridge.start_local("b", LONG)
        async with Watcher(broker, f"acudevice/{GW}/#") as watch:
            streams = [
                (await _flooder(broker, "a", "pause"), b'{"request_id": "p"}\n'),
                (await _flooder(broker, "b", "intensity"), b'{"percent": 90}\n'),
                (await _flooder(broker, "c", "stop"), b"{}\n"),  # stops skip every limit
            ]
            flood = asyncio.create_task(_flood(streams, FLOOD_S))
            try:
                await until(lambda: bridge.gate.counters.refused > FLOOD_PER_S / 2)  # in full flow
                sent_at = time.time()
                await broker.pub(topic("a", "cmd/stop"), '{"request_id": "s1"}')
                reply = await watch.wait_for(result_for("s1"), within_s=30)
                finished = await watch.wait_for(
                    lambda s: (
                        s.topic == topic("a", "events")
                        and payload(s)["event"] == "session-finished"
                    ),
                    within_s=30,
                )
                sent = await flood
            finally:
                for proc, _ in streams:
                    assert proc.stdin is not None
                    proc.stdin.close()
                for proc, _ in streams:
                    await proc.wait()
            # The broker may still be delivering the last of it: every command is counted.
            await until(
                lambda: (
                    bridge.gate.counters.bypassed
                    + bridge.gate.counters.refused
                    + bridge.gate.counters.admitted
                    >= sent + 1
                )
            )

        assert payload(reply)["status"] == "ok", payload(reply)
        assert reply.at - sent_at < MAX_DELAY_S, f"the stop's reply took {reply.at - sent_at:.2f} s"
        assert finished.at - sent_at < MAX_DELAY_S and payload(finished)["outcome"] == "stopped"
        assert sent >= FLOOD_PER_S * FLOOD_S * 0.95

        # State and events, made during the flood, reached a subscriber within a second.
        during = [s for s in watch.seen if s.topic.endswith(("/state", "/events"))]
        late = [(s.topic, round(s.at - payload(s)["ts"], 2)) for s in during if not s.retained]
        assert late and all(delay < MAX_DELAY_S for _, delay in late), late
        # ... and so did every telemetry batch, none missing.
        batches = [
            json.loads(s.payload) | {"at": s.at} for s in watch.on(f"acudevice/{GW}/telemetry")
        ]
        assert batches and all(b["at"] - b["sent"] < MAX_DELAY_S for b in batches)
        seqs = [b["seq"] for b in batches]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))

        # Over the limits: refused and counted, one reply per burst, not one per command.
        gate = bridge.gate.counters
        assert gate.refused > 0.8 * sent * 2 / 3
        assert gate.bypassed > 0.9 * sent / 3  # every stop ran
        refusals = [
            s
            for s in watch.seen
            if s.topic.endswith("/cmd/result")
            and (payload(s)["reason"] or "").startswith("too many commands")
        ]
        assert 0 < len(refusals) == gate.refusals_answered <= gate.admitted + 2


def _slow_subscriber(broker: Broker) -> Any:
    """A paho client subscribed to everything that then stops reading its socket."""
    import paho.mqtt.client as paho

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="slow")
    subscribed: list[int] = []
    client.on_subscribe = lambda *args: subscribed.append(1)
    client.connect("127.0.0.1", broker.port, keepalive=60)
    client.subscribe("#", qos=0)
    deadline = time.monotonic() + 10
    while not subscribed and time.monotonic() < deadline:
        client.loop(timeout=0.05)
    assert subscribed, "the slow subscriber could not subscribe"
    return client  # from here on nobody calls loop(): nothing is read


async def test_a_subscriber_that_stops_reading_delays_nothing_of_ours(broker: Broker) -> None:
    bands = {"a": "sim://?seed=1", "b": "sim://?seed=2"}
    async with running_bridge(broker, bands) as bridge:
        await bridge.start_local("a", LONG)
        slow = _slow_subscriber(broker)
        try:
            async with Watcher(broker, f"acudevice/{GW}/#") as watch:
                # 16 MB for the slow subscriber, more than its socket and the broker's hold.
                junk = await _flooder(broker, "junk", "x")
                assert junk.stdin is not None
                junk.stdin.write((b"j" * 64_000 + b"\n") * 250)
                await junk.stdin.drain()
                junk.stdin.close()
                await junk.wait()
                sock = slow.socket()
                assert len(sock.recv(1 << 20, socket.MSG_PEEK | socket.MSG_DONTWAIT)) > 100_000
                sent_at = time.time()
                await broker.pub(topic("a", "cmd/stop"), '{"request_id": "s2"}')
                reply = await watch.wait_for(result_for("s2"), within_s=30)
                mark = len(watch.seen)
                for band in bands:  # a state of each band made after the stop
                    await watch.wait_for(lambda s, b=band: s.topic == topic(b, "state"), since=mark)
        finally:
            slow.socket().close()
        assert payload(reply)["status"] == "ok" and reply.at - sent_at < MAX_DELAY_S
        states = [s for s in watch.seen if s.topic.endswith("/state") and not s.retained]
        assert {s.topic for s in states} == {topic("a", "state"), topic("b", "state")}
        assert all(s.at - payload(s)["ts"] < MAX_DELAY_S for s in states)
        assert bridge.out.counters.dropped_messages == 0


async def test_events_made_while_the_broker_stalls_arrive_within_a_second_of_its_return(
    broker: Broker,
) -> None:
    assert broker.proc is not None
    bands = {"a": "sim://?seed=1&speed=5", "b": "sim://?seed=2&speed=5"}
    async with running_bridge(broker, bands) as bridge:
        await bridge.start_local("a", LONG)
        await bridge.start_local("b", LONG)
        async with Watcher(broker, f"acudevice/{GW}/#") as watch:
            os.kill(broker.proc.pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(0.3)
                reason = await bridge.agents["a"].stop()  # a session ends during the stall
                assert reason == "stopped"
                await asyncio.sleep(0.4)  # telemetry piles up meanwhile
            finally:
                resumed = time.time()
                os.kill(broker.proc.pid, signal.SIGCONT)
            finished = await watch.wait_for(
                lambda s: (
                    s.topic == topic("a", "events") and payload(s)["event"] == "session-finished"
                ),
                within_s=10,
            )
            state = await watch.wait_for(
                lambda s: s.topic == topic("a", "state") and payload(s)["session"] == "idle",
                within_s=10,
            )
        assert finished.at - resumed < MAX_DELAY_S
        assert state.at - resumed < MAX_DELAY_S
        assert bridge.connected.is_set()  # a stall shorter than the keepalive is no outage
