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
import sys
import time
from typing import Any

import pytest

from tests.bridge_helpers import GW, LONG, payload, result_for, running_bridge, topic, until
from tests.mqtt_broker import Broker, Watcher

pytestmark = pytest.mark.mqtt

FLOOD_PER_S = 2000
FLOOD_S = 3.0
MAX_DELAY_S = 1.0


PACER = """
import sys, time
rate, seconds, line = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3].encode() + b"\\n"
start, sent, total = time.monotonic(), 0, int(rate * seconds)
while sent < total:
    due = min(total, int((time.monotonic() - start) * rate) + 1)
    sys.stdout.buffer.write(line * (due - sent))
    sys.stdout.buffer.flush()
    sent = due
    time.sleep(0.005)
"""


async def _line_publisher(broker: Broker, band: str, verb: str) -> asyncio.subprocess.Process:
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


class Flood:
    """`per_s` commands a second for `seconds` on one command topic, from two processes of
    their own (a pacer piped into `mosquitto_pub -l`, a message a line), so the flood keeps
    its rate however busy the bridge under test keeps this process."""

    def __init__(self, broker: Broker, band: str, verb: str, body: str, per_s: int) -> None:
        self.args = (broker, band, verb, body, per_s)
        self.total = int(per_s * FLOOD_S)
        self._procs: list[asyncio.subprocess.Process] = []

    async def __aenter__(self) -> Flood:
        broker, band, verb, body, per_s = self.args
        read, write = os.pipe()
        try:
            self._procs.append(
                await asyncio.create_subprocess_exec(
                    "mosquitto_pub",
                    *broker.args(None),
                    *("-q", "1", "-t", topic(band, f"cmd/{verb}"), "-l"),
                    stdin=read,
                    stderr=asyncio.subprocess.DEVNULL,
                )
            )
            self._procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable, "-c", PACER, str(per_s), str(FLOOD_S), body, stdout=write
                )
            )
        finally:
            os.close(read)
            os.close(write)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for proc in reversed(self._procs):
            if exc[0] is not None and proc.returncode is None:
                proc.terminate()
            await proc.wait()


async def test_a_flood_of_2000_commands_a_second_never_delays_a_stop_replies_state_or_events(
    broker: Broker,
) -> None:
    bands = {"a": "sim://?seed=1", "b": "sim://?seed=2", "c": "sim://?seed=3"}
    async with running_bridge(broker, bands) as bridge:
        await bridge.start_local("a", LONG)
        await bridge.start_local("b", LONG)
        async with Watcher(broker, f"acudevice/{GW}/#") as watch:
            async with (
                Flood(broker, "a", "pause", '{"request_id": "p"}', 700) as pauses,
                Flood(broker, "b", "intensity", '{"percent": 90}', 700) as lowerings,
                Flood(broker, "c", "stop", "{}", 600) as stops,  # stops skip every limit
            ):
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
            flooded_at = time.time()
            sent = pauses.total + lowerings.total + stops.total
            # The broker may still be delivering the last of it: every command is counted.
            await until(
                lambda: (
                    bridge.gate.counters.bypassed
                    + bridge.gate.counters.refused
                    + bridge.gate.counters.admitted
                    >= sent + 1
                )
            )
            assert time.time() - flooded_at < MAX_DELAY_S  # the bridge kept up with the flood

        assert payload(reply)["status"] == "ok", payload(reply)
        assert reply.at - sent_at < MAX_DELAY_S, f"the stop's reply took {reply.at - sent_at:.2f} s"
        assert finished.at - sent_at < MAX_DELAY_S and payload(finished)["outcome"] == "stopped"

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
        assert gate.bypassed == stops.total + 1  # every stop ran
        assert gate.refused > 0.8 * (pauses.total + lowerings.total)
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
                junk = await _line_publisher(broker, "junk", "x")
                assert junk.stdin is not None
                junk.stdin.write((b"j" * 64_000 + b"\n") * 250)
                await junk.stdin.drain()
                junk.stdin.close()
                await junk.wait()
                sock = slow.socket()
                assert len(sock.recv(1 << 20, socket.MSG_PEEK | socket.MSG_DONTWAIT)) > 50_000
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
                # A session ends during the stall: an emergency stop ends it at once (a stop
                # would end it only once released, seconds later).
                reason = await bridge.agents["a"].stop(emergency=True)
                assert reason == "venting"
                await until(lambda: bridge.agents["a"].session is None, within_s=5)
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


async def test_fleet_run_survives_a_band_that_stops_answering(
    broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    """--fleet-run starts a session on every band; a band whose link has gone silent (its
    STATUS times out) is reported in one line, and the others start: it once ended the
    whole gateway."""
    from acudevice.cli.bridge import _start_fleet

    bands = {"good": "sim://?seed=1", "mute": "sim://?seed=2&fault=drop:100"}
    async with running_bridge(broker, bands) as bridge:
        await asyncio.sleep(0.3)  # the mute band's link is silent from 100 ms on
        async with asyncio.timeout(20):
            await _start_fleet(bridge, LONG)
        assert bridge.agents["good"].session is not None
        assert bridge.agents["mute"].session is None
    said = capsys.readouterr().err
    # Its STATUS times out, or its heartbeats already called the link silent: one line either way.
    assert "mute: no answer to STATUS" in said or "mute: link lost" in said, said
    assert len(said.strip().splitlines()) == 1
