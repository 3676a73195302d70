"""`acudevice-sim serve --ble`: a simulated band on a virtual radio other processes can join.

The simulator owns the radio medium (a Bumble `LocalLink`). The band is one controller on
it; every host process that attaches over TCP on loopback (Bumble's HCI framing) gets a
controller of its own on the same air, as if each had its own USB dongle, so a phone app,
`bumble-scan` and `acudevice scan` can all listen at once:

    export ACUDEVICE_BLE_HCI=tcp-client:127.0.0.1:PORT
    acudevice scan

Lines on stdout (the first is the same shape as the pty and TCP servers'):

    acudevice-sim: serving wristband-p1 on ble://D9:34:7E:E4:79:DA?hci=tcp-client:127.0.0.1:PORT
    acudevice-sim: export ACUDEVICE_BLE_HCI=tcp-client:127.0.0.1:PORT
    acudevice-sim: passkey 123456          (each time a host pairs: type it there)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from simulator.ble_band import BleBand
from simulator.ble_radio import HciServer, VirtualRadio
from simulator.options import SimOptions
from simulator.simulation import Simulation

log = logging.getLogger("acudevice-sim")


def _print(line: str) -> None:
    print(f"acudevice-sim: {line}", flush=True)


async def serve_ble(
    options: SimOptions,
    *,
    port: int = 0,
    stop: asyncio.Event,
    passkey: int | None = None,
    bonds: Path | None = None,
    say: Callable[[str], None] = _print,
) -> int:
    """Serve until `stop` is set; then vent the band and shut the radio down."""
    sim = Simulation(options)
    radio = VirtualRadio()
    band = BleBand(
        sim,
        radio.controller("band"),
        passkey=passkey,
        on_passkey=lambda number: say(f"passkey {number:06d}"),
        keystore_path=bonds,
    )
    server = HciServer(radio)
    await band.start()
    try:
        await server.start(port)
        say(f"serving {options.model} on ble://{band.address}?hci={server.spec}")
        say(f"export ACUDEVICE_BLE_HCI={server.spec}")
        log.info("band %s advertising as %s", band.address, band.name)
        await stop.wait()
        report = sim.vent_for_shutdown()
        log.info(
            "stopping: vented (level %.0f) in %.1f s of device time", report.after, report.device_s
        )
    finally:
        await server.close()
        await band.stop()
    return 0
