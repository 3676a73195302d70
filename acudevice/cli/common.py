"""What every command shares: consoles, error reporting, and the objects commands start from."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import ParamSpec, TextIO, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from acudevice.errors import AcuDeviceError, InputError, Problem
from acudevice.files import problems_from_validation
from acudevice.numbers import Span, checked
from acudevice.plan.devices import PressureDevice, VibrationDevice
from acudevice.plan.library import load_device
from acudevice.plan.program import Program
from acudevice.safety.profile import MAX_CAP_KPA, HealthProfile, load_profile

# soft_wrap: a line is never broken at the terminal width (or at 80 columns when piped,
# which split "cap 20 kPa" across two lines); the terminal wraps it if it must. Piped,
# tables get room to take their natural width instead of squeezing into 80 columns.
PIPED_WIDTH = 200


def _width(stream: TextIO) -> int | None:
    if stream.isatty() or "COLUMNS" in os.environ:
        return None
    return PIPED_WIDTH


# markup and emoji off: every string printed is literal, so a file name, a field such as
# `repeat` (rich's :repeat: emoji) or a rule id such as `[comfort-max]` (markup) prints as
# written. Colour comes only from `Text` built with `styled`, never from text we were given.
out = Console(highlight=False, soft_wrap=True, width=_width(sys.stdout), markup=False, emoji=False)
err = Console(
    stderr=True,
    highlight=False,
    soft_wrap=True,
    width=_width(sys.stderr),
    markup=False,
    emoji=False,
)


def styled(*parts: str | tuple[str, str]) -> Text:
    """Literal text with some parts styled: `styled(("error:", "red"), " ", message)`."""
    return Text.assemble(*parts)


def shell_command(*args: str) -> str:
    """A command line that works pasted into the user's shell: this acudevice (a venv's, when
    that is not the one on PATH) with this ACUDEVICE_HOME, whose journal it must read."""
    program = "acudevice"
    launched = Path(sys.argv[0])
    if launched.name == "acudevice":
        on_path = shutil.which("acudevice")
        if on_path is None or Path(on_path).resolve() != launched.resolve():
            program = str(launched)
    home = os.environ.get("ACUDEVICE_HOME")
    words = " ".join(shlex.quote(word) for word in (program, *args))
    return f"ACUDEVICE_HOME={shlex.quote(home)} {words}" if home else words


CAP_KPA = Span(0, MAX_CAP_KPA, "kPa", low_open=True)
"""A personal cap: it only lowers, and never above the absolute ceiling."""

EXIT_BAD_INPUT = 2

P = ParamSpec("P")
R = TypeVar("R")


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn our typed errors into a message on stderr and exit 2: no traceback for users."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            for problem in exc.problems:
                err.print(styled(("error:", "red"), " ", str(problem)), soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except AcuDeviceError as exc:
            err.print(styled(("error:", "red"), " ", str(exc)), soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper


def default_device(program: Program, model: str | None) -> PressureDevice | VibrationDevice:
    if model is not None:
        return load_device(model)
    return load_device("wristband-p1" if program.actuator == "pressure" else "vibepad-v1")


def build_profile(
    profile_file: Path | None, *, pregnant: bool, cap_kpa: float | None
) -> HealthProfile:
    """A profile file, with command-line flags layered on top of it."""
    checked("--cap-kpa", cap_kpa, CAP_KPA)
    profile = load_profile(profile_file) if profile_file else HealthProfile()
    updates: dict[str, object] = {}
    if pregnant:
        updates["pregnant"] = True
    if cap_kpa is not None:
        updates["cap_kpa"] = cap_kpa
    if not updates:
        return profile
    try:  # validated like the file, so nan, inf or 1e308 is refused here too
        return HealthProfile.model_validate({**profile.model_dump(), **updates})
    except ValidationError as exc:
        problems = problems_from_validation("command line", exc, HealthProfile)
        raise InputError(
            [Problem("--cap-kpa", "", p.message) if p.field == "cap_kpa" else p for p in problems]
        ) from None
