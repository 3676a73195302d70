"""What a session keeps of itself: the journal row, samples, faults, and session time.

The runner drives devices; the recorder writes down what happened (and says it as events),
so every ending — completed, stopped, faulted, cancelled — is recorded the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from acudevice.plan.program import Program
from acudevice.plan.schedule import Schedule
from acudevice.protocol import FirmwareState
from acudevice.protocol.messages import Telemetry
from acudevice.safety.screening import Verdict
from acudevice.session.events import EventSink, Fault, Note
from acudevice.session.monitor import ChannelMonitor
from acudevice.store import Journal, Outcome
from acudevice.store.journal import SampleRow

log = logging.getLogger("acudevice.session")

SAMPLE_EVERY_MS = 250
FLUSH_EVERY_MS = 2_000
"""Session time between journal writes: a crash loses at most this much of the record."""
FLUSH_EVERY_WALL_S = 0.05
"""...or this much wall time, whichever is longer: a band running far faster than real time
(the simulator at speed=max plays 2 s in a fraction of a millisecond) is not worth a
commit per 2 s of its time. Up to 40x real time (the demo runs at 20x) the 2 s rule acts."""
_U32 = 0x1_0000_0000
_RUNNING, _PAUSED = FirmwareState.RUNNING, FirmwareState.PAUSED


class _ChannelClock:
    """Where one channel's samples sit in session time: the device time and schedule time
    of the last START or segment event (the anchor), and the latest sample's."""

    __slots__ = (
        "anchor_device_ms",
        "anchor_schedule_ms",
        "last_device_ms",
        "pending_schedule_ms",
        "session_ms",
    )

    def __init__(self) -> None:
        self.anchor_device_ms: int | None = None
        self.anchor_schedule_ms = 0
        self.last_device_ms = 0
        self.pending_schedule_ms: int | None = None
        """A segment event's schedule time, waiting for the next sample to pin it on."""
        self.session_ms: int | None = None


class Recorder:
    def __init__(
        self,
        program: Program,
        journal: Journal | None,
        emit: EventSink,
        *,
        participant: str | None = None,
        gateway: str | None = None,
        band: str | None = None,
    ) -> None:
        """`participant`, `gateway`, `band`: who and where, written on the journal row; a
        gateway's sessions are also queued for the study centre (store/journal.py)."""
        self.program = program
        self.journal = journal
        self.participant, self.gateway, self.band = participant, gateway, band
        self._emit = emit
        self.session_id: int | None = None
        self.faults: list[str] = []
        self.comfort_level: int | None = None
        self._samples: list[SampleRow] = []
        self._last_sample_ms: dict[int, int] = {}
        self._last_flush_ms = 0
        self._last_flush_wall = time.monotonic()
        self._offset_ms = 0
        self._clocks: dict[int, _ChannelClock] = {}

    def begin(
        self,
        verdict: Verdict,
        schedule: Schedule,
        urls: Sequence[str],
        model: str,
        rating_before: int | None,
    ) -> int | None:
        """Write the journal row before anything moves; its id (None without a journal)."""
        assert verdict.limits is not None
        if self.journal is not None:
            self.session_id = self.journal.begin_session(
                program=self.program.name,
                devices=urls,
                device_model=model,
                actuator=self.program.actuator,
                cap_level=verdict.limits.cap_level,
                limits=verdict.limits.model_dump(mode="json"),
                confirmations=[c.model_dump(mode="json") for c in verdict.confirmed],
                schedule=schedule.model_dump(mode="json"),
                repeats_planned=self.program.repeats,
                rating_before=rating_before,
                participant=self.participant,
                gateway=self.gateway,
                band=self.band,
            )
        return self.session_id

    def note(self, message: str) -> None:
        self._emit(Note(message))

    def fault(self, channel: int, code: str, message: str) -> None:
        self.faults.append(f"{code}: {message}")
        if self.journal is not None and self.session_id is not None:
            self.journal.add_fault(
                self.session_id, channel=channel, t_ms=None, code=code, message=message
            )
        self._emit(Fault(channel, code, message))

    def comfort(self, point: str, felt: int, level: int) -> None:
        """A "too strong": `level` becomes the remembered maximum for the point.

        `felt` is the level measured as the button was pressed (what the person felt then).
        """
        self.comfort_level = level
        if self.journal is not None and self.session_id is not None:
            self.journal.add_comfort_event(
                self.session_id,
                point=point,
                actuator=self.program.actuator,
                t_ms=self.plan_ms(0),
                old_level=felt,
                new_level=level,
            )

    def intensity(self, percent: int, level: int) -> None:
        """A lowered intensity: `percent` of full, `level` the new cap (no comfort maximum)."""
        if self.journal is not None and self.session_id is not None:
            self.journal.add_intensity_change(
                self.session_id, t_ms=self.plan_ms(0), percent=percent, level=level
            )

    def restart(self, offset_ms: int) -> None:
        """A (re)loaded schedule starts at `offset_ms` of the whole plan."""
        self._offset_ms = offset_ms
        self._clocks.clear()

    def segment_started(self, channel: int, elapsed_ms: int) -> None:
        """The device said where in its schedule it is: the next sample is pinned there."""
        self._clock(channel).pending_schedule_ms = elapsed_ms
        if channel == 0:
            self.flush()  # a phase change is a natural point to make the record durable

    def plan_ms(self, channel: int) -> int:
        """Session time of the latest sample on `channel`."""
        clock = self._clocks.get(channel)
        if clock is None or clock.session_ms is None:
            return self._offset_ms
        return clock.session_ms

    def _clock(self, channel: int) -> _ChannelClock:
        clock = self._clocks.get(channel)
        if clock is None:
            clock = self._clocks[channel] = _ChannelClock()
        return clock

    def _plan_ms(self, channel: int, sample: Telemetry) -> int:
        """Session time from START and segment events; the device's `t_ms` (its uptime,
        wrapping at 2**32) only measures the time since the last of them."""
        clock = self._clocks.get(channel) or self._clock(channel)
        t_ms = sample.t_ms
        pending = clock.pending_schedule_ms
        if pending is not None:
            clock.pending_schedule_ms = None
            clock.anchor_device_ms, clock.anchor_schedule_ms = t_ms, pending
            clock.last_device_ms = t_ms
        elif clock.anchor_device_ms is None:
            if sample.state != _RUNNING:
                return self.plan_ms(channel)  # not started yet
            clock.anchor_device_ms, clock.anchor_schedule_ms = t_ms, 0
            clock.last_device_ms = t_ms
        device_ms = clock.anchor_device_ms
        if sample.state == _PAUSED:
            # A pause stops the schedule's clock, not the device's: move the anchor along.
            device_ms = (device_ms + (t_ms - clock.last_device_ms) % _U32) % _U32
            clock.anchor_device_ms = device_ms
        clock.last_device_ms = t_ms
        now = self._offset_ms + clock.anchor_schedule_ms + (t_ms - device_ms) % _U32
        previous = clock.session_ms
        if previous is not None and previous > now:
            now = previous  # never backwards on a re-anchor
        clock.session_ms = now
        return now

    def sample(self, channel: int, sample: Telemetry) -> int:
        """Keep one sample per SAMPLE_EVERY_MS of plan time per channel; its plan time."""
        plan_ms = self._plan_ms(channel, sample)
        if plan_ms - self._last_sample_ms.get(channel, -SAMPLE_EVERY_MS) >= SAMPLE_EVERY_MS:
            self._last_sample_ms[channel] = plan_ms
            # A row, not a `Sample`: every value comes from a validated sample.
            self._samples.append(
                (channel, plan_ms, sample.measured_level, sample.target_level, int(sample.state))
            )
            if (
                plan_ms - self._last_flush_ms >= FLUSH_EVERY_MS
                and time.monotonic() - self._last_flush_wall >= FLUSH_EVERY_WALL_S
            ):
                self.flush()
        return plan_ms

    def flush(self) -> None:
        samples, self._samples = self._samples, []
        self._last_flush_wall = time.monotonic()
        if samples:
            self._last_flush_ms = max(row[1] for row in samples)
        if self.journal is not None and self.session_id is not None:
            self.journal.add_sample_rows(self.session_id, samples)

    def finish(
        self,
        outcome: Outcome,
        detail: str,
        monitors: list[ChannelMonitor],
        repeats_done: int,
        skew: float | None,
    ) -> None:
        self.flush()
        if self.journal is not None and self.session_id is not None:
            self.journal.end_session(
                self.session_id,
                outcome=outcome,
                detail=detail,
                peak_level=max((m.peak_level for m in monitors), default=None),
                repeats_done=repeats_done,
                start_skew_ms=skew,
            )

    def finish_quietly(
        self,
        outcome: Outcome,
        detail: str,
        monitors: list[ChannelMonitor],
        repeats_done: int,
        skew: float | None,
    ) -> None:
        """`finish` on a way out after an error: a broken journal must not hide that error."""
        if self.session_id is None:
            return
        try:
            self.finish(outcome, detail, monitors, repeats_done, skew)
        except Exception as exc:
            log.info("could not record the end of the session: %s", exc)
