"""The `acudevice` command: a thin typer layer over the library.

Start-up is part of the interface: a command's module (and the library it needs) is
imported only when that command runs, so `acudevice --help` loads typer and nothing else.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import typer
from typer.core import TyperGroup

from acudevice import __version__

# name: (module under acudevice.cli, attribute, one-line help shown by `acudevice --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "programs": ("programs", "app", "Session programs: list, inspect, validate and plot them."),
    "check": ("check", "check", "Safety verdict for a program, you and a device."),
    "run": ("run", "run", "Run a program on a band, with a live view; journalled."),
    "history": ("history", "history", "A table of past sessions, newest first."),
    "report": ("history", "report", "Plot a past session: planned against measured."),
    "export": ("export", "export", "Write sessions and samples as CSV or JSON, for a study."),
    "profile": ("profile", "app", "Your health profile: write one to fill in."),
    "comfort": ("comfort", "app", "Your comfortable maximum per point: list, set or reset one."),
    "scan": ("ble", "scan", "Find BLE bands in range."),
    "pair": ("ble", "pair", "Pair a BLE band and give it an alias."),
    "devices": ("ble", "devices_app", "Paired bands: list, rename or forget one."),
    "conformance": ("conformance", "conformance", "Check a device against the protocol."),
    "status": ("band", "status", "State, pressure, cap, battery and fault of a band."),
    "stop": ("band", "stop", "Vent a band now and clear a latched fault."),
    "bridge": ("bridge", "bridge", "Publish bands to an MQTT broker and take commands from it."),
    "mqtt-acl": ("bridge", "mqtt_acl", "Print a Mosquitto ACL: each gateway its own prefix."),
    "ingest": ("ingest", "ingest", "Study centre: store gateways' records in PostgreSQL."),
    "study": ("study", "app", "Study centre: protocol, enroll, unblind, export, report, withdraw."),
}


def load_command(name: str) -> Any:
    """Import the command's module now, and build its click command."""
    from acudevice.cli import help_format

    help_format.install()  # the root help has no typed values; only commands need it
    module_name, attribute, _ = COMMANDS[name]
    module = importlib.import_module(f"acudevice.cli.{module_name}")
    target: Any = getattr(module, attribute)
    if isinstance(target, typer.Typer):
        command = typer.main.get_command(target)
    else:
        single = typer.Typer(
            rich_markup_mode=None, pretty_exceptions_enable=False, add_completion=False
        )
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """Commands listed from a table, imported on first use.

    Typed loosely: typer now vendors click, and these are click's public Group hooks
    (tests/test_cli_startup.py fails if typer stops calling them).
    """

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        if cmd_name not in self.commands:
            self.commands[cmd_name] = load_command(cmd_name)
        return self.commands[cmd_name]

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, help_text) for name, (_, _, help_text) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    name="acudevice",
    cls=LazyGroup,
    help="Drive acupressure wearables safely: programs, safety checks, devices, sessions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


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
