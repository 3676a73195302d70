"""The host's watch over telemetry: pure, one instance per channel.

It decides; the runner acts (ESTOP, record). Rules: measured above the cap plus the sensor
tolerance; pressure rising while the plan releases; a lowered cap the band does not come
down to within its vent time (it acknowledged SET_LIMITS but did not obey); a fault state;
a flat battery.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from acudevice.plan.devices import KPA_TO_PA, PressureDevice, VibrationDevice
from acudevice.plan.schedule import PhaseKind, Schedule
from acudevice.protocol import FirmwareState
from acudevice.protocol.messages import Telemetry

LOW_BATTERY_ABORT_PERCENT = 5
LOW_BATTERY_START_PERCENT = 15
VIBRATION_TOLERANCE = 50  # permille
_RUNNING, _FAULT = FirmwareState.RUNNING, FirmwareState.FAULT
_RELEASE = PhaseKind.RELEASE


def tolerance_level(model: PressureDevice | VibrationDevice) -> int:
    """How far a reading may stray from the truth: the sensor's tolerance, in level units."""
    if isinstance(model, PressureDevice):
        return round(model.sensor_tolerance_kpa * KPA_TO_PA)
    return VIBRATION_TOLERANCE


@dataclass(frozen=True)
class Alarm:
    code: str  # over-pressure, rising-during-release, not-easing-off, device-fault,
    # low-battery; the runner adds stopped-unannounced
    message: str


@dataclass
class ChannelMonitor:
    schedule: Schedule
    cap_level: int
    tolerance_level: int
    peak_level: int = 0
    last: Telemetry | None = None
    _release_floor: int | None = field(default=None, repr=False)
    _release_segment: int | None = field(default=None, repr=False)
    ease_off_ms: int = 10_000
    """A band has this long (its vent time) to come down to a lowered cap."""
    _descending_from: int | None = field(default=None, repr=False)
    last_running_segment: int | None = None
    """The segment of the latest RUNNING sample: None until the schedule runs."""
    _descending_since_ms: int | None = field(default=None, repr=False)
    _phases: tuple[PhaseKind, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._phases = tuple(segment.phase for segment in self.schedule.segments)

    def lower_cap(self, level: int) -> None:
        """A lowered cap holds once the level has come down to it; until then the old one does."""
        if level < self.cap_level:
            self._descending_from = max(self._descending_from or 0, self.cap_level)
            self._descending_since_ms = None  # set from the next sample's device time
            self.cap_level = level

    def phase_of(self, sample: Telemetry) -> PhaseKind | None:
        if 0 <= sample.segment_index < len(self.schedule.segments):
            return self.schedule.segments[sample.segment_index].phase
        return None

    def repeat_of(self, sample: Telemetry) -> int | None:
        if 0 <= sample.segment_index < len(self.schedule.segments):
            return self.schedule.segments[sample.segment_index].repeat
        return None

    @property
    def current_repeat(self) -> int:
        """0-based repeat of the latest sample: also how many repeats are complete."""
        repeat = self.repeat_of(self.last) if self.last is not None else None
        return repeat or 0

    @property
    def stopped_on_its_own(self) -> bool:
        """The band ran this schedule and is back at rest: the end of the schedule, or a
        vent the host did not ask for; seen in telemetry even when the event is lost."""
        return self.last_running_segment is not None and (
            self.last is not None and self.last.state == FirmwareState.IDLE
        )

    @property
    def reached_last_segment(self) -> bool:
        return self.last_running_segment == len(self.schedule.segments) - 1

    def check(self, sample: Telemetry) -> Alarm | None:
        # Every sample of a session passes here (thousands a second at speed=max): the
        # fields and the rules' state are read once into locals.
        self.last = sample
        measured = sample.measured_level
        state = sample.state
        segment = sample.segment_index
        if state == _RUNNING:
            self.last_running_segment = segment
        if measured > self.peak_level:
            self.peak_level = measured
        tolerance = self.tolerance_level
        descending_from = self._descending_from
        if descending_from is not None:
            if measured <= self.cap_level + tolerance:
                self._descending_from = self._descending_since_ms = descending_from = None
            elif self._descending_since_ms is None:
                self._descending_since_ms = sample.t_ms
            elif (sample.t_ms - self._descending_since_ms) % 2**32 > self.ease_off_ms:
                return Alarm(
                    "not-easing-off",
                    f"measured {measured} still above the lowered cap "
                    f"{self.cap_level} + tolerance {tolerance} after "
                    f"{self.ease_off_ms / 1000:g} s",
                )
        if measured > (descending_from or self.cap_level) + tolerance:
            return Alarm(
                "over-pressure",
                f"measured {measured} above the cap {self.cap_level} + tolerance {tolerance}",
            )
        if state == _FAULT:
            return Alarm("device-fault", "the device reports a fault")
        if sample.battery_percent < LOW_BATTERY_ABORT_PERCENT:
            return Alarm("low-battery", f"battery at {sample.battery_percent} %")
        phases = self._phases
        if state == _RUNNING and 0 <= segment < len(phases) and phases[segment] is _RELEASE:
            if self._release_segment != segment:
                self._release_segment = segment
                self._release_floor = measured
            floor = self._release_floor
            assert floor is not None
            if measured < floor:
                self._release_floor = floor = measured
            if measured > floor + tolerance:
                return Alarm(
                    "rising-during-release",
                    f"pressure rose to {measured} while releasing (lowest {floor})",
                )
        else:
            self._release_segment = None
        return None
