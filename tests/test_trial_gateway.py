"""A trial's gateway through a real Mosquitto: its participants' protocols in, only the label
out on every surface, the scheduled session started by command, safety shown as always, bad
protocols refused in the log, and withdrawal ending the schedule."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from acudevice.bridge.participant_protocol import encode
from acudevice.bridge.participants import Participants
from acudevice.bridge.topics import protocol_topic, withdrawn_topic
from acudevice.store import Journal
from acudevice.study.withdrawal import notice
from tests.bridge_helpers import GW, command, running_bridge, start_body, topic, until
from tests.mqtt_broker import Broker, Watcher
from tests.trial_helpers import (
    VirtualClock,
    band_event,
    deliver,
    london,
    no_secrets,
    protocol,
    schedule_state,
)

pytestmark = pytest.mark.mqtt


def scheduled_start(request_id: str) -> str:
    return json.dumps({"request_id": request_id, "issued_at": time.time()})


def band_config(retained: dict[str, str], band: str) -> dict[str, dict[str, Any]]:
    """The components Home Assistant was told of for `band`, by their unique_id's tail."""
    config = json.loads(
        retained[f"homeassistant/device/acudevice_{GW}/acudevice_{GW}_{band}/config"]
    )
    prefix = f"acudevice_{GW}_{band}_"
    return {uid.removeprefix(prefix): c for uid, c in config["components"].items()}


async def test_every_surface_shows_the_label_and_only_the_scheduled_session_can_start(
    broker: Broker, tmp_path: Path
) -> None:
    bands = {"a": "sim://?speed=10&seed=1", "c": "sim://?speed=10&seed=2"}
    clock = VirtualClock(london(13, 10))
    async with Watcher(broker, "#") as watcher:
        with Journal(tmp_path / "journal.sqlite3") as journal:
            async with running_bridge(
                broker, bands, journal=journal, clock=clock.now, allow_remote_start=True,
                ha_discovery=True, participants=Participants({"a": "P1", "c": "P3"}),
            ) as bridge:  # fmt: skip
                clock.poke = bridge.schedules.poke
                await deliver(broker, protocol("sham", "P1"))
                enrolled = await watcher.wait_for(band_event("a", "schedule-received"))
                since = watcher.seen.index(enrolled)  # before, band a was nobody's trial band
                await watcher.wait_for(schedule_state("a", lambda s: s["due"]))

                # Home Assistant: band a offers its scheduled session alone, by its label;
                # band c (a participant with no trial) offers the installed programs.
                await watcher.wait_for(
                    lambda s: s.topic.endswith("_a/config") and "session_due" in s.payload
                )
                retained = await broker.retained("homeassistant/#")
                a, c = band_config(retained, "a"), band_config(retained, "c")
                assert a["program"]["options"] == ["Study programme"]
                assert a["program"]["command_topic"] == topic("a", "cmd/start-scheduled")
                assert a["start_scheduled"]["name"] == "Start Study programme"
                assert a["session_due"]["state_topic"] == topic("a", "schedule")
                assert "nausea-relief" in c["program"]["options"] and "session_due" not in c

                # A shipped program on the enrolled band is refused; the scheduled one runs.
                other = await command(
                    broker, watcher, "a", "start", start_body("nausea-relief", "r1"), "r1"
                )
                assert other["status"] == "refused"
                assert "runs only its participant's scheduled session" in other["reason"]
                none = await command(
                    broker, watcher, "c", "start-scheduled", scheduled_start("r2"), "r2"
                )
                assert none["status"] == "refused" and "no scheduled session" in none["reason"]
                started = await command(
                    broker, watcher, "a", "start-scheduled", scheduled_start("r3"), "r3"
                )
                assert started["status"] == "ok" and started["reason"] == "started Study programme"
                running = await watcher.wait_for(
                    lambda s: (
                        s.topic == topic("a", "state")
                        and json.loads(s.payload)["session"] == "running"
                    )
                )
                state = json.loads(running.payload)
                assert state["program"] == "Study programme" and state["participant"] == "P1"
                event = json.loads(
                    (await watcher.wait_for(band_event("a", "session-started"))).payload
                )
                assert event["program"] == "Study programme" and event["origin"] == "remote"
                # "too strong" is shown as always, naming the label
                await until(lambda: (bridge.agents["a"].state().measured or 0) > 1.5)
                strong = await command(
                    broker, watcher, "a", "too-strong", '{"request_id": "t1"}', "t1"
                )
                assert strong["status"] == "ok"
                comfort = json.loads((await watcher.wait_for(band_event("a", "comfort"))).payload)
                assert comfort["program"] == "Study programme"
                assert comfort["detail"].startswith("too strong at ")
                await command(broker, watcher, "a", "stop", '{"request_id": "s1"}', "s1")
                finished = await watcher.wait_for(band_event("a", "session-finished"))
                assert json.loads(finished.payload)["outcome"] == "stopped"
            [session] = journal.sessions(5)
            assert (session.program, session.participant) == ("study-programme", "P1")
            assert journal.protocols.labels() == {("P1", "study-programme"): "Study programme"}
    published = [s for s in watcher.seen[since:] if "/cmd/" not in s.topic or "result" in s.topic]
    no_secrets([s for s in published if not s.topic.endswith("_c/config")])


async def test_a_fault_in_a_sham_session_is_shown_and_stops_it_as_in_an_active_one(
    broker: Broker, tmp_path: Path
) -> None:
    fault = "fault=stuck-pump:20000"
    bands = {"a": f"sim://?speed=10&seed=1&{fault}", "b": f"sim://?speed=10&seed=2&{fault}"}
    arms = {"a": ("sham", "P1"), "b": ("active", "P2")}
    said: dict[str, list[dict[str, Any]]] = {}
    async with Watcher(broker, f"acudevice/{GW}/#") as watcher:
        with Journal(tmp_path / "journal.sqlite3") as journal:
            async with running_bridge(
                broker, bands, journal=journal, allow_remote_start=True,
                participants=Participants({"a": "P1", "b": "P2"}),
            ) as bridge:  # fmt: skip
                for band, (arm, who) in arms.items():
                    await deliver(broker, protocol(arm, who, first_day=london(0).date()))
                    await watcher.wait_for(band_event(band, "schedule-received"))
                for band in arms:
                    reply = await command(
                        broker, watcher, band, "start-scheduled", scheduled_start(band), band
                    )
                    assert reply["status"] == "ok", reply
                for band in arms:
                    await watcher.wait_for(band_event(band, "session-finished"))
                    await until(lambda band=band: bridge.agents[band].state().session == "idle")
                    said[band] = [json.loads(s.payload) for s in watcher.on(topic(band, "events"))]
            for _, who in arms.values():
                [record] = [s for s in journal.sessions(5) if s.participant == who]
                assert record.outcome == "faulted" and record.program == "study-programme"
                assert [f.code for f in journal.faults(record.id)][:1] == ["device-fault"]

    def story(events: list[dict[str, Any]]) -> list[tuple[str, str | None, str | None]]:
        keep = ("session-started", "fault", "session-finished")
        return [(e["event"], e["program"], e.get("outcome")) for e in events if e["event"] in keep]

    assert story(said["a"]) == story(said["b"])
    assert story(said["a"])[0] == ("session-started", "Study programme", None)
    assert story(said["a"])[-1] == ("session-finished", "Study programme", "faulted")
    faults = {band: [e["detail"] for e in said[band] if e["event"] == "fault"] for band in arms}
    assert faults["a"] == faults["b"] and "STUCK_PUMP" in faults["a"][0]
    no_secrets(watcher.seen)


async def test_bad_protocols_are_logged_with_topic_and_field_and_change_nothing(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="acudevice.bridge.schedule")
    mine = protocol_topic("acudevice", "P1")
    good = protocol("active", "P1")
    body = json.loads(encode(good))
    unknown_point = {
        **body,
        "program": {**body["program"], "sites": [{"point": "ZZ99", "side": "both"}]},
    }
    async with (
        Watcher(broker, f"acudevice/{GW}/#") as watcher,
        running_bridge(
            broker, {"a": "sim://?speed=10&seed=1"}, participants=Participants({"a": "P1"})
        ) as bridge,
    ):
        for bad in (
            b"{not json",
            json.dumps({**body, "schedule": {**body["schedule"], "days": "7"}}).encode(),
            encode(protocol("active", "P2")),  # someone else's, on P1's topic
            json.dumps(unknown_point).encode(),
            b"x" * 70_000,
        ):
            await broker.pub(mine, bad, retain=True)
        await until(lambda: len(caplog.records) >= 5)
        assert bridge.schedules.label_of("a") is None and bridge.connected.is_set()
        lines = [r.getMessage() for r in caplog.records]
        assert all(mine in line for line in lines)
        assert any(f"{mine}:schedule.days" in line for line in lines), lines
        assert any(f"{mine}:participant" in line for line in lines), lines
        assert any(f"{mine}:program.sites[0].point: unknown point 'ZZ99'" in line for line in lines)
        assert any("70000 bytes" in line for line in lines)
        await deliver(broker, good)
        await watcher.wait_for(band_event("a", "schedule-received"))
        await broker.pub(mine, b'{"v": 2}', retain=True)  # a bad one later keeps the good
        await until(lambda: len(caplog.records) >= 6)
        assert bridge.schedules.label_of("a") == "Study programme"


async def test_withdrawal_clears_the_schedule_and_ends_reminding(
    broker: Broker, tmp_path: Path
) -> None:
    bands = {band: f"sim://?speed=10&seed={i}" for i, band in enumerate("abc", start=1)}
    clock = VirtualClock(london(6))
    async with Watcher(broker, "#") as watcher:
        with Journal(tmp_path / "journal.sqlite3") as journal:
            async with running_bridge(
                broker, bands, journal=journal, clock=clock.now, allow_remote_start=True,
                ha_discovery=True, participants=Participants({"a": "P1", "b": "P2", "c": "P3"}),
            ) as bridge:  # fmt: skip
                clock.poke = bridge.schedules.poke
                for arm, who, band in (
                    ("sham", "P1", "a"),
                    ("active", "P2", "b"),
                    ("sham", "P3", "c"),
                ):
                    await deliver(broker, protocol(arm, who))
                    await watcher.wait_for(band_event(band, "schedule-received"))
                assert {p.participant for p in journal.protocols.all()} == {"P1", "P2", "P3"}
                # P1: the centre clears the protocol; P2: a withdrawal notice (whose cleared
                # protocol a gateway away at the time would never see). P3 stays enrolled.
                await broker.pub(protocol_topic("acudevice", "P1"), b"", retain=True)
                await broker.pub(withdrawn_topic("acudevice", "P2"), notice("P2"), retain=True)
                for band in ("a", "b"):
                    cleared = await watcher.wait_for(band_event(band, "schedule-cleared"))
                    assert "no more reminders" in json.loads(cleared.payload)["detail"]
                assert [p.participant for p in journal.protocols.all()] == ["P3"]
                assert journal.has_withdrawn("P2") and not journal.has_withdrawn("P1")
                refused = await command(
                    broker, watcher, "a", "start-scheduled", scheduled_start("w1"), "w1"
                )
                assert refused["status"] == "refused"
                assert "no scheduled session" in refused["reason"]
                mark = len(watcher.seen)
                clock.move_to(london(10, 30))  # window 1 was due, and closed unattended
                await watcher.wait_for(band_event("c", "session-missed"), since=mark)
                told = [s for s in watcher.seen[mark:] if s.topic.endswith("/events")]
                assert {s.topic.split("/")[2] for s in told} == {"c"}, "P3 only"
                retained = await broker.retained(f"acudevice/{GW}/+/schedule")
                assert list(retained) == [f"acudevice/{GW}/c/schedule"], "a's and b's are gone"
                config = band_config(await broker.retained("homeassistant/#"), "a")
                assert "session_due" not in config and "start_scheduled" not in config


@pytest.mark.unit
def test_start_scheduled_passes_the_guard_of_every_remote_start() -> None:
    from acudevice.bridge.band import StartRefused
    from acudevice.bridge.commands import StartGuard
    from acudevice.bridge.payloads import ScheduledStartCommand
    from acudevice.plan.library import ProgramLibrary

    delivered = protocol("sham", "P1").program
    now = time.time()

    def guard(allowed: bool = True, remote_max_s: float = 3600) -> StartGuard:
        return StartGuard(
            allowed, ProgramLibrary(), remote_max_s,
            scheduled=lambda band: delivered if band == "a" else None,
        )  # fmt: skip

    def command(age_s: float = 0) -> ScheduledStartCommand:
        return ScheduledStartCommand.model_validate({"request_id": "s1", "issued_at": now - age_s})

    assert guard().scheduled_for("a", command(), now) == delivered
    for refused, band, sent, why in (
        (guard(allowed=False), "a", command(), "remote start is disabled"),
        (guard(), "a", command(age_s=30), "starts older than 10 s are refused"),
        (guard(), "c", command(), "band c has no scheduled session"),
        (guard(remote_max_s=60), "a", command(), "remote sessions are limited to 60 s"),
    ):
        with pytest.raises(StartRefused, match=why):
            refused.scheduled_for(band, sent, now)
