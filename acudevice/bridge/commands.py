"""Commands from the broker: untrusted input, screened before anything moves.

Rules, in order: a retained command is stale by definition and is refused; the body is parsed
by its pydantic model (size-limited); a repeated `request_id` gets the first answer again and
is never executed twice, except stop and estop, which are always honoured (with or without a
body, with any id, every time); a remote start passes the guard (enabled, by name, fresh,
band idle, safety screening) or is refused.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from acudevice.bridge.band import BandAgent, StartRefused
from acudevice.bridge.payloads import (
    BadCommand,
    CommandResult,
    IntensityCommand,
    StartCommand,
    Status,
    parse_command,
)
from acudevice.errors import AcuDeviceError
from acudevice.plan.library import ProgramLibrary
from acudevice.plan.program import Program

MAX_COMMAND_AGE_S = 10.0
REMEMBERED_REQUESTS = 1024


def program_seconds(program: Program) -> float:
    once = sum(phase.duration_s for phase in program.phases)
    return once * program.repeats + program.rest_between_s * (program.repeats - 1)


@dataclass
class StartGuard:
    allowed: bool
    library: ProgramLibrary
    remote_max_s: float
    max_age_s: float = MAX_COMMAND_AGE_S

    def program_for(self, command: StartCommand, now: float) -> Program:
        """The installed program the command names; raises StartRefused with the reason."""
        if not self.allowed:
            raise StartRefused("remote start is disabled on this gateway (--allow-remote-start)")
        issued = command.issued_at
        if issued.tzinfo is None:
            raise StartRefused("issued_at must carry a time zone (or be epoch seconds)")
        age = now - issued.timestamp()
        if age > self.max_age_s:
            raise StartRefused(
                f"command is {age:.1f} s old; starts older than {self.max_age_s:g} s are refused"
            )
        if age < -self.max_age_s:
            raise StartRefused(f"issued_at is {-age:.1f} s in the future; check the sender's clock")
        try:
            programs = self.library.load_all()
        except AcuDeviceError as exc:
            raise StartRefused(f"the program library has problems: {exc}") from None
        if command.program not in programs:
            raise StartRefused(f"no installed program is named {command.program!r}")
        program = programs[command.program][1]
        if program_seconds(program) > self.remote_max_s:
            raise StartRefused(
                f"{program.name} runs {program_seconds(program):g} s; remote sessions are limited to {self.remote_max_s:g} s"
            )
        return program


class CommandDesk:
    """Turns one inbound command into at most one action and exactly one reply per delivery."""

    def __init__(
        self,
        agents: Mapping[str, BandAgent],
        guard: StartGuard,
        reply: Callable[[CommandResult], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.agents = agents
        self.guard = guard
        self._reply = reply
        self._clock = clock
        self._seen: OrderedDict[tuple[str, str], asyncio.Future[CommandResult]] = OrderedDict()

    async def handle(self, band: str, verb: str, raw: bytes, *, retained: bool) -> CommandResult:
        """Act on one command and publish its reply (also returned, for tests and logs)."""
        result = await self._decide(band, verb, raw, retained=retained)
        self._reply(result)
        return result

    def _result(
        self, band: str, verb: str, status: Status, reason: str | None, request_id: str | None
    ) -> CommandResult:
        return CommandResult(
            request_id=request_id,
            band=band,
            command=verb,
            status=status,
            reason=reason,
            ts=self._clock(),
        )

    async def _decide(self, band: str, verb: str, raw: bytes, *, retained: bool) -> CommandResult:
        try:
            command = parse_command(verb, raw)
        except BadCommand as bad:
            if verb in ("stop", "estop") and not retained and band in self.agents:
                # Stopping is always allowed: a garbled body cannot keep a band running.
                reason = await self.agents[band].stop(emergency=verb == "estop")
                return self._result(
                    band, verb, "ok", f"{reason} (body ignored: {bad.reason})", bad.request_id
                )
            return self._result(band, verb, "error", bad.reason, bad.request_id)
        request_id = command.request_id
        if retained:
            return self._result(
                band,
                verb,
                "refused",
                "retained commands are ignored (a stale command must not run again)",
                request_id,
            )
        agent = self.agents.get(band)
        if agent is None:
            return self._result(
                band, verb, "error", f"no band {band!r} on this gateway", request_id
            )
        if request_id is None or verb in ("stop", "estop"):
            # A stop is never answered from memory: an id used before (by a start, or by an
            # earlier stop) must not turn it into a non-stop. Stopping twice is harmless.
            return await self._execute(agent, verb, command, request_id)
        key = (band, request_id)
        earlier = self._seen.get(key)
        if earlier is not None:  # QoS 1 may deliver twice: answer again, do not act again
            first = await asyncio.shield(earlier)
            return first.model_copy(update={"ts": self._clock()})
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        self._seen[key] = future
        while len(self._seen) > REMEMBERED_REQUESTS:
            self._seen.popitem(last=False)
        try:
            result = await self._execute(agent, verb, command, request_id)
        except BaseException as exc:
            future.set_result(
                self._result(band, verb, "error", f"interrupted: {exc!r}", request_id)
            )
            raise
        future.set_result(result)
        return result

    async def _execute(
        self, agent: BandAgent, verb: str, command: object, request_id: str | None
    ) -> CommandResult:
        band = agent.band
        try:
            if verb in ("stop", "estop"):
                return self._result(
                    band, verb, "ok", await agent.stop(emergency=verb == "estop"), request_id
                )
            if verb in ("pause", "resume", "too-strong"):
                refusal = agent.session_command(verb)  # type: ignore[arg-type]
                if refusal is None:
                    return self._result(band, verb, "ok", None, request_id)
                return self._result(band, verb, "refused", refusal, request_id)
            if isinstance(command, IntensityCommand):
                refusal = await agent.lower_intensity(command.percent)
                if refusal is None:
                    return self._result(
                        band, verb, "ok", f"lowered to {command.percent} %", request_id
                    )
                return self._result(band, verb, "refused", refusal, request_id)
            assert isinstance(command, StartCommand)
            program = self.guard.program_for(command, self._clock())
            await agent.start(program, "remote", request_id)
            return self._result(band, verb, "ok", f"started {program.name}", request_id)
        except StartRefused as refused:
            return self._result(band, verb, "refused", str(refused), request_id)
        except AcuDeviceError as exc:
            return self._result(band, verb, "error", str(exc), request_id)
