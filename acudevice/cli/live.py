"""The live view of a running session, and the keys a person presses during it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import termios
import tty
from collections.abc import Callable, Iterator

from rich.console import Group
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from acudevice.plan.devices import format_level
from acudevice.session.model import Command
from acudevice.session.view import SessionView

KEYS: dict[str, Command] = {" ": "pause", "s": "too-strong", "q": "stop", "r": "resume"}


def render(view: SessionView) -> Panel:
    table = Table.grid(padding=(0, 2))
    table.add_row(
        "repeat",
        f"{min(view.repeat + 1, view.repeats)}/{view.repeats}",
        "phase",
        ("PAUSED " if view.paused else "") + view.phase,
    )
    left_s = max(view.total_ms - view.elapsed_ms, 0) / 1000
    table.add_row(
        "time left",
        f"{int(left_s // 60)} min {int(left_s % 60):02d} s",
        "cap",
        format_level(view.cap_level, view.actuator),
    )
    for ch in view.channels:
        table.add_row(
            ch.url,
            f"target {format_level(ch.target_level, view.actuator)}",
            f"measured {reading(ch.measured_level, view.actuator)}",
            f"battery {ch.battery_percent} %  {ch.state}",
        )
    progress = Table.grid()
    progress.add_row(ProgressBar(total=max(view.total_ms, 1), completed=view.elapsed_ms, width=60))
    help_text = Text(
        "space pause · r resume · s too strong · q stop · Ctrl-C stop now", style="dim"
    )
    return Panel(
        Group(table, progress, Text("\n".join(view.log[-4:])), help_text), title=Text(view.program)
    )


def reading(level: int, actuator: str) -> str:
    """A measured level as a person reads it: two decimals, never below zero (a pressure
    sensor near zero reads a little negative; the band cannot pull a vacuum)."""
    value = max(level, 0) / 1000
    return f"{value:.2f} kPa" if actuator == "pressure" else f"intensity {value:.2f}"


class PlainProgress:
    """A line when each phase ends, with what was measured then: for pipes and CI (no
    cursor tricks, no key reading). Call `finish()` once the session is over."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self._phase: tuple[int, int, str] | None = None  # repeat, repeats, phase
        self._elapsed_ms = 0
        self._readings = ""
        self._notes_seen = 0

    def __call__(self, view: SessionView) -> None:
        new = min(view.notes_total - self._notes_seen, len(view.log))
        for note in view.log[len(view.log) - new :]:
            self.echo(f"  {note}")
        self._notes_seen = view.notes_total
        if not view.elapsed_ms and view.phase == "starting":
            return  # nothing has moved yet: no phase to end
        phase = (view.repeat, view.repeats, view.phase)
        if self._phase is not None and phase != self._phase:
            self._ended(view.elapsed_ms)
        self._phase = phase
        self._elapsed_ms = view.elapsed_ms
        self._readings = ", ".join(reading(c.measured_level, view.actuator) for c in view.channels)

    def finish(self) -> None:
        """The last phase's line (it ended with the session)."""
        if self._phase is not None:
            self._ended(self._elapsed_ms)
            self._phase = None

    def _ended(self, at_ms: int) -> None:
        assert self._phase is not None
        repeat, repeats, phase = self._phase
        self.echo(
            f"[{at_ms / 1000:6.1f} s] repeat {min(repeat + 1, repeats)}/{repeats} "
            f"{phase:<8} ended at {self._readings or '-'}"
        )


@contextlib.contextmanager
def keys_to(on_command: Callable[[Command], None]) -> Iterator[None]:
    """While the block runs, single key presses on a terminal become session commands."""
    if not sys.stdin.isatty():
        yield
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    loop = asyncio.get_running_loop()

    def read_key() -> None:
        key = os.read(fd, 1).decode(errors="ignore").lower()
        if key in KEYS:
            on_command(KEYS[key])

    tty.setcbreak(fd)
    loop.add_reader(fd, read_key)
    try:
        yield
    finally:
        loop.remove_reader(fd)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
