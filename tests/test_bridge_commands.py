"""Commands are untrusted: each bad one gets a reply on cmd/result and changes nothing."""

from __future__ import annotations

import json
import time

import pytest

from acudevice.bridge.gateway import Bridge
from tests.bridge_helpers import (
    GW,
    LONG,
    command,
    install_quick_program,
    payload,
    result_for,
    running_bridge,
    start_body,
    topic,
)
from tests.mqtt_broker import Broker, Watcher

pytestmark = pytest.mark.mqtt
BAND = {"left": "sim://?speed=10&seed=4"}


def idle(bridge: Bridge) -> bool:
    return bridge.agents["left"].session is None


async def test_remote_start_is_refused_unless_the_gateway_allows_it(broker: Broker) -> None:
    async with (
        running_bridge(broker, BAND) as bridge,
        Watcher(broker, f"acudevice/{GW}/#") as watch,
    ):
        reply = await command(broker, watch, "left", "start", start_body(LONG, "r1"), "r1")
        assert reply["status"] == "refused" and "--allow-remote-start" in reply["reason"]
        assert idle(bridge)


async def test_remote_start_by_name_runs_the_program_to_completion(broker: Broker) -> None:
    install_quick_program()
    async with (
        running_bridge(broker, BAND, allow_remote_start=True) as bridge,
        Watcher(broker, f"acudevice/{GW}/#") as watch,
    ):
        reply = await command(broker, watch, "left", "start", start_body("quick-test", "q1"), "q1")
        assert reply["status"] == "ok", reply["reason"]
        assert reply["band"] == "left" and reply["command"] == "start"
        started = await watch.wait_for(
            lambda s: (
                s.topic == topic("left", "events") and payload(s)["event"] == "session-started"
            )
        )
        assert payload(started)["origin"] == "remote" and payload(started)["request_id"] == "q1"
        done = await watch.wait_for(
            lambda s: (
                s.topic == topic("left", "events") and payload(s)["event"] == "session-finished"
            )
        )
        assert payload(done)["outcome"] == "completed"
        assert idle(bridge)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"program": "../../etc/passwd"}, "program"),
        ({"program": "/home/me/strong.toml"}, "program"),
        ({"program": "quick-test.toml"}, "program"),
        ({"program": {"name": "x", "phases": []}}, "program"),
        ({"program": "quick-test", "phases": [{"kind": "hold"}]}, "phases"),
        ({"program": "no-such-program"}, "no installed program"),
        ({"program": "abrupt-test"}, "needs-confirmation"),  # never confirmed remotely
    ],
)
async def test_start_names_an_installed_program_by_name_only(
    broker: Broker, body: dict[str, object], why: str
) -> None:
    install_quick_program()
    async with (
        running_bridge(broker, BAND, allow_remote_start=True) as bridge,
        Watcher(broker, f"acudevice/{GW}/#") as watch,
    ):
        full = {"request_id": "p1", "issued_at": time.time(), **body}
        reply = await command(broker, watch, "left", "start", json.dumps(full), "p1")
        assert reply["status"] in ("error", "refused") and why in reply["reason"], reply
        assert idle(bridge)


async def test_a_retained_command_waiting_on_the_broker_is_refused_on_connect(
    broker: Broker,
) -> None:
    """The Tasmota "ghost switching" failure: a stale retained command must not run again."""
    async with Watcher(broker, f"acudevice/{GW}/#") as watch:
        await broker.pub(topic("left", "cmd/start"), start_body(LONG, "k1"), retain=True)
        async with running_bridge(broker, BAND, allow_remote_start=True) as bridge:
            reply = payload(await watch.wait_for(result_for("k1")))
            assert reply["status"] == "refused" and "retained" in reply["reason"]
            assert idle(bridge)
            await broker.pub(topic("left", "cmd/start"), "", retain=True)  # clear it


async def test_stale_duplicate_malformed_and_oversized_commands_change_nothing(
    broker: Broker,
) -> None:
    install_quick_program()
    async with (
        running_bridge(broker, BAND, allow_remote_start=True) as bridge,
        Watcher(broker, f"acudevice/{GW}/#") as watch,
    ):
        stale = await command(
            broker, watch, "left", "start", start_body("quick-test", "s1", age_s=11), "s1"
        )
        assert stale["status"] == "refused" and "old" in stale["reason"]
        assert idle(bridge)

        await broker.pub(topic("left", "cmd/pause"), "{not json")
        malformed = await watch.wait_for(
            lambda s: s.topic == topic("left", "cmd/result") and payload(s)["command"] == "pause"
        )
        assert payload(malformed)["status"] == "error" and "JSON" in payload(malformed)["reason"]

        huge = json.dumps(
            {"request_id": "big", "issued_at": time.time(), "program": LONG, "pad": "x" * 2000}
        )
        await broker.pub(topic("left", "cmd/start"), huge)  # not even parsed for its request_id
        oversized = payload(
            await watch.wait_for(
                lambda s: s.topic == topic("left", "cmd/result") and "bytes" in payload(s)["reason"]
            )
        )
        assert oversized["status"] == "error" and "bytes" in oversized["reason"]
        assert idle(bridge)

        unknown = await command(
            broker, watch, "left", "fly", json.dumps({"request_id": "u1"}), "u1"
        )
        assert unknown["status"] == "error" and "unknown command" in unknown["reason"]

        first = await command(broker, watch, "left", "start", start_body(LONG, "d1"), "d1")
        assert first["status"] == "ok"
        session = bridge.agents["left"].session
        mark = len(watch.seen)
        await broker.pub(topic("left", "cmd/start"), start_body(LONG, "d1"))  # QoS 1 redelivery
        again = payload(
            await watch.wait_for(
                lambda s: s.topic.endswith("cmd/result") and payload(s)["request_id"] == "d1",
                since=mark,
            )
        )
        assert again["status"] == "ok" and again["reason"] == first["reason"]
        assert bridge.agents["left"].session is session  # answered again, not started twice
        starts = [
            s for s in watch.on(topic("left", "events")) if payload(s)["event"] == "session-started"
        ]
        assert len(starts) == 1


async def test_pause_without_a_session_is_refused_and_estop_with_a_bad_body_still_vents(
    broker: Broker,
) -> None:
    async with (
        running_bridge(broker, BAND, allow_remote_start=True) as bridge,
        Watcher(broker, f"acudevice/{GW}/#") as watch,
    ):
        paused = await command(
            broker, watch, "left", "pause", json.dumps({"request_id": "pz"}), "pz"
        )
        assert paused["status"] == "refused" and "no session" in paused["reason"]
        assert (await command(broker, watch, "left", "start", start_body(LONG, "e0"), "e0"))[
            "status"
        ] == "ok"
        await watch.wait_for(
            lambda s: s.topic == topic("left", "telemetry") and payload(s)["measured"] > 3.0
        )
        await broker.pub(topic("left", "cmd/estop"), "garbage, not json")
        reply = await watch.wait_for(
            lambda s: s.topic == topic("left", "cmd/result") and payload(s)["command"] == "estop"
        )
        assert payload(reply)["status"] == "ok" and "body ignored" in payload(reply)["reason"]
        done = await watch.wait_for(
            lambda s: (
                s.topic == topic("left", "events") and payload(s)["event"] == "session-finished"
            )
        )
        assert payload(done)["outcome"] == "estopped"
        assert idle(bridge)
