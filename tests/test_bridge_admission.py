"""Commands in: the incoming queue keeps stops, the gate limits the rest; the counters say so."""

from __future__ import annotations

import asyncio
import json
import logging
from types import SimpleNamespace

import pytest

from acudevice.bridge.admission import CommandGate, Limits
from acudevice.bridge.incoming import IncomingQueue
from acudevice.bridge.outgoing import Counters
from acudevice.bridge.payloads import CommandResult
from acudevice.bridge.stats import report_stats, snapshot


def _msg(topic: str) -> SimpleNamespace:
    return SimpleNamespace(topic=topic)


@pytest.mark.unit
def test_a_full_incoming_queue_drops_the_oldest_ordinary_message_and_serves_stops_first() -> None:
    queue = IncomingQueue(bound=3, precious=lambda m: m.topic.endswith("/stop"))
    for i in range(5):
        queue.put_nowait(_msg(f"gw/b/cmd/pause{i}"))
    queue.put_nowait(_msg("gw/b/cmd/stop"))
    assert queue.dropped == 2 and queue.qsize() == 4
    assert queue.get_nowait().topic == "gw/b/cmd/stop"  # ahead of the flood
    assert [m.topic for m in queue.take_waiting()] == [f"gw/b/cmd/pause{i}" for i in (2, 3, 4)]
    assert queue.empty()


@pytest.mark.unit
async def test_the_gate_limits_each_band_answers_once_per_burst_and_never_limits_a_stop() -> None:
    handled: list[tuple[str, str]] = []
    replies: list[CommandResult] = []
    now = [0.0]

    async def handle(band: str, verb: str, raw: bytes, retained: bool) -> None:
        handled.append((band, verb))

    gate = CommandGate(
        {"a", "b"},
        handle,
        replies.append,
        Limits(per_band_per_s=2, per_gateway_per_s=100, burst_s=1, lane=8),
        clock=lambda: now[0],
    )
    for _ in range(5):
        gate.submit("a", "pause", b'{"request_id": "p1"}', retained=False)
        gate.submit("a", "stop", b"", retained=False)
    await asyncio.sleep(0.01)
    assert handled.count(("a", "stop")) == 5  # every stop ran
    assert handled.count(("a", "pause")) == 2  # the bucket held two
    assert gate.counters.refused == 3 and gate.counters.refusals_answered == 1
    assert [(r.status, r.request_id) for r in replies] == [("refused", "p1")]
    assert "too many commands" in (replies[0].reason or "")
    now[0] += 1.0  # the bucket refills; a new burst gets its own one reply
    for _ in range(4):
        gate.submit("a", "pause", b"", retained=False)
    await asyncio.sleep(0.01)
    assert handled.count(("a", "pause")) == 4 and len(replies) == 2
    gate.submit("b", "pause", b"", retained=False)  # another band has its own bucket
    await asyncio.sleep(0.01)
    assert handled[-1] == ("b", "pause")
    await gate.close()


@pytest.mark.unit
async def test_commands_of_one_band_run_one_at_a_time_and_a_full_lane_refuses() -> None:
    release = asyncio.Event()
    running: list[str] = []

    async def handle(band: str, verb: str, raw: bytes, retained: bool) -> None:
        running.append(raw.decode())
        await release.wait()

    replies: list[CommandResult] = []
    gate = CommandGate({"a"}, handle, replies.append, Limits(per_band_per_s=100, lane=2))
    for i in range(4):
        gate.submit("a", "pause", str(i).encode(), retained=False)
    await asyncio.sleep(0.01)
    assert running == ["0"]  # the rest wait their turn
    assert gate.counters.refused == 2 and "already waiting" in (replies[0].reason or "")
    release.set()
    await asyncio.sleep(0.01)
    assert running == ["0", "1"]
    await gate.close()


@pytest.mark.unit
async def test_the_counters_are_published_and_what_changed_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counters = Counters()
    gate = CommandGate(set(), lambda *a: asyncio.sleep(0), lambda r: None)
    sent: list[str] = []
    task = asyncio.create_task(
        report_stats(lambda: snapshot("r1", counters, gate.counters, 0), sent.append, period_s=0.02)
    )
    with caplog.at_level(logging.WARNING, logger="acudevice.bridge"):
        await asyncio.sleep(0.03)
        counters.dropped_samples += 7
        counters.dropped_messages += 1
        await asyncio.sleep(0.04)
    task.cancel()
    published = [json.loads(s) for s in sent]
    assert published[0]["telemetry_dropped_samples"] == 0 and published[0]["run"] == "r1"
    assert published[-1]["telemetry_dropped_samples"] == 7
    assert any("dropped 7 telemetry samples" in r.message for r in caplog.records)
