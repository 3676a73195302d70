"""The bridge on a real Mosquitto: retained status, availability and state; stop; discovery."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest

from tests.bridge_helpers import GW, LONG, command, payload, running_bridge, start_body, topic
from tests.mqtt_broker import Broker, Watcher

pytestmark = pytest.mark.mqtt


async def test_retained_status_availability_and_state_have_the_documented_payloads(
    broker: Broker,
) -> None:
    async with running_bridge(broker, {"left": "sim://?speed=10&seed=1"}) as bridge:
        async with Watcher(broker, f"acudevice/{GW}/#") as watch:
            # The first state may predate the band's connection (no model yet); within a
            # second of it connecting, the retained state names the model.
            await watch.wait_for(
                lambda s: s.topic == topic("left", "state") and payload(s)["model"] is not None
            )
        retained = await broker.retained(f"acudevice/{GW}/#")
        assert retained[f"acudevice/{GW}/status"] == "online"
        assert retained[topic("left", "availability")] == "online"
        state = json.loads(retained[topic("left", "state")])
        assert state["model"] == "wristband-p1" and state["actuator"] == "pressure"
        assert state["unit"] == "kPa" and state["session"] == "idle"
        assert 0 < state["battery_percent"] <= 100 and state["ts"] > 0
        assert {"firmware", "device_state", "program", "phase", "measured", "target", "cap"} <= set(
            state
        )
        assert bridge.agents["left"].connected.is_set()
    # A clean shutdown says offline itself: a clean DISCONNECT discards the will.
    after = await broker.retained(f"acudevice/{GW}/#")
    assert after[f"acudevice/{GW}/status"] == "offline"
    assert after[topic("left", "availability")] == "offline"


async def test_mosquitto_pub_stop_ends_a_running_session_and_the_band_vents(broker: Broker) -> None:
    async with (
        running_bridge(
            broker, {"left": "sim://?speed=10&seed=2"}, allow_remote_start=True, telemetry_hz=10
        ) as bridge,
        Watcher(broker, f"acudevice/{GW}/#") as watch,
    ):
        reply = await command(broker, watch, "left", "start", start_body(LONG, "go-1"), "go-1")
        assert reply["status"] == "ok", reply
        await watch.wait_for(
            lambda s: s.topic == topic("left", "telemetry") and payload(s)["measured"] > 5.0
        )
        await broker.pub(topic("left", "cmd/stop"), "")  # no body: stop is always honoured
        finished = await watch.wait_for(
            lambda s: (
                s.topic == topic("left", "events") and payload(s)["event"] == "session-finished"
            )
        )
        assert payload(finished)["outcome"] == "stopped"
        vented = await watch.wait_for(
            lambda s: s.topic == topic("left", "telemetry") and payload(s)["measured"] < 1.0,
            since=watch.seen.index(finished),
        )
        assert payload(vented)["state"] == "IDLE"
        assert bridge.agents["left"].session is None
        idle = await watch.wait_for(
            lambda s: s.topic == topic("left", "state") and payload(s)["session"] == "idle",
            since=watch.seen.index(finished),
        )
        assert payload(idle)["program"] is None
        # Telemetry at 10 Hz, state (retained) at most once a second, except that a change
        # of the session's state (running, stopping, idle) goes out at once.
        states = [payload(s) for s in watch.on(topic("left", "state"))]
        assert len(states) >= 2
        routine = [(a["ts"], b["ts"]) for a, b in pairwise(states) if a["session"] == b["session"]]
        assert routine and all(b - a >= 0.95 for a, b in routine)
        assert len(watch.on(topic("left", "telemetry"))) > 3 * len(states)


async def test_too_strong_over_mqtt_lowers_the_cap_at_once_and_says_so(broker: Broker) -> None:
    async with (
        running_bridge(
            broker, {"left": "sim://?speed=10&seed=5"}, allow_remote_start=True
        ) as bridge,
        Watcher(broker, f"acudevice/{GW}/#") as watch,
    ):
        assert (await command(broker, watch, "left", "start", start_body(LONG, "t1"), "t1"))[
            "status"
        ] == "ok"
        await watch.wait_for(lambda s: s.topic == topic("left", "state") and payload(s)["cap"])
        cap = bridge.agents["left"].state().cap
        assert cap is not None
        reply = await command(broker, watch, "left", "too-strong", '{"request_id": "ts1"}', "ts1")
        assert reply["status"] == "ok"
        comfort = await watch.wait_for(
            lambda s: s.topic == topic("left", "events") and payload(s)["event"] == "comfort"
        )
        assert "lowered" in payload(comfort)["detail"]
        lowered = await watch.wait_for(
            lambda s: s.topic == topic("left", "state") and (payload(s)["cap"] or cap) < cap
        )
        assert payload(lowered)["session"] == "running"
