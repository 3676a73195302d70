"""`acudevice status DEVICE` and `acudevice stop DEVICE`: look at a band, or bring it to rest."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from acudevice.cli.common import out, reports_errors
from acudevice.device import connect
from acudevice.device.stopping import vent_and_clear
from acudevice.plan.devices import format_level
from acudevice.protocol import FaultCode, FirmwareState
from acudevice.protocol.messages import StatusResponse

DeviceArg = Annotated[str, typer.Argument(metavar="DEVICE", help="device URL or paired alias")]


def _describe(status: StatusResponse, actuator: str) -> dict[str, object]:
    scale = 1000
    unit = "kpa" if actuator == "pressure" else "intensity"
    return {
        "state": status.state.name,
        f"measured_{unit}": status.measured_level / scale,
        f"cap_{unit}": status.active_cap / scale,
        "battery_percent": status.battery_percent,
        "fault": status.fault.name,
    }


def _line(device: str, status: StatusResponse, actuator: str) -> str:
    fault = "" if status.fault is FaultCode.NONE else f", fault {status.fault.name}"
    return (
        f"{device}: {status.state.name}, {format_level(status.measured_level, actuator)}"
        f", cap {format_level(status.active_cap, actuator)}, battery {status.battery_percent} %"
        + fault
    )


@reports_errors
def status(
    device: DeviceArg,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """State, pressure, cap, battery and fault of a band."""

    async def ask() -> tuple[StatusResponse, str]:
        async with connect(device) as band:
            return await band.status(), band.info.device_model.actuator

    now, actuator = asyncio.run(ask())
    if as_json:
        typer.echo(json.dumps(_describe(now, actuator)))
    else:
        out.print(_line(device, now, actuator), soft_wrap=True)


@reports_errors
def stop(
    device: DeviceArg,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """Vent a band now and clear a latched fault; exit 1 if it cannot be cleared."""

    async def clear() -> tuple[StatusResponse, StatusResponse, str]:
        async with connect(device) as band:
            before, after = await vent_and_clear(band)
            return before, after, band.info.device_model.actuator

    before, after, actuator = asyncio.run(clear())
    if as_json:
        typer.echo(
            json.dumps({"before": _describe(before, actuator), "after": _describe(after, actuator)})
        )
    else:
        was = before.state.name + (
            f" {before.fault.name}" if before.fault is not FaultCode.NONE else ""
        )
        out.print(f"{_line(device, after, actuator)} (was {was})", soft_wrap=True)
    if after.state is not FirmwareState.IDLE:
        if not as_json:
            out.print(
                f"{device} is still {after.state.name}: a {after.fault.name} fault "
                "needs service before the band can be used",
                soft_wrap=True,
            )
        raise typer.Exit(1)
