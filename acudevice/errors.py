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


class TransportError(AcuDeviceError):
    """A link could not be opened (bad URL, unreachable port, missing device)."""


class TransportClosed(TransportError):
    """The link is gone: closed by us, by the peer, or lost."""
