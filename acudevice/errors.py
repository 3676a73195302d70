"""One exception tree for the whole library: callers catch `AcuDeviceError`."""

from __future__ import annotations

from dataclasses import dataclass


class AcuDeviceError(Exception):
    """Root of every error acudevice raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located as precisely as we can."""

    source: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.field}" if self.field else self.source
        return f"{where}: {self.message}"


class InputError(AcuDeviceError):
    """A file or argument is malformed; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class NotFoundError(AcuDeviceError):
    """A named program, point or device model does not exist."""


class SafetyRefusal(AcuDeviceError):
    """A plan breaks a hard rule; it is refused, never clamped."""

    def __init__(self, rule: str, message: str, *, phase: str | None = None) -> None:
        self.rule = rule
        self.phase = phase
        where = f" (phase {phase})" if phase else ""
        super().__init__(f"[{rule}]{where} {message}")
