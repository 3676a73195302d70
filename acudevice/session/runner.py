"""Run a program on one device or a pair: screen, limit, load, start, watch, end safely.

The runner owns the devices for the session. Whatever ends it — completion, a user stop,
a safety alarm, a lost link, Ctrl-C — the devices are left stopped and vented, and the
journal row says how it ended.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from acudevice.device import Device, DeviceError, connect
from acudevice.device.link import Sink
from acudevice.plan.library import load_points
from acudevice.plan.points import PointCatalog
from acudevice.plan.program import Program
from acudevice.plan.schedule import Schedule
from acudevice.protocol import FirmwareState
from acudevice.protocol.messages import (
    Event,
    FaultRaised,
    ScheduleDone,
    SegmentStarted,
    Telemetry,
    TelemetryBatch,
)
from acudevice.safety.profile import HealthProfile
from acudevice.safety.screening import Verdict
from acudevice.session.bands import estop_all, wait_vented
from acudevice.session.inbox import SessionInbox
from acudevice.session.intensity import (
    IntensityRequest,
    full_intensity,
    lower_intensity,
    too_strong,
)
from acudevice.session.model import (
    Command,
    SessionRefused,
    SessionResult,
    SessionView,
)
from acudevice.session.monitor import (
    LOW_BATTERY_START_PERCENT,
    Alarm,
    ChannelMonitor,
    tolerance_level,
)
from acudevice.session.reconnect import GaveUp, Reconnector
from acudevice.session.recorder import Recorder
from acudevice.session.verdict import verdict_for
from acudevice.store import Journal, Outcome

log = logging.getLogger("acudevice.session")

STALL_S = 3.0
_LINK_LOST = "link-lost"


class _Ended(Exception):
    def __init__(self, outcome: Outcome, detail: str) -> None:
        self.outcome = outcome
        self.detail = detail


class Session:
    """One session. `run()` once; commands (`too_strong`, `stop`, …) may come from any task."""

    def __init__(
        self,
        program: Program,
        urls: Sequence[str],
        *,
        profile: HealthProfile | None = None,
        confirm_reason: str | None = None,
        journal: Journal | None = None,
        catalog: PointCatalog | None = None,
        rating_before: int | None = None,
        reconnect_attempts: int = 3,
        link_losses_allowed: int = 5,
        end_on_link_loss: bool = False,
        on_update: Callable[[SessionView], None] | None = None,
        connect_fn: Callable[[str], Device] = connect,
    ) -> None:
        if not 1 <= len(urls) <= 2:
            raise ValueError("a session runs on one device or on a pair")
        self.program = program
        self.urls = list(urls)
        self.profile = profile or HealthProfile()
        self.confirm_reason = confirm_reason
        self.journal = journal
        self.catalog = catalog or load_points()
        self.rating_before = rating_before
        self.reconnector = Reconnector(
            connect_fn, self._note, reconnect_attempts, link_losses_allowed
        )
        self.end_on_link_loss = end_on_link_loss
        self.on_update = on_update
        self._connect = connect_fn
        self._inbox = SessionInbox()
        self._generation = 0
        self.point = self.catalog.resolve(program.sites[0].point).code
        self.devices: list[Device] = []
        self.verdict: Verdict | None = None
        self.record = Recorder(program, journal, self._publish)
        self._unsubscribe: list[Callable[[], None]] = []
        self._watching = False
        self._intensity_cap: int | None = None
        self.cancel_reason = "cancelled (Ctrl-C)"
        """What the journal says when the task is cancelled; a signal handler may set it."""

    # ---------------------------------------------------------------- commands

    def command(self, name: Command) -> None:
        self._inbox.put((-1, self._generation, name))

    def too_strong(self) -> None:
        self.command("too-strong")

    def pause(self) -> None:
        self.command("pause")

    def resume(self) -> None:
        self.command("resume")

    def stop(self) -> None:
        self.command("stop")

    async def lower_intensity(self, percent: int) -> str | None:
        """Lower the cap to `percent` of full intensity; None when done, else the refusal.

        Only ever lowers, and records no comfort maximum (it is not a discomfort report).
        """
        if not 1 <= percent <= 100:
            raise ValueError(f"intensity must be 1-100 %, not {percent}")
        if not self._watching:
            return "no session is running"
        request = IntensityRequest(percent, asyncio.get_running_loop().create_future())
        self._inbox.put((-1, self._generation, request))
        return await asyncio.shield(request.answer)

    # ---------------------------------------------------------------- lifecycle

    async def run(self) -> SessionResult:
        outcome: Outcome = "faulted"
        detail = "ended before it started"
        monitors: list[ChannelMonitor] = []
        repeats_done = 0
        skew: float | None = None
        vent = True
        try:
            for url in self.urls:
                device = self._connect(url)
                await device.open()
                self.devices.append(device)
            verdict = self._screen(self.devices[0])
            schedule = verdict.schedule
            assert schedule is not None and verdict.limits is not None
            for device in self.devices:
                if device.info.battery_percent < LOW_BATTERY_START_PERCENT:
                    raise DeviceError(
                        f"{device.url}: battery at {device.info.battery_percent} %; "
                        f"charge the band above {LOW_BATTERY_START_PERCENT} % first"
                    )
            self.record.begin(
                verdict, schedule, self.urls, self.devices[0].info.model, self.rating_before
            )
            tolerance = tolerance_level(self.devices[0].info.device_model)
            monitors = [
                ChannelMonitor(schedule, verdict.limits.cap_level, tolerance) for _ in self.devices
            ]
            skew = await self._load_and_start(schedule, verdict.limits.cap_level)
            outcome, detail, repeats_done = await self._watch(schedule, monitors)
            vent = outcome not in ("completed", "stopped")
        except asyncio.CancelledError:
            # Every way out vents first (ESTOP, then close); the journal can wait.
            await self._close_all(vent=True)
            done = min((m.current_repeat for m in monitors), default=0)
            self.record.finish_quietly("stopped", self.cancel_reason, monitors, done, skew)
            raise
        except _Ended as ended:
            outcome, detail = ended.outcome, ended.detail
        except (DeviceError, SessionRefused):
            await self._close_all(vent=True)
            self.record.finish_quietly("faulted", "device error", monitors, repeats_done, skew)
            raise
        except BaseException as exc:
            await self._close_all(vent=True)
            self.record.finish_quietly(
                "faulted", f"host error: {exc}", monitors, repeats_done, skew
            )
            raise
        await self._close_all(vent=vent)
        self.record.finish(outcome, detail, monitors, repeats_done, skew)
        assert self.verdict is not None and self.verdict.limits is not None
        return SessionResult(
            session_id=self.record.session_id,
            program=self.program.name,
            outcome=outcome,
            detail=detail,
            peak_level=max((m.peak_level for m in monitors), default=0),
            cap_level=self.verdict.limits.cap_level,
            actuator=self.program.actuator,
            repeats_done=repeats_done,
            repeats_planned=self.program.repeats,
            start_skew_ms=skew,
            faults=tuple(self.record.faults),
            comfort_level=self.record.comfort_level,
        )

    def _screen(self, device: Device) -> Verdict:
        verdict = verdict_for(
            self.program,
            device.info.device_model,
            self.catalog,
            self.profile,
            self.journal,
            confirm_reason=self.confirm_reason,
        )
        self.verdict = verdict
        if not verdict.runnable:
            raise SessionRefused(verdict)
        return verdict

    async def _load_and_start(
        self, schedule: Schedule, cap_level: int, lowered: int | None = None
    ) -> float | None:
        for device in self.devices:
            await device.set_limits(cap_level)
            await device.load(schedule)
            if lowered is not None and lowered < cap_level:
                # The plan was screened at `cap_level`; a band refuses to load it under a
                # lower cap, so a lowered one (too strong, intensity) is set once loaded.
                await device.set_limits(lowered)
        self._generation += 1
        self._unsubscribe_all()
        self._unsubscribe = [
            d.subscribe(self._sink(i, self._generation)) for i, d in enumerate(self.devices)
        ]
        started = await asyncio.gather(*(d.start() for d in self.devices))
        return (max(started) - min(started)) * 1000 if len(started) > 1 else None

    def _sink(self, channel: int, generation: int) -> Sink:
        """Straight from the link's reader into the inbox: one hop from the wire."""
        put = self._inbox.put

        def sink(item: Telemetry | TelemetryBatch | Event | None) -> None:
            put((channel, generation, _LINK_LOST if item is None else item))

        return sink

    def _unsubscribe_all(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    # ---------------------------------------------------------------- watching

    async def _watch(
        self, schedule: Schedule, monitors: list[ChannelMonitor]
    ) -> tuple[Outcome, str, int]:
        done: set[int] = set()
        offset_ms = 0
        # The loop's clock, like every deadline here (and virtual under looptime in tests).
        now = asyncio.get_running_loop().time
        last_seen = [now()] * len(self.devices)
        self._watching = True
        while True:
            entry = self._inbox.take()
            if entry is None:  # one deadline per burst: only an empty inbox arms it
                if not await self._inbox.wait(STALL_S / 3):
                    for i, seen in enumerate(last_seen):
                        if i not in done and now() - seen > STALL_S:
                            # A silent link is a lost link: reconnect rather than guess.
                            last_seen[i] = now()
                            self._inbox.put((i, self._generation, _LINK_LOST))
                continue
            channel, generation, item = entry
            if channel >= 0 and generation != self._generation:
                continue  # from a link we have already replaced
            if isinstance(item, IntensityRequest):
                assert self.verdict is not None
                full = full_intensity(self.verdict)
                lowered = await lower_intensity(item, full, self.devices, monitors, self.record)
                self._intensity_cap = lowered or self._intensity_cap
                continue
            if isinstance(item, str) and channel < 0:
                result = await self._command(item, monitors)
                if result is not None:
                    return result, f"{item} by the user", min(m.current_repeat for m in monitors)
                continue
            if item == _LINK_LOST:
                repeat = monitors[channel].current_repeat
                schedule, offset_ms = await self._recover(channel, schedule, repeat, offset_ms)
                self.record.restart(offset_ms)
                monitors[:] = [
                    ChannelMonitor(schedule, m.cap_level, m.tolerance_level, m.peak_level)
                    for m in monitors
                ]
                last_seen = [now()] * len(self.devices)
                done.clear()
                continue
            last_seen[channel] = now()
            finished = isinstance(item, ScheduleDone)
            if isinstance(item, Telemetry | TelemetryBatch):
                samples = item.samples if isinstance(item, TelemetryBatch) else (item,)
                await self._samples(channel, samples, monitors[channel])
                if channel not in done and monitors[channel].stopped_on_its_own:
                    # Its SCHEDULE_DONE (or the vent's events) lost on the link: telemetry
                    # says the band is at rest, so waiting for the event would be for ever.
                    await self._stopped_unannounced(channel, monitors[channel])
                    finished = True
            elif isinstance(item, SegmentStarted):
                self.record.segment_started(channel, item.elapsed_ms)
            elif isinstance(item, FaultRaised):
                await self._alarm(Alarm("device-fault", f"device fault {item.fault.name}"), channel)
            if finished:
                done.add(channel)
                if len(done) == len(self.devices):
                    self.record.flush()
                    return "completed", "all repeats done", self.program.repeats

    async def _samples(
        self, channel: int, samples: tuple[Telemetry, ...], monitor: ChannelMonitor
    ) -> None:
        """Every sample is checked, in order; the view shows the newest of a batch."""
        last = samples[-1]
        for sample in samples:
            alarm = monitor.check(sample)
            self.record.sample(channel, sample, monitor, show=sample is last or alarm is not None)
            if alarm is not None:
                await self._alarm(alarm, channel)

    async def _stopped_unannounced(self, channel: int, monitor: ChannelMonitor) -> None:
        """At rest with no SCHEDULE_DONE: done if it was in its last segment, else an alarm."""
        if monitor.reached_last_segment:
            self.record.note("the band finished and vented; its SCHEDULE_DONE event was lost")
            return
        segment = monitor.last_running_segment
        await self._alarm(
            Alarm("stopped-unannounced", f"the band went idle in segment {segment} unasked"),
            channel,
        )

    async def _alarm(self, alarm: Alarm, channel: int) -> None:
        await estop_all(self.devices)
        self.record.fault(channel, alarm.code, alarm.message)
        raise _Ended("faulted", f"{alarm.code}: {alarm.message}")

    async def _command(self, name: str, monitors: list[ChannelMonitor]) -> Outcome | None:
        if name == "estop":
            await estop_all(self.devices)
            self.record.note("ESTOP sent: the band is venting")
            return "estopped"
        if name == "stop":
            await asyncio.gather(*(d.stop() for d in self.devices))
            await wait_vented(self.devices)
            return "stopped"
        if name == "pause":
            await asyncio.gather(*(d.pause() for d in self.devices))
            self._set_paused(True)
        elif name == "resume":
            await asyncio.gather(*(d.resume() for d in self.devices))
            self._set_paused(False)
        elif name == "too-strong":
            await too_strong(self.devices, monitors, self.record, self.point)
        return None

    def _set_paused(self, paused: bool) -> None:
        if self.record.view is not None:
            self.record.view.paused = paused
        self.record.note("paused" if paused else "resumed")

    async def _recover(
        self, channel: int, schedule: Schedule, repeat: int, offset_ms: int
    ) -> tuple[Schedule, int]:
        """Reconnect the lost device and restart the current repeat from its ramp, never at pressure."""
        assert self.verdict is not None and self.verdict.limits is not None
        url = self.devices[channel].url
        self.record.fault(channel, "link-lost", f"lost the link to {url} in repeat {repeat + 1}")
        await self.devices[channel].close()
        others = [d for i, d in enumerate(self.devices) if i != channel and d.connected]
        await asyncio.gather(*(d.stop() for d in others), return_exceptions=True)
        if self.end_on_link_loss:
            raise _Ended("link-lost", f"lost the link to {url}; ending as asked")
        try:
            self.devices[channel] = await self.reconnector.reopen(url)
        except GaveUp as exc:
            raise _Ended("link-lost", str(exc)) from None
        status = await self.devices[channel].status()
        if status.state == FirmwareState.FAULT:
            self.record.fault(
                channel,
                f"device-{status.fault.name.lower()}",
                "the band vented on its own while the link was down",
            )
            await self.devices[channel].stop()  # clears the latched fault
        await wait_vented(self.devices)
        remaining = schedule.from_repeat(repeat)
        new_offset = offset_ms + next(s.start_ms for s in schedule.segments if s.repeat == repeat)
        self.record.note(f"reconnected; restarting repeat {repeat + 1} from its ramp")
        cap = self.verdict.limits.cap_level
        lowered = min(cap, self.record.comfort_level or cap, self._intensity_cap or cap)
        await self._load_and_start(remaining, cap, lowered)
        return remaining, new_offset

    def _note(self, message: str) -> None:
        self.record.note(message)

    def _publish(self, view: SessionView) -> None:
        if self.on_update is not None:
            self.on_update(view)

    async def _close_all(self, *, vent: bool) -> None:
        self._watching = False
        for _, _, item in self._inbox.drain():  # nobody waits forever on an ended session
            if isinstance(item, IntensityRequest):
                item.answer_once("the session ended")
        self._unsubscribe_all()
        await asyncio.gather(*(d.close(vent=vent) for d in self.devices), return_exceptions=True)
