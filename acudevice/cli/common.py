"""What every command shares: consoles, error reporting, and the objects commands start from."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import ParamSpec, TextIO, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from acudevice.errors import AcuDeviceError, InputError, Problem
from acudevice.files import problems_from_validation
from acudevice.plan.devices import PressureDevice, VibrationDevice
from acudevice.plan.library import load_device
from acudevice.plan.program import Program
from acudevice.safety.profile import HealthProfile, load_profile

# soft_wrap: a line is never broken at the terminal width (or at 80 columns when piped,
# which split "cap 20 kPa" across two lines); the terminal wraps it if it must. Piped,
# tables get room to take their natural width instead of squeezing into 80 columns.
PIPED_WIDTH = 200


def _width(stream: TextIO) -> int | None:
    if stream.isatty() or "COLUMNS" in os.environ:
        return None
    return PIPED_WIDTH


out = Console(highlight=False, soft_wrap=True, width=_width(sys.stdout))
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_width(sys.stderr))

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
                err.print(f"[red]error:[/red] {escape(str(problem))}", soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except AcuDeviceError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
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
        problems = problems_from_validation("command line", exc)
        raise InputError(
            [Problem("--cap-kpa", "", p.message) if p.field == "cap_kpa" else p for p in problems]
        ) from None
