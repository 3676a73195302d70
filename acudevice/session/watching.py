"""Watching a running session: every sample checked, commands applied, lost links recovered.

One loop reads the inbox in arrival order (samples, events, lost links, commands), so a
command is applied between two samples and never races the safety checks. It decides how the
session ends and returns that as an `Ending`; it never raises one.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from acudevice.device import DeviceDisconnected, DeviceError
from acudevice.device.stopping import vent_and_clear
from acudevice.plan.schedule import Schedule
from acudevice.protocol import FaultCode, FirmwareState
from acudevice.protocol.messages import (
    Event,
    FaultRaised,
    ScheduleDone,
    SegmentStarted,
    Telemetry,
    TelemetryBatch,
)
from acudevice.session.bands import SessionBands
from acudevice.session.cap import CapCause
from acudevice.session.events import LinkLost, Progress, Reading, Running, SessionState
from acudevice.session.inbox import FromBand, IntensityRequest, LinkDown, UserCommand
from acudevice.session.model import Ending
from acudevice.session.monitor import Alarm, ChannelMonitor

if TYPE_CHECKING:
    from acudevice.session.runner import Session

STALL_S = 3.0
"""A band silent this long (wall time) is treated as lost: reconnect rather than guess."""
BAND_LOST_US = "the band stopped hearing us: its watchdog vented it"
"""A WATCHDOG fault is a lost link seen from the band's side (our frames stopped reaching it
while its own still came): recovered as one, not ended as a broken band."""
RAISE_REFUSED = "intensity can only be lowered during a session; start a new session for more"


class Watch:
    def __init__(
        self,
        session: Session,
        bands: SessionBands,
        schedule: Schedule,
        monitors: list[ChannelMonitor],
    ) -> None:
        self.session = session
        self.bands = bands
        self.schedule = schedule
        self.monitors = monitors
        self.skew_ms: float | None = None
        self._offset_ms = 0
        self._losses = 0
        self._readings = [Reading(url, 0, 0, 0, "IDLE") for url in bands.urls]
        self._elapsed_ms = 0
        self._phase = "starting"
        self._repeat = 0
        self._completed = False

    @property
    def repeats_done(self) -> int:
        if self._completed:
            return self.session.program.repeats
        return min((m.current_repeat for m in self.monitors), default=0)

    async def start(self) -> None:
        cap = self.session.cap_level
        assert cap is not None
        self.skew_ms = await self.bands.load_and_start(self.schedule, cap)
        self.session._emit(Running(self.skew_ms))
        self.session._set_state(SessionState.RUNNING)

    # ---------------------------------------------------------------- the loop

    async def run(self) -> Ending:
        session, bands, inbox = self.session, self.bands, self.session._inbox
        done: set[int] = set()
        # The loop's clock, like every deadline here (and virtual under looptime in tests).
        now = asyncio.get_running_loop().time
        last_seen = [now()] * len(bands.devices)
        while True:
            entry = inbox.take()
            if entry is None:  # one deadline per burst: only an empty inbox arms it
                if not await inbox.wait(STALL_S / 3):
                    for i, seen in enumerate(last_seen):
                        if i not in done and now() - seen > STALL_S:
                            last_seen[i] = now()
                            inbox.put(LinkDown(i, bands.generation, f"silent for {STALL_S:g} s"))
                continue
            ending: Ending | None = None
            if isinstance(entry, FromBand):
                if entry.generation != bands.generation:
                    continue  # from a link we have already replaced
                channel, item = entry.channel, entry.item
                last_seen[channel] = now()
                said = await self._from_band(channel, item, done)
                if isinstance(said, LinkDown):
                    entry = said  # the band stopped hearing us: a lost link, handled below
                else:
                    ending = said
            if isinstance(entry, LinkDown):
                if entry.generation != bands.generation:
                    continue
                ending = await self._recover(entry.channel, entry.why)
                last_seen = [now()] * len(bands.devices)
                done.clear()
            elif isinstance(entry, UserCommand):
                ending = await self._command(entry)
            elif isinstance(entry, IntensityRequest):
                ending = await self._lower_intensity(entry)
            if ending is not None:
                return ending
            if len(done) == len(bands.devices):
                session.record.flush()
                self._completed = True
                return Ending("completed", "all repeats done", vent=False)

    async def _from_band(
        self, channel: int, item: Telemetry | TelemetryBatch | Event, done: set[int]
    ) -> Ending | LinkDown | None:
        """How the session ends after `item`, a lost link, or None to go on."""
        monitor = self.monitors[channel]
        finished = isinstance(item, ScheduleDone)
        if isinstance(item, Telemetry | TelemetryBatch):
            samples = item.samples if isinstance(item, TelemetryBatch) else (item,)
            alarm = self._samples(channel, samples, monitor)
            if alarm is None and channel not in done and monitor.stopped_on_its_own:
                # Its SCHEDULE_DONE (or the vent's events) lost on the link: telemetry says
                # the band is at rest, so waiting for the event would be for ever.
                alarm = self._stopped_unannounced(monitor)
                finished = alarm is None
            if alarm is not None:
                if alarm.code == "device-fault" and await self._watchdog_tripped(channel):
                    return LinkDown(channel, self.bands.generation, BAND_LOST_US)
                return await self._alarm(alarm, channel)
        elif isinstance(item, SegmentStarted):
            self.session.record.segment_started(channel, item.elapsed_ms)
        elif isinstance(item, FaultRaised):
            if item.fault == FaultCode.WATCHDOG:
                return LinkDown(channel, self.bands.generation, BAND_LOST_US)
            return await self._alarm(
                Alarm("device-fault", f"device fault {item.fault.name}"), channel
            )
        if finished:
            done.add(channel)
        return None

    async def _watchdog_tripped(self, channel: int) -> bool:
        """A band seen faulted in its telemetry, its FAULT_RAISED lost (a line silent for a
        while loses events too): asked, it says whether it was its watchdog."""
        try:
            status = await self.bands.devices[channel].status()
        except DeviceError:
            return False
        return status.fault == FaultCode.WATCHDOG

    def _samples(
        self, channel: int, samples: tuple[Telemetry, ...], monitor: ChannelMonitor
    ) -> Alarm | None:
        """Every sample is checked, in order; the view shows the newest of a batch."""
        record = self.session.record
        plan_ms = 0
        for sample in samples:
            alarm = monitor.check(sample)
            plan_ms = record.sample(channel, sample)
            if alarm is not None:
                self._show(channel, sample, monitor, plan_ms)
                return alarm
        self._show(channel, samples[-1], monitor, plan_ms)
        return None

    def _show(self, channel: int, sample: Telemetry, monitor: ChannelMonitor, plan_ms: int) -> None:
        state = FirmwareState(sample.state).name
        self._readings[channel] = Reading(
            self._readings[channel].url,
            sample.measured_level,
            sample.target_level,
            sample.battery_percent,
            state,
        )
        if channel == 0:
            phase = monitor.phase_of(sample)
            self._elapsed_ms = plan_ms
            self._phase = str(phase) if phase else state.lower()
            self._repeat = monitor.repeat_of(sample) or 0
        self.session._emit(
            Progress(self._elapsed_ms, self._repeat, self._phase, tuple(self._readings))
        )

    def _stopped_unannounced(self, monitor: ChannelMonitor) -> Alarm | None:
        """At rest with no SCHEDULE_DONE: done if it was in its last segment, else an alarm."""
        if monitor.reached_last_segment:
            self.session.record.note(
                "the band finished and vented; its SCHEDULE_DONE event was lost"
            )
            return None
        segment = monitor.last_running_segment
        return Alarm("stopped-unannounced", f"the band went idle in segment {segment} unasked")

    async def _alarm(self, alarm: Alarm, channel: int) -> Ending:
        self.session._set_state(SessionState.VENTING, alarm.code)
        await self.bands.vent()
        self.session.record.fault(channel, alarm.code, alarm.message)
        return Ending("faulted", f"{alarm.code}: {alarm.message}")

    # ---------------------------------------------------------------- commands

    async def _command(self, command: UserCommand) -> Ending | None:
        session, bands, name = self.session, self.bands, command.command
        state = session.state
        if name == "estop":
            session._set_state(SessionState.VENTING, f"emergency stop {command.reason}")
            await bands.vent()
            session.record.note("ESTOP sent: the band is venting")
            return Ending("estopped", f"emergency stop {command.reason}")
        if name == "stop":
            session._set_state(SessionState.STOPPING, f"stop {command.reason}")
            await asyncio.gather(*(d.stop() for d in bands.devices if d.connected))
            await bands.wait_vented()
            return Ending("stopped", f"stop {command.reason}", vent=False)
        if name == "pause" and state is SessionState.RUNNING:
            await asyncio.gather(*(d.pause() for d in bands.devices))
            session._set_state(SessionState.PAUSED)
            session.record.note("paused")
        elif name == "resume" and state is SessionState.PAUSED:
            await asyncio.gather(*(d.resume() for d in bands.devices))
            session._set_state(SessionState.RUNNING)
            session.record.note("resumed")
        elif name in ("pause", "resume"):
            session.record.note(f"{name} ignored: the session is {state.value}")
        elif name == "too-strong":
            await self._too_strong()
        return None

    async def _too_strong(self) -> None:
        """Drop at once to 70 % of what was felt, and remember it for the point (unlike a
        lowered intensity, this is a report of discomfort)."""
        session = self.session
        assert session._cap is not None
        felt = max((m.last.measured_level for m in self.monitors if m.last is not None), default=0)
        level = session._cap.too_strong_level(max(felt, 0))
        await self.bands.set_cap(level)
        if session.lower_cap(level, CapCause.TOO_STRONG, felt_level=felt):
            for m in self.monitors:
                m.lower_cap(level)
            session.record.comfort(session.point, felt, level)

    async def _lower_intensity(self, request: IntensityRequest) -> Ending | None:
        cap = self.session._cap
        assert cap is not None
        level = cap.intensity_level(request.percent)
        if level >= cap.current or request.percent >= cap.percent:
            request.answer_once(
                f"{RAISE_REFUSED} (now at {cap.percent} %, asked {request.percent} %)"
            )
            return None
        try:
            await self.bands.set_cap(level)
        except BaseException:
            request.answer_once("the band did not accept the lower limit; the session ends")
            raise
        self.session.lower_cap(level, CapCause.INTENSITY)
        for m in self.monitors:
            m.lower_cap(level)
        try:
            self.session.record.intensity(request.percent, level)  # journalled before the reply
        finally:
            request.answer_once(None)  # lowered, even if the journal then failed
        return None

    # ---------------------------------------------------------------- lost links

    async def _recover(self, channel: int, why: str) -> Ending | None:
        """Get the lost band back and restart the current repeat from its ramp, never at
        pressure; or end as `link-lost`, the band left to its watchdog."""
        session, bands, link = self.session, self.bands, self.session.link
        repeat = self.monitors[channel].current_repeat
        url = bands.urls[channel]
        session._set_state(SessionState.RECOVERING, why)
        session._emit(LinkLost(channel, url, why))
        session.record.fault(
            channel, "link-lost", f"lost the link to {url} in repeat {repeat + 1}: {why}"
        )
        await bands.stop(but=channel)
        if link.end_on_link_loss:
            return Ending("link-lost", f"lost the link to {url}; ending as asked")
        self._losses += 1
        if self._losses > link.losses_allowed:
            return Ending(
                "link-lost",
                f"lost the link {self._losses} times in one session "
                f"(allowed {link.losses_allowed}); ending rather than restarting again",
            )
        try:
            device = await bands.reopen(channel, link.reopen_within_s)
        except DeviceDisconnected as exc:
            return Ending("link-lost", f"could not reconnect to {url}: {exc}")
        # A band that vented on its own clears its fault only once vented: its vent may
        # still be under way (seconds, on a real band), so wait for it, then clear.
        found, now = await vent_and_clear(device)
        if found.state == FirmwareState.FAULT:
            session.record.fault(
                channel,
                f"device-{found.fault.name.lower()}",
                "the band vented on its own while the link was down",
            )
        if now.state != FirmwareState.IDLE:
            return Ending(
                "faulted",
                f"{url} is not back at rest after the lost link "
                f"({now.state.name}, fault {now.fault.name}); it needs attention",
            )
        await bands.wait_vented()
        remaining = self.schedule.from_repeat(repeat)
        self._offset_ms += next(s.start_ms for s in self.schedule.segments if s.repeat == repeat)
        self.schedule = remaining
        session.record.note(f"reconnected; restarting repeat {repeat + 1} from its ramp")
        session.record.restart(self._offset_ms)
        self.monitors[:] = [
            ChannelMonitor(remaining, m.cap_level, m.tolerance_level, m.peak_level)
            for m in self.monitors
        ]
        await self.start()
        return None
