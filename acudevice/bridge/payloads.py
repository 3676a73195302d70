"""Every MQTT payload as a pydantic model: commands in (untrusted, size-limited) and what we publish.

Commands are parsed strictly: unknown fields, wrong types and oversized bodies are refused with
a reason that names the field; nothing is coerced into meaning something it did not say.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

MAX_COMMAND_BYTES = 1024
RequestId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
ProgramName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
Status = Literal["ok", "refused", "error"]
EventKind = Literal[
    "session-started",
    "session-finished",
    "session-refused",
    "session-limit",
    "fault",
    "vent",
    "comfort",
    "broker-outage",
    "band-connected",
    "band-lost",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class PlainCommand(_Strict):
    """stop, estop, pause, resume, too-strong: the body is optional."""

    request_id: RequestId | None = None


class StartCommand(_Strict):
    """A remote start: an installed program by name only, fresh, with an id to deduplicate."""

    request_id: RequestId
    issued_at: Annotated[datetime, Field(strict=False)]
    program: ProgramName


class IntensityCommand(_Strict):
    """Lower a running session to `percent` of its full intensity (never raises it)."""

    request_id: RequestId | None = None
    percent: Annotated[int, Field(ge=10, le=100)]


Command = PlainCommand | StartCommand | IntensityCommand
_MODELS: dict[str, type[Command]] = {
    "stop": PlainCommand,
    "estop": PlainCommand,
    "pause": PlainCommand,
    "resume": PlainCommand,
    "too-strong": PlainCommand,
    "intensity": IntensityCommand,
    "start": StartCommand,
}


class BadCommand(Exception):
    """A command payload we will not act on; `request_id` when one could still be read."""

    def __init__(self, reason: str, request_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.request_id = request_id


def parse_command(verb: str, raw: bytes) -> Command:
    """Parse one command body; raises BadCommand naming what is wrong."""
    if len(raw) > MAX_COMMAND_BYTES:
        raise BadCommand(f"payload is {len(raw)} bytes; commands are at most {MAX_COMMAND_BYTES}")
    model = _MODELS.get(verb)
    unknown = f"unknown command {verb!r}; known: {', '.join(_MODELS)}"
    if not raw.strip():
        if model is PlainCommand:
            return PlainCommand()
        raise BadCommand(
            unknown if model is None else "payload is empty; this command needs a JSON body"
        )
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadCommand(unknown if model is None else f"payload is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadCommand(unknown if model is None else "payload must be a JSON object")
    request_id = data.get("request_id")
    request_id = request_id if isinstance(request_id, str) and len(request_id) <= 64 else None
    if model is None:
        raise BadCommand(unknown, request_id)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise BadCommand(f"{where}: {first['msg']}", request_id) from None


class CommandResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    request_id: str | None
    band: str
    command: str
    status: Status
    reason: str | None = None
    ts: float


class StatePayload(BaseModel):
    """Retained, at most 1 Hz. Levels in kPa (pressure) or a 0-1 fraction (vibration)."""

    model_config = ConfigDict(frozen=True)

    model: str | None
    firmware: str | None
    actuator: str | None
    unit: str | None
    battery_percent: int | None
    device_state: str | None
    session: Literal["idle", "running", "paused", "stopping", "venting"]
    origin: Literal["local", "remote"] | None = None
    program: str | None = None
    phase: str | None = None
    measured: float | None = None
    target: float | None = None
    cap: float | None = None
    intensity_percent: int | None = None
    """The cap as a percentage of full intensity (the starting cap, or the program's peak
    when lower); None when no session runs."""
    participant: str | None = None
    """The study pseudonym of who wears the band (`--participant BAND=ID`), if any."""
    ts: float


class TelemetryPayload(BaseModel):
    """One band sample. `ts` is when the gateway received it (epoch seconds)."""

    model_config = ConfigDict(frozen=True)

    t_ms: int
    measured: float
    target: float
    state: str
    segment: int
    battery_percent: int
    ts: float


class EventPayload(BaseModel):
    model_config = ConfigDict(frozen=True)

    event: EventKind
    band: str | None = None
    participant: str | None = None
    """The band's participant (a study pseudonym), if it has one."""
    ts: float
    detail: str | None = None
    program: str | None = None
    origin: Literal["local", "remote"] | None = None
    outcome: str | None = None
    request_id: str | None = None
