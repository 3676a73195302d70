"""The one session a gateway band may run: started, watched through its events, guarded, ended.

Remotely started sessions carry a time limit and stop when the broker has been gone for the
grace period; local ones only stop when someone says so. Everything the gateway says of a
session (started, comfort, finished, its state) comes from the session's events.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from acudevice.bridge.payloads import EventKind
from acudevice.device.keeper import Keeper
from acudevice.plan.devices import format_level
from acudevice.plan.program import Program
from acudevice.protocol import FirmwareState
from acudevice.session.cap import CapCause
from acudevice.session.events import (
    CapLowered,
    Ended,
    Running,
    SessionEvent,
    SessionState,
    StateChanged,
)
from acudevice.session.model import Command, SessionResult
from acudevice.session.runner import Session
from acudevice.session.view import SessionView

Origin = Literal["local", "remote"]
_COMING_DOWN = (SessionState.STOPPING, SessionState.VENTING, SessionState.ENDED)
SessionMaker = Callable[[Program, Keeper, str], Session]
"""(program, the band's keeper, band id) -> a Session the gateway configured."""


class StartRefused(Exception):
    """A start the band will not (or could not) carry out; the reason is for the reply."""


@dataclass
class SlotSettings:
    make_session: SessionMaker
    broker_grace_s: float = 10.0
    remote_max_s: float = 3600.0


class SlotOwner(Protocol):
    """The band agent, as the slot sees it: where events go, and its state to publish."""

    band: str

    def event(self, kind: EventKind, **fields: str | None) -> None: ...

    def publish_state(self, *, at_once: bool = False) -> None: ...


class SessionSlot:
    def __init__(self, owner: SlotOwner, keeper: Keeper, settings: SlotSettings) -> None:
        self.owner = owner
        self.keeper = keeper
        self.settings = settings
        self.session: Session | None = None
        self.origin: Origin | None = None
        self.program: Program | None = None
        self.view: SessionView | None = None
        self.broker_up = False
        self._task: asyncio.Task[SessionResult] | None = None
        self._guards: list[asyncio.Task[None]] = []
        self._grace: asyncio.Task[None] | None = None
        self._state_changed = asyncio.Event()

    @property
    def busy(self) -> bool:
        return self.session is not None

    # ---------------------------------------------------------------- starting

    async def start(self, program: Program, origin: Origin, request_id: str | None = None) -> None:
        """Start `program`; returns once the band accepted START, raises StartRefused otherwise."""
        band = self.owner.band
        if not self.keeper.ready:
            raise StartRefused(f"band {band} is not connected")
        if self.session is not None:
            what = self.program.name if self.program else "a session"
            raise StartRefused(f"band {band} is already running {what}")
        status = await self.keeper.device.status()
        if status.state != FirmwareState.IDLE:
            raise StartRefused(f"band {band} is not idle (it is {status.state.name})")
        session = self.settings.make_session(program, self.keeper, band)
        running: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.session, self.origin, self.program = session, origin, program
        self.view = SessionView.follow(session)
        session.subscribe(lambda event: self._on_event(event, running))
        self._task = task = asyncio.create_task(session.run(), name=f"acudevice-session-{band}")
        task.add_done_callback(_retrieve)  # an error is reported by its Ended event, not lost
        waits: list[asyncio.Future[Any]] = [task, running]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if not running.done():
            reason = _refusal(task)
            self._clear()
            self.owner.event(
                "session-refused",
                program=program.name,
                origin=origin,
                detail=reason,
                request_id=request_id,
            )
            raise StartRefused(reason)
        self.owner.event(
            "session-started", program=program.name, origin=origin, request_id=request_id
        )
        if origin == "remote":
            self._guards.append(asyncio.create_task(self._time_limit(session)))
            if not self.broker_up:
                self.broker_lost()
        self.owner.publish_state()

    def _on_event(self, event: SessionEvent, running: asyncio.Future[None]) -> None:
        if isinstance(event, Running):
            if not running.done():
                running.set_result(None)
        elif isinstance(event, CapLowered) and event.cause is CapCause.TOO_STRONG:
            assert self.view is not None
            level = format_level(event.level, self.view.actuator)
            felt = format_level(event.felt_level or 0, self.view.actuator)
            self.owner.event(
                "comfort",
                program=self.program.name if self.program else None,
                detail=f"too strong at {felt}: lowered to {level}",
            )
        elif isinstance(event, StateChanged):
            self._state_changed.set()
            self._state_changed = asyncio.Event()
            self.owner.publish_state(at_once=True)  # "stopping" must not wait a second
            return
        elif isinstance(event, Ended) and running.done():
            self._finished(event.result)
            return
        self.owner.publish_state()

    def _finished(self, result: SessionResult) -> None:
        program, origin = self.program, self.origin
        self._clear()
        self.owner.event(
            "session-finished",
            program=program.name if program else None,
            origin=origin,
            outcome=result.outcome,
            detail=result.detail,
        )
        self.owner.publish_state()

    def _clear(self) -> None:
        for guard in [*self._guards, self._grace]:
            if guard is not None:
                guard.cancel()
        self._guards, self._grace = [], None
        self.session, self.origin, self.program, self.view = None, None, None, None
        self._task = None

    # ---------------------------------------------------------------- guards

    async def _time_limit(self, session: Session) -> None:
        await asyncio.sleep(self.settings.remote_max_s)
        if self.session is session:
            limit = self.settings.remote_max_s
            self.owner.event(
                "session-limit", detail=f"remote session reached its {limit:g} s limit"
            )
            session.stop(f"at the remote session limit ({limit:g} s)")

    def broker_lost(self) -> None:
        self.broker_up = False
        if self.session is not None and self.origin == "remote" and self._grace is None:
            self._grace = asyncio.create_task(self._grace_period(self.session))

    def broker_back(self) -> None:
        self.broker_up = True
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None

    async def _grace_period(self, session: Session) -> None:
        grace = self.settings.broker_grace_s
        await asyncio.sleep(grace)
        if self.session is session and not self.broker_up:
            self.owner.event(
                "broker-outage",
                program=self.program.name if self.program else None,
                origin="remote",
                detail=f"broker unreachable for {grace:g} s: stopped the remotely started session",
            )
            session.stop(f"after the broker was unreachable for {grace:g} s")

    # ---------------------------------------------------------------- commands

    async def stop(self, *, emergency: bool) -> str | None:
        """Tell a running session to stop (or vent) and wait until the band is coming down;
        None when no session runs."""
        session = self.session
        if session is None:
            return None
        session.command("estop" if emergency else "stop", "by a remote command")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                while session.state not in _COMING_DOWN:
                    await self._state_changed.wait()
        return "venting" if emergency else "stopping"

    def command(self, verb: Command) -> str | None:
        """Pass pause, resume or too-strong to the session; the refusal, or None."""
        session = self.session
        if session is None:
            return f"no session is running on band {self.owner.band}"
        state = session.state
        if verb == "pause" and state is not SessionState.RUNNING:
            return f"cannot pause: the session is {state.value}"
        if verb == "resume" and state is not SessionState.PAUSED:
            return f"cannot resume: the session is {state.value}"
        session.command(verb)
        return None

    async def lower_intensity(self, percent: int) -> str | None:
        if self.session is None:
            return f"no session is running on band {self.owner.band}"
        return await self.session.lower_intensity(percent)

    async def shut_down(self, reason: str) -> None:
        """End a running session (it vents and says `session-finished`) and wait for it."""
        task, session = self._task, self.session
        if task is None or session is None or task.done():
            return
        session.cancel(reason)
        await asyncio.wait([task])


def _retrieve(task: asyncio.Task[SessionResult]) -> None:
    if not task.cancelled():
        task.exception()


def _refusal(task: asyncio.Task[SessionResult]) -> str:
    if task.cancelled():
        return "cancelled"
    exc = task.exception()
    if exc is not None:
        return str(exc)
    result = task.result()
    if result.refused or result.error is not None:
        return result.detail or result.outcome
    return f"ended before starting: {result.outcome} {result.detail or ''}".strip()
