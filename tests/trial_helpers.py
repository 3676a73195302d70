"""A trial's protocols delivered to a test broker, and a wall clock a test moves by hand."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from acudevice.bridge.participant_protocol import ParticipantProtocol, encode, for_participant
from acudevice.bridge.topics import protocol_topic
from acudevice.paths import shipped_profiles_dir
from acudevice.plan.protocol import parse_protocol
from acudevice.plan.timetable import Timetable
from tests.bridge_helpers import GW
from tests.mqtt_broker import Broker, Seen

EXAMPLE = shipped_profiles_dir() / "studies" / "nausea-trial.toml"
STUDY = parse_protocol(EXAMPLE)
LONDON = ZoneInfo("Europe/London")
FIRST_DAY = dt.date(2027, 1, 16)
SECRETS = ("active", "sham", "nausea-relief", "nausea-sham", "Nausea relief", "Nausea sham")
"""What no participant-facing message may contain: the arms and the real programs."""


def london(hour: int, minute: int = 0, day: int = 0) -> dt.datetime:
    local = dt.datetime.combine(FIRST_DAY + dt.timedelta(days=day), dt.time(hour, minute))
    return local.replace(tzinfo=LONDON).astimezone(dt.UTC)


class VirtualClock:
    """The gateway's wall clock, moved by the test; `poke` makes the schedules look at once
    (the reminder clocks sleep on the loop's real time, which a test does not wait out)."""

    def __init__(self, start: dt.datetime) -> None:
        self.at = start
        self.poke: Callable[[], None] = lambda: None

    def now(self) -> dt.datetime:
        return self.at

    def move_to(self, when: dt.datetime) -> None:
        assert when >= self.at, "a clock moves forward"
        self.at = when
        self.poke()


def timetable(first_day: dt.date = FIRST_DAY) -> Timetable:
    return STUDY.schedule("active").timetable(dt.datetime.now(dt.UTC), first_day=first_day)


def protocol(arm: str, participant: str, first_day: dt.date = FIRST_DAY) -> ParticipantProtocol:
    """What `study enroll` delivers to `participant` allocated to `arm` of the shipped study."""
    return for_participant(STUDY, arm, participant, timetable(first_day))


async def deliver(broker: Broker, protocol: ParticipantProtocol) -> None:
    """As the centre does: retained, QoS 1."""
    await broker.pub(
        protocol_topic("acudevice", protocol.participant), encode(protocol), retain=True
    )


def band_event(band: str, kind: str) -> Callable[[Seen], bool]:
    def match(seen: Seen) -> bool:
        if seen.topic != f"acudevice/{GW}/{band}/events":
            return False
        return bool(json.loads(seen.payload)["event"] == kind)

    return match


def schedule_state(band: str, check: Callable[[dict[str, Any]], bool]) -> Callable[[Seen], bool]:
    def match(seen: Seen) -> bool:
        if seen.topic != f"acudevice/{GW}/{band}/schedule" or not seen.payload:
            return False
        return check(json.loads(seen.payload))

    return match


def no_secrets(seen: list[Seen]) -> None:
    """Nothing the gateway published names an arm or a real program."""
    for item in seen:
        for secret in SECRETS:
            assert secret not in item.payload, (item.topic, secret, item.payload[:300])
