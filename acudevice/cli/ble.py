"""`acudevice scan`, `acudevice pair`, `acudevice devices …`: finding and pairing BLE bands.

The radio: `--hci SPEC` or `ACUDEVICE_BLE_HCI` names a Bumble HCI transport (for example
the one `acudevice-sim serve --ble` prints); without either, the operating system's
Bluetooth stack is used. See docs/ble.md.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.live import Live
from rich.table import Table

from acudevice.cli.common import err, out, reports_errors
from acudevice.errors import AcuDeviceError, InputError, Problem
from acudevice.numbers import Span
from acudevice.store.paired import PairedDevice, PairedDevices

if TYPE_CHECKING:
    from acudevice.ble import PasskeySource
    from acudevice.device.pairing import Sighting

T = TypeVar("T")
SCAN_TIMEOUT_S = Span(0, 120, "s", low_open=True)

HciOption = Annotated[
    str | None,
    typer.Option(
        "--hci", metavar="SPEC", help="Bumble HCI transport (default: $ACUDEVICE_BLE_HCI)"
    ),
]

devices_app = typer.Typer(
    help="Paired bands: list them (no subcommand), rename or forget one.",
    invoke_without_command=True,
    add_completion=False,
    rich_markup_mode=None,
)


class BluetoothUnavailable(AcuDeviceError):
    """The Bluetooth stack itself failed (no adapter, powered off, permission)."""


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a BLE workflow; a bare bleak error becomes a message, Ctrl-C exits 130."""
    from bleak.exc import BleakError

    try:
        return asyncio.run(coroutine)
    except BleakError as exc:
        raise BluetoothUnavailable(
            f"Bluetooth: {exc} — is an adapter present and switched on? To use the "
            "simulator's virtual radio, pass --hci or set ACUDEVICE_BLE_HCI (docs/ble.md)"
        ) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None


def _scan_table(sightings: list[Sighting], *, done: bool) -> Table:
    table = Table(title="acudevice bands in range" + ("" if done else " (scanning…)"))
    for column in ("name", "address", "RSSI", "battery", "paired"):
        table.add_column(column, no_wrap=column == "address")
    for s in sightings:
        paired = (s.paired.alias or "yes") if s.paired else "no"
        battery = (
            "…"
            if s.battery is None and not done
            else (f"{s.battery} %" if s.battery is not None else "?")
        )
        table.add_row(s.name or "?", s.address, f"{s.rssi} dBm", battery, paired)
    return table


@reports_errors
def scan(
    timeout: Annotated[
        float,
        typer.Option("--timeout", metavar="S", help=f"seconds to listen, {SCAN_TIMEOUT_S}"),
    ] = 5.0,
    hci: HciOption = None,
    no_battery: Annotated[
        bool, typer.Option("--no-battery", help="do not connect to read battery levels")
    ] = False,
) -> None:
    """List the bands advertising nearby (only acudevice bands), with battery levels."""
    SCAN_TIMEOUT_S.check("--timeout", timeout)
    from acudevice.device import pairing

    with Live(_scan_table([], done=False), console=out, transient=True) as live:
        found = _run(
            pairing.scan(
                timeout_s=timeout,
                hci=hci,
                batteries=not no_battery,
                on_update=lambda s: live.update(_scan_table(s, done=False)),
            )
        )
    out.print(_scan_table(found, done=True))
    if not found:
        out.print("No band found. Is it switched on and not connected to another computer?")
    elif any(s.paired is None for s in found):
        out.print("Pair one with: acudevice pair ADDRESS --alias NAME")


def _settle(future: asyncio.Future[int | None], value: int | None) -> None:
    if not future.done():
        future.set_result(value)


def _passkey_source(passkey: int | None) -> PasskeySource:
    """The given passkey, or one typed on stdin when the band shows it."""
    if passkey is not None:
        if not 0 <= passkey <= 999_999:
            raise InputError([Problem("--passkey", "", "a passkey has six digits (0-999999)")])

        async def given() -> int | None:
            return passkey

        return given

    async def ask() -> int | None:
        # A daemon thread: a prompt nobody answers must not keep the process alive.
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[int | None] = loop.create_future()

        def prompt() -> None:
            err.print("Passkey shown on the band: ", end="")
            line = sys.stdin.readline().strip()
            value = int(line) if line.isdigit() and len(line) <= 6 else None
            loop.call_soon_threadsafe(_settle, answer, value)

        threading.Thread(target=prompt, daemon=True, name="passkey-prompt").start()
        return await answer

    return ask


@reports_errors
def pair(
    address: Annotated[str, typer.Argument(metavar="ADDRESS", help="as `acudevice scan` shows")],
    alias: Annotated[
        str | None, typer.Option("--alias", help="a name to use instead of the address")
    ] = None,
    passkey: Annotated[
        int | None, typer.Option("--passkey", help="the six digits the band shows")
    ] = None,
    hci: HciOption = None,
) -> None:
    """Pair with a band (passkey entry), read what it is, and remember it."""
    source = _passkey_source(passkey)
    err.print(f"pairing with {address}: the band will show a six-digit passkey")
    from acudevice.device import pairing

    device = _run(pairing.pair(address, passkey=source, alias=alias, hci=hci))
    out.print(
        f"paired {device.label}: {device.model} serial {device.serial}, firmware {device.firmware}"
    )
    out.print(f"use it with: acudevice run PROGRAM --device {device.label}")


def _devices_table(devices: list[PairedDevice]) -> Table:
    table = Table(title="Paired bands")
    for column in ("alias", "name", "address", "model", "serial", "firmware", "paired"):
        table.add_column(column, no_wrap=column in ("alias", "address"))
    for d in devices:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.paired_at))
        table.add_row(
            *(d.alias or "-", d.name or "-", d.address, d.model, d.serial),
            d.firmware,
            when,
        )
    return table


@devices_app.callback()
@reports_errors
def devices(ctx: typer.Context) -> None:
    """Paired bands: list them, or rename / forget one."""
    if ctx.invoked_subcommand is not None:
        return
    with PairedDevices() as paired:
        known = paired.all()
    if not known:
        out.print("No paired bands. Find one with `acudevice scan`, then `acudevice pair`.")
        return
    out.print(_devices_table(known))


@devices_app.command("rename")
@reports_errors
def rename(
    old: Annotated[str, typer.Argument(metavar="OLD", help="alias or address")],
    new: Annotated[str, typer.Argument(metavar="NEW", help="the new alias")],
) -> None:
    """Give a paired band a new alias."""
    with PairedDevices() as paired:
        device = paired.rename(old, new)
    out.print(f"{device.address} is now {new}")


@devices_app.command("forget")
@reports_errors
def forget(
    name: Annotated[str, typer.Argument(metavar="NAME", help="alias or address")],
) -> None:
    """Forget a band: remove it and delete its bond (pair again to use it)."""
    from acudevice.device import pairing

    device = _run(pairing.forget(name))
    out.print(f"forgot {device.label} ({device.address}) and its bond")
