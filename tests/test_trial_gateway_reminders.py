"""A gateway reminds its enrolled participant in each window and records the windows missed,
on a wall clock the test moves, through a real Mosquitto; a restart loses and repeats nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from acudevice.bridge.participants import Participants
from acudevice.store import Journal
from tests.bridge_helpers import GW, command, running_bridge, until
from tests.mqtt_broker import Broker, Watcher
from tests.trial_helpers import (
    FIRST_DAY,
    VirtualClock,
    band_event,
    deliver,
    london,
    no_secrets,
    protocol,
    schedule_state,
)

pytestmark = pytest.mark.mqtt
BAND = {"left": "sim://?speed=10&seed=3"}
WHO = Participants({"left": "P1"})


def stored_check(journal: Journal) -> float | None:
    """When the gateway last checked P1's reminders, as its journal keeps it."""
    stored = journal.protocols.get("P1")
    return stored.checked_at if stored else None


def windows_of(watcher: Watcher, kind: str) -> list[tuple[int, int, int | None]]:
    """(day, window, reminder) of every `kind` event so far."""
    found = []
    for seen in watcher.on(f"acudevice/{GW}/left/events"):
        event = json.loads(seen.payload)
        if event["event"] == kind:
            window = event["window"]
            found.append((window["day"], window["window"], event["reminder"]))
    return found


async def test_reminders_fire_in_the_window_and_missed_windows_are_recorded_once(
    broker: Broker, tmp_path: Path
) -> None:
    clock = VirtualClock(london(6))
    path = tmp_path / "journal.sqlite3"
    async with Watcher(broker, "acudevice/#") as watcher:
        with Journal(path) as journal:
            async with running_bridge(
                broker, BAND, journal=journal, clock=clock.now, participants=WHO,
                allow_remote_start=True, ha_discovery=True,
            ) as bridge:  # fmt: skip
                clock.poke = bridge.schedules.poke
                await deliver(broker, protocol("sham", "P1"))
                received = await watcher.wait_for(band_event("left", "schedule-received"))
                assert json.loads(received.payload)["program"] == "Study programme"
                await watcher.wait_for(
                    schedule_state("left", lambda s: not s["due"] and s["window"]["window"] == 1)
                )

                async def at(hour: int, minute: int, kind: str) -> dict[str, Any]:
                    mark = len(watcher.seen)
                    clock.move_to(london(hour, minute))
                    seen = await watcher.wait_for(band_event("left", kind), since=mark)
                    return dict(json.loads(seen.payload))

                due = await at(7, 45, "session-due")  # 15 min before 08:00
                assert due["reminder"] == 1 and due["program"] == "Study programme"
                assert due["window"] == {
                    "day": 1, "date": "2027-01-16", "window": 1, "timezone": "Europe/London",
                    "opens": "2027-01-16T08:00:00+00:00", "closes": "2027-01-16T10:00:00+00:00",
                }  # fmt: skip
                await watcher.wait_for(schedule_state("left", lambda s: s["due"]))
                assert (await at(8, 30, "session-due"))["reminder"] == 2
                missed = await at(10, 0, "session-missed")
                assert (
                    missed["window"]["window"] == 1 and "closed with no session" in missed["detail"]
                )
                await watcher.wait_for(
                    schedule_state("left", lambda s: s["missed"] == 1 and not s["due"])
                )
                assert [(m.day, m.window) for m in journal.protocols.missed("P1")] == [(1, 1)]
                assert (await at(12, 45, "session-due"))["window"]["window"] == 2

                # The participant starts the scheduled session in the window: its reminders stop.
                clock.move_to(london(13, 5))
                reply = await command(
                    broker, watcher, "left", "start-scheduled",
                    json.dumps({"request_id": "s1", "issued_at": time.time()}), "s1",
                )  # fmt: skip
                assert reply["status"] == "ok", reply
                assert reply["reason"] == "started Study programme"
                await watcher.wait_for(
                    schedule_state("left", lambda s: not s["due"] and s["window"]["window"] == 3)
                )
                clock.move_to(london(13, 30))
                stopped = await command(
                    broker, watcher, "left", "stop", '{"request_id": "x1"}', "x1"
                )
                assert stopped["status"] == "ok"
                await watcher.wait_for(band_event("left", "session-finished"))
                clock.move_to(london(15, 0))  # window 2 closes: attended, so not missed
                await until(lambda: stored_check(journal) == london(15).timestamp())

            # The gateway is down while window 3 (19:00-21:00) closes: it says so on restart.
            later = VirtualClock(london(21, 30))
            async with running_bridge(
                broker, BAND, journal=journal, clock=later.now, participants=WHO
            ):
                await until(lambda: len(windows_of(watcher, "session-missed")) == 2)
            async with running_bridge(
                broker, BAND, journal=journal, clock=later.now, participants=WHO
            ):
                await watcher.wait_for(
                    schedule_state("left", lambda s: s["missed"] == 2 and s["window"]["day"] == 2),
                    since=len(watcher.seen),
                )
            assert [(m.day, m.window) for m in journal.protocols.missed("P1")] == [(1, 1), (1, 3)]
    assert windows_of(watcher, "session-due") == [(1, 1, 1), (1, 1, 2), (1, 2, 1)]
    assert windows_of(watcher, "session-missed") == [(1, 1, None), (1, 3, None)], "each once"
    assert FIRST_DAY.isoformat() in received.payload
    no_secrets(watcher.seen)
