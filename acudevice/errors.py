"""One exception tree for the whole library: callers catch `AcuDeviceError`."""

from __future__ import annotations


class AcuDeviceError(Exception):
    """Root of every error acudevice raises on purpose."""


class Problem:
    """One thing wrong with an input, located as precisely as we can.

    A plain class, not a dataclass: this module is imported by `import acudevice`, and
    dataclasses alone would add a third of the start-up budget.
    """

    __slots__ = ("field", "message", "source")

    def __init__(self, source: str, field: str, message: str) -> None:
        self.source = source
        self.field = field
        self.message = message

    def _key(self) -> tuple[str, str, str]:
        return (self.source, self.field, self.message)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Problem) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Problem(source={self.source!r}, field={self.field!r}, message={self.message!r})"

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
