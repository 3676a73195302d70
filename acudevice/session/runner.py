"""Run a program on one band or a pair: screen, limit, load, start, watch, end safely.

    session = Session(program, ["sim://"], journal=journal)
    session.subscribe(print)            # Started, Progress, CapLowered, Fault, Ended, ...
    result = await session.run()        # one SessionResult, however it ended

The session leases its bands from keepers (`acudevice.device.keeper`) and never connects
itself: given URLs it makes keepers of its own and closes them at the end. Whatever ends it —
completion, a stop, a safety alarm, a lost link, a cancel — the bands are left stopped or
vented and the journal row says how it ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from acudevice.device import Device, DeviceError, connect
from acudevice.device.keeper import Keeper, ReconnectPolicy
from acudevice.errors import AcuDeviceError, InputError
from acudevice.plan.library import load_points
from acudevice.plan.points import PointCatalog
from acudevice.plan.program import Program
from acudevice.safety.profile import HealthProfile
from acudevice.safety.screening import Verdict
from acudevice.session.bands import SessionBands
from acudevice.session.cap import Cap, CapCause
from acudevice.session.events import (
    CapLowered,
    Ended,
    EventSink,
    SessionEvent,
    SessionState,
    Started,
    StateChanged,
)
from acudevice.session.inbox import IntensityRequest, SessionInbox, UserCommand
from acudevice.session.model import Command, Ending, SessionRefused, SessionResult
from acudevice.session.monitor import LOW_BATTERY_START_PERCENT, ChannelMonitor, tolerance_level
from acudevice.session.recorder import Recorder
from acudevice.session.verdict import verdict_for
from acudevice.session.watching import Watch
from acudevice.store import Journal, StoreError, check_participant

log = logging.getLogger("acudevice.session")

SESSION_RECONNECT = ReconnectPolicy(
    initial_s=0.5, maximum_s=4.0, first_attempts=1, attempts_per_loss=3
)
"""For the bands a session connects itself: a wrong URL fails at once; a lost band gets
three tries (0.5, 1, 2 s apart, jittered)."""


@dataclass(frozen=True)
class LinkPolicy:
    """What a session does about a lost link (the keepers decide how to reconnect)."""

    end_on_link_loss: bool = False
    """End as `link-lost` at the first loss instead of reconnecting (the band is left to its
    watchdog); a gateway whose sessions are started remotely may want this."""
    losses_allowed: int = 5
    """Per session, not per loss: a link that drops after every reconnect would restart the
    same repeat for ever, so past this many losses the session ends instead."""
    reopen_within_s: float = 10.0
    """Per loss: how long to wait for the keeper to have the band back."""
    connect_within_s: float = 30.0
    """At the start: how long to wait for every band."""


class Session:
    """One session. `run()` once; commands (`too_strong`, `stop`, ...) may come from any task."""

    def __init__(
        self,
        program: Program,
        bands: Sequence[str | Keeper],
        *,
        profile: HealthProfile | None = None,
        confirm_reason: str | None = None,
        journal: Journal | None = None,
        catalog: PointCatalog | None = None,
        rating_before: int | None = None,
        link: LinkPolicy | None = None,
        reconnect: ReconnectPolicy = SESSION_RECONNECT,
        connect: Callable[[str], Device] = connect,
        participant: str | None = None,
        gateway: str | None = None,
        band: str | None = None,
    ) -> None:
        """`bands`: URLs (or paired aliases), for which the session makes and closes keepers
        with the `reconnect` policy, or keepers the caller keeps (a gateway's).

        `participant` (a pseudonym) wears the band: screening uses their remembered comfort
        maxima only and a "too strong" lowers theirs. `gateway` and `band` say where it ran;
        with a `gateway` the journal queues the session's records for the study centre.
        """
        if not 1 <= len(bands) <= 2:
            raise ValueError("a session runs on one device or on a pair")
        if participant is not None:
            check_participant(participant)
        self.participant = participant
        self.program = program
        self.profile = profile or HealthProfile()
        self.confirm_reason = confirm_reason
        self.journal = journal
        self.catalog = catalog or load_points()
        self.rating_before = rating_before
        self.link = link or LinkPolicy()
        self._keepers = [
            b if isinstance(b, Keeper) else Keeper(b, policy=reconnect, connect=connect)
            for b in bands
        ]
        self._owned = [k for k, b in zip(self._keepers, bands, strict=True) if k is not b]
        self.point = self.catalog.resolve(program.sites[0].point).code
        self._inbox = SessionInbox()
        self._sinks: list[EventSink] = []
        self._state = SessionState.PREPARING
        self.record = Recorder(
            program, journal, self._emit, participant=participant, gateway=gateway, band=band
        )
        self._cap: Cap | None = None
        self._task: asyncio.Task[object] | None = None
        self._cancel_reason: str | None = None

    # ---------------------------------------------------------------- events out

    def subscribe(self, sink: EventSink) -> Callable[[], None]:
        """Call `sink` with every event from now on, in the session's task; it must not
        block. Returns the function that unsubscribes."""
        self._sinks.append(sink)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._sinks.remove(sink)

        return unsubscribe

    def _emit(self, event: SessionEvent) -> None:
        for sink in list(self._sinks):
            try:
                sink(event)
            except Exception:  # a subscriber's bug must not stop the safety loop
                log.exception("session subscriber failed on %s", type(event).__name__)

    @property
    def state(self) -> SessionState:
        return self._state

    def _set_state(self, state: SessionState, why: str | None = None) -> None:
        if state is not self._state:
            self._state = state
            self._emit(StateChanged(state, why))

    @property
    def cap_level(self) -> int | None:
        """The cap now (lowered by the person, never raised); None before screening."""
        return None if self._cap is None else self._cap.current

    # ---------------------------------------------------------------- commands in

    def command(self, name: Command, reason: str = "by the user") -> None:
        """Queue a command; `reason` is what the journal says of a stop."""
        self._inbox.put(UserCommand(name, reason))

    def too_strong(self) -> None:
        self.command("too-strong")

    def pause(self) -> None:
        self.command("pause")

    def resume(self) -> None:
        self.command("resume")

    def stop(self, reason: str = "by the user") -> None:
        self.command("stop", reason)

    def estop(self, reason: str = "by the user") -> None:
        self.command("estop", reason)

    def cancel(self, reason: str) -> None:
        """End now from anywhere (a signal handler, a shutdown): the bands vent, the journal
        says `stopped` with `reason`, and `run()` returns; it does not raise."""
        self._cancel_reason = reason
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def lower_intensity(self, percent: int) -> str | None:
        """Lower the cap to `percent` of full intensity; None when done, else the refusal.

        Only ever lowers, and records no comfort maximum (it is not a discomfort report).
        """
        if not 1 <= percent <= 100:
            raise ValueError(f"intensity must be 1-100 %, not {percent}")
        if self._state not in (SessionState.RUNNING, SessionState.PAUSED):
            return "no session is running"
        request = IntensityRequest(percent, asyncio.get_running_loop().create_future())
        self._inbox.put(request)
        return await asyncio.shield(request.answer)

    # ---------------------------------------------------------------- running

    async def run(self) -> SessionResult:
        """Run to the end; a cancel aimed at the caller's task is recorded and re-raised."""
        self._task = asyncio.current_task()
        bands = SessionBands(self._keepers, self._inbox)
        watch: Watch | None = None
        try:
            async with contextlib.AsyncExitStack() as held:
                for keeper in self._owned:
                    await held.enter_async_context(keeper)
                ending, watch = await self._run_on(bands, held)
                if ending.vent:
                    await bands.vent()
                bands.ignore()
        except asyncio.CancelledError:
            ending = Ending("stopped", self._cancel_reason or "cancelled (Ctrl-C)")
            result = self._finish(ending, watch, quietly=True)
            task = asyncio.current_task()
            if self._cancel_reason is None or task is None or task.uncancel() > 0:
                raise  # aimed at the caller too: never swallowed
            return result
        except BaseException as exc:
            self._finish(Ending("faulted", f"host error: {exc!r}"), watch, quietly=True)
            raise
        return self._finish(ending, watch)

    async def _run_on(
        self, bands: SessionBands, held: contextlib.AsyncExitStack
    ) -> tuple[Ending, Watch | None]:
        """Prepare and watch; every ending is a value, and leaving `held` stops the bands."""
        try:
            await bands.lease(held, self.link.connect_within_s)
            verdict = self._screen(bands.devices[0])
        except SessionRefused as refused:
            return Ending("refused", str(refused), vent=False, error=refused), None
        except AcuDeviceError as exc:
            return Ending("faulted", str(exc), error=exc), None
        schedule = verdict.schedule
        assert schedule is not None and verdict.limits is not None
        for device in bands.devices:
            battery = device.info.battery_percent
            if battery < LOW_BATTERY_START_PERCENT:
                problem = DeviceError(
                    f"{device.url}: battery at {battery} %; "
                    f"charge the band above {LOW_BATTERY_START_PERCENT} % first"
                )
                return Ending("faulted", str(problem), vent=False, error=problem), None
        self._cap = cap = Cap(verdict.limits.cap_level, schedule.peak_level)
        try:
            session_id = self.record.begin(
                verdict, schedule, bands.urls, bands.devices[0].info.model, self.rating_before
            )
        except InputError as refused:  # the journal will not take this participant (withdrawn)
            return Ending("refused", str(refused), vent=False, error=refused), None
        self._emit(
            Started(
                session_id=session_id,
                program=self.program.name,
                title=self.program.title,
                actuator=self.program.actuator,
                point=self.point,
                total_ms=schedule.total_ms,
                repeats=self.program.repeats,
                cap_level=cap.current,
                full_level=cap.full,
                urls=tuple(bands.urls),
            )
        )
        tolerance = tolerance_level(bands.devices[0].info.device_model)
        monitors = [ChannelMonitor(schedule, cap.current, tolerance) for _ in bands.devices]
        watch = Watch(self, bands, schedule, monitors)
        try:
            await watch.start()
            ending = await watch.run()
        except StoreError as exc:
            ending = Ending("faulted", f"journal error: {exc}", error=exc)
        except AcuDeviceError as exc:
            ending = Ending("faulted", f"device error: {exc}", error=exc)
            self.record.fault(0, "device-error", str(exc))
        return ending, watch

    def _screen(self, device: Device) -> Verdict:
        verdict = verdict_for(
            self.program,
            device.info.device_model,
            self.catalog,
            self.profile,
            self.journal,
            confirm_reason=self.confirm_reason,
            participant=self.participant,
        )
        if not verdict.runnable:
            raise SessionRefused(verdict)
        return verdict

    def lower_cap(self, level: int, cause: CapCause, **said: int | None) -> bool:
        """The one way the cap changes (by the watch): lowered and told, or refused (False)."""
        assert self._cap is not None
        change = self._cap.lower(level, cause)
        if change is None:
            return False
        self._emit(
            CapLowered(change.level, change.previous, cause, percent=self._cap.percent, **said)
        )
        return True

    def _finish(
        self, ending: Ending, watch: Watch | None, *, quietly: bool = False
    ) -> SessionResult:
        """Journal the ending (the bands were told to stop first), say it, and return it.

        `quietly`: on a way out after an error or a cancel, a broken journal must not hide it.
        """
        self._set_state(SessionState.ENDED, ending.detail)
        monitors = watch.monitors if watch is not None else []
        repeats_done, skew = (watch.repeats_done, watch.skew_ms) if watch else (0, None)
        error = ending.error
        if ending.outcome != "refused":
            outcome, detail = ending.outcome, ending.detail
            if quietly:
                self.record.finish_quietly(outcome, detail, monitors, repeats_done, skew)
            else:
                try:
                    self.record.finish(outcome, detail, monitors, repeats_done, skew)
                except StoreError as exc:
                    error = error or exc
        cap = self._cap
        result = SessionResult(
            session_id=self.record.session_id,
            program=self.program.name,
            outcome=ending.outcome,
            detail=ending.detail,
            peak_level=max((m.peak_level for m in monitors), default=0),
            cap_level=cap.current if cap else 0,
            actuator=self.program.actuator,
            repeats_done=repeats_done,
            repeats_planned=self.program.repeats,
            start_skew_ms=skew,
            faults=tuple(self.record.faults),
            comfort_level=self.record.comfort_level,
            screened_cap_level=cap.screened if cap else 0,
            verdict=error.verdict if isinstance(error, SessionRefused) else None,
            error=error,
        )
        self._emit(Ended(result))
        return result
