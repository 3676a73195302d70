"""Stop always stops, and commands in the wrong state change nothing (issue 21), over a real broker."""

from __future__ import annotations

import asyncio
import json

import pytest

from acudevice.protocol import FirmwareState
from tests.bridge_helpers import (
    GW,
    LONG,
    command,
    payload,
    result_for,
    running_bridge,
    start_body,
    topic,
    until,
)
from tests.mqtt_broker import Broker, Watcher

pytestmark = pytest.mark.mqtt
BAND = {"left": "sim://?speed=10&seed=4"}


def event(band: str, kind: str) -> object:
    return lambda s: s.topic == topic(band, "events") and payload(s)["event"] == kind


@pytest.mark.parametrize("verb", ["stop", "estop"])
async def test_a_stop_whose_request_id_was_used_before_still_stops_the_band(
    broker: Broker, verb: str
) -> None:
    """Regression: a stop reusing an id (here the start's, then its own) replayed the old
    reply ("ok", "started ...") and the band kept running."""
    async with (
        running_bridge(broker, BAND, allow_remote_start=True) as bridge,
        Watcher(broker, f"acudevice/{GW}/#") as watch,
    ):
        agent = bridge.agents["left"]
        for round_ in range(2):
            started = await command(broker, watch, "left", "start", start_body(LONG, "x1"), "x1")
            if round_ == 1:  # the start's id, seen before: answered from memory, not started
                assert started["status"] == "ok" and agent.session is None
                started = await command(
                    broker, watch, "left", "start", start_body(LONG, "x2"), "x2"
                )
            assert started["status"] == "ok", started
            await watch.wait_for(
                lambda s: s.topic == topic("left", "telemetry") and payload(s)["measured"] > 3.0
            )
            mark = len(watch.seen)
            await broker.pub(topic("left", f"cmd/{verb}"), json.dumps({"request_id": "x1"}))
            reply = payload(await watch.wait_for(result_for("x1"), since=mark))
            assert reply["command"] == verb and reply["status"] == "ok", reply
            assert reply["reason"] == ("venting" if verb == "estop" else "stopping"), reply
            coming_down = await watch.wait_for(
                lambda s: (
                    s.topic == topic("left", "state")
                    and payload(s)["session"] in ("stopping", "venting")
                ),
                since=mark,
            )
            assert payload(coming_down)["session"] == ("venting" if verb == "estop" else "stopping")
            finished = payload(await watch.wait_for(event("left", "session-finished"), since=mark))
            assert finished["outcome"] == ("estopped" if verb == "estop" else "stopped")
            assert "remote command" in finished["detail"], "the stop's real cause"
            await until(lambda: agent.session is None)
            device = agent.device
            assert device is not None
            states = {(await device.status()).state}
            assert states <= {FirmwareState.VENTING, FirmwareState.IDLE}
            async with asyncio.timeout(20):  # the band comes to rest: the next start may go
                while (await device.status()).state is not FirmwareState.IDLE:  # noqa: ASYNC110 - polls the band, which has no event for it
                    await asyncio.sleep(0.05)


async def test_pause_and_resume_in_the_wrong_state_are_refused_and_change_nothing(
    broker: Broker,
) -> None:
    """Regression: `resume` while running, or `pause` while paused (an id-less pause
    delivered twice), replied ok and ended the session as faulted."""
    async with (
        running_bridge(broker, BAND, allow_remote_start=True) as bridge,
        Watcher(broker, f"acudevice/{GW}/#") as watch,
    ):
        agent = bridge.agents["left"]
        assert (await command(broker, watch, "left", "start", start_body(LONG, "p0"), "p0"))[
            "status"
        ] == "ok"
        session = agent.session
        await watch.wait_for(
            lambda s: s.topic == topic("left", "telemetry") and payload(s)["measured"] > 3.0
        )
        resumed = await command(broker, watch, "left", "resume", '{"request_id": "p1"}', "p1")
        assert resumed["status"] == "refused" and "running" in resumed["reason"], resumed
        paused = await command(broker, watch, "left", "pause", '{"request_id": "p2"}', "p2")
        assert paused["status"] == "ok", paused
        await watch.wait_for(
            lambda s: s.topic == topic("left", "state") and payload(s)["session"] == "paused"
        )
        for _ in range(2):  # an id-less pause, delivered twice as QoS 1 may
            mark = len(watch.seen)
            await broker.pub(topic("left", "cmd/pause"), "")
            again = await watch.wait_for(
                lambda s: (
                    s.topic == topic("left", "cmd/result") and payload(s)["command"] == "pause"
                ),
                since=mark,
            )
            assert payload(again)["status"] == "refused" and "paused" in payload(again)["reason"]
        resumed = await command(broker, watch, "left", "resume", '{"request_id": "p3"}', "p3")
        assert resumed["status"] == "ok", resumed
        await watch.wait_for(
            lambda s: s.topic == topic("left", "telemetry") and payload(s)["state"] == "RUNNING",
            since=len(watch.seen),
        )
        assert agent.session is session, "still the same session, running"
        assert not [s for s in watch.on(topic("left", "events")) if payload(s)["event"] == "fault"]
        stopped = await command(broker, watch, "left", "stop", '{"request_id": "p4"}', "p4")
        assert stopped["status"] == "ok"
        finished = payload(await watch.wait_for(event("left", "session-finished")))
        assert finished["outcome"] == "stopped"
