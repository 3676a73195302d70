"""Session programs by name: the shipped ones and the user's own.

`from acudevice import programs; programs.get("nausea-relief")`. Each call reads the files
afresh, so a program saved a moment ago is found.
"""

from __future__ import annotations

from pathlib import Path

from acudevice.plan.library import ProgramLibrary, parse_program
from acudevice.plan.program import Program


def get(name_or_path: str) -> Program:
    """A program by name, or by path to a .toml file; raises NotFoundError or InputError."""
    return ProgramLibrary().get(name_or_path)


def names() -> list[str]:
    """Every program's name, shipped and the user's own, sorted."""
    return sorted(ProgramLibrary().load_all())


def load(path: Path) -> Program:
    """A program file, validated strictly; every problem names the file and field."""
    return parse_program(path)
