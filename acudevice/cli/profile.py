"""`acudevice profile init`: a health profile to fill in, so `--profile me.toml` works."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from acudevice.cli.common import out, reports_errors
from acudevice.errors import InputError, Problem
from acudevice.files import atomic_output
from acudevice.paths import shipped_profiles_dir

app = typer.Typer(
    help="Your health profile.", no_args_is_help=True, add_completion=False, rich_markup_mode=None
)

TEMPLATE = "health-profile.toml"


@app.callback()
def _group() -> None:
    """Your health profile (a group, so that `init` stays a subcommand)."""


@app.command("init")
@reports_errors
def init(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="where to write it")] = Path(
        "me.toml"
    ),
    force: Annotated[bool, typer.Option("--force", help="replace an existing file")] = False,
) -> None:
    """Write a commented health profile to edit (every setting starts at the default)."""
    if path.exists() and not force:
        raise InputError([Problem(str(path), "", "already exists; edit it, or pass --force")])
    text = (shipped_profiles_dir() / TEMPLATE).read_text(encoding="utf-8")
    try:
        with atomic_output(path, private=True) as tmp:  # health data: 0600 from the start
            Path(tmp).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError([Problem(str(path), "", f"cannot write: {exc.strerror}")]) from None
    out.print(f"wrote {path}: edit it, then: acudevice check PROGRAM --profile {path}")
