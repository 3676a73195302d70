"""The `acudevice` command: a thin typer layer over the library."""

from __future__ import annotations

import typer

from acudevice import __version__
from acudevice.cli import band, ble, check, conformance, history, programs, run

app = typer.Typer(
    name="acudevice",
    help="Drive acupressure wearables safely: programs, safety checks, devices, sessions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(programs.app, name="programs")
app.command("check")(check.check)
app.command("run")(run.run)
app.command("history")(history.history)
app.command("report")(history.report)
app.command("scan")(ble.scan)
app.command("pair")(ble.pair)
app.add_typer(ble.devices_app, name="devices")
app.command("conformance")(conformance.conformance)
app.command("status")(band.status)
app.command("stop")(band.stop)


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="print the version and exit"),
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


def main() -> None:
    app(prog_name="acudevice")
