"""The `acudevice` command: a thin typer layer over the library."""

from __future__ import annotations

import logging

import typer

from acudevice import __version__
from acudevice.cli import (
    ble,
    check,
    conformance,
    export,
    help_format,
    history,
    profile,
    programs,
    run,
)

help_format.install()

app = typer.Typer(
    name="acudevice",
    help="Drive acupressure wearables safely: programs, safety checks, devices, sessions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(programs.app, name="programs")
app.add_typer(profile.app, name="profile")
app.command("check")(check.check)
app.command("run")(run.run)
app.command("history")(history.history)
app.command("report")(history.report)
app.command("export")(export.export)
app.command("scan")(ble.scan)
app.command("pair")(ble.pair)
app.add_typer(ble.devices_app, name="devices")
app.command("conformance")(conformance.conformance)


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="print the version and exit"),
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


def main() -> None:
    # Bumble logs a failed HCI command with a traceback through Python's last-resort
    # handler; our errors already say what went wrong in one line.
    logging.getLogger("bumble").addHandler(logging.NullHandler())
    app(prog_name="acudevice")
