"""BLE timings on the virtual radio: scan to connected, connect to first telemetry, ESTOP.

Run: .venv/bin/python bench/ble.py   (prints figures; asserts nothing)

Two attachments of the host are measured: a controller object in this process (LocalLink),
and the same controller reached over TCP HCI on loopback (how `acudevice-sim serve --ble`
is used). The virtual radio does not model air time: a packet crosses at once, so these
figures are the host and band software's share. On air, every ATT exchange also waits for
connection events: the floor for ESTOP is one connection interval (request in one event),
and its acknowledgement arrives one interval later at best.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time

from bleak import BleakScanner

from acudevice.ble import BumbleClient, BumbleScanner, radios
from acudevice.device import Device
from acudevice.device import pairing as bands
from acudevice.plan.library import ProgramLibrary, load_device
from acudevice.protocol import BLE_SERVICE_UUID, FirmwareState
from acudevice.protocol.messages import Telemetry, VentStarted
from acudevice.safety.screening import screen
from acudevice.transport.ble import BleTransport, radio_config
from simulator.ble_band import BleBand
from simulator.ble_radio import HciServer, VirtualRadio
from simulator.options import SimOptions
from simulator.simulation import Simulation

ROUNDS = 20
ESTOPS = 30


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f} ms"


def summary(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=20)
    return f"median {ms(statistics.median(samples))}, p95 {ms(q[-1])}, n={len(samples)}"


async def scan_to_connected(hci: str, address: str) -> tuple[float, float]:
    async with radios.use(hci, radio_config()) as radio:
        started = time.perf_counter()
        found = asyncio.get_running_loop().create_future()

        def seen(device: object, _adv: object) -> None:
            if not found.done():
                found.set_result(device)

        async with BleakScanner(seen, [BLE_SERVICE_UUID], backend=BumbleScanner, radio=radio):
            await found
        scanned = time.perf_counter()
        transport = BleTransport(f"ble://{address}?hci={hci}")
        await transport.connect()  # encrypts with the bond, discovers, subscribes
        connected = time.perf_counter()
        await transport.close()
    return scanned - started, connected - scanned


async def connect_to_first_telemetry(hci: str, address: str) -> float:
    started = time.perf_counter()
    async with Device(BleTransport(f"ble://{address}?hci={hci}")) as band:
        async for _ in band.telemetry():
            return time.perf_counter() - started
    raise RuntimeError("no telemetry")


async def estop_latency(hci: str, address: str) -> tuple[list[float], float, float]:
    program = ProgramLibrary().get("nausea-relief")
    verdict = screen(program, load_device("wristband-p1"), ProgramLibrary().catalog)
    assert verdict.schedule is not None and verdict.limits is not None
    transport = BleTransport(f"ble://{address}?hci={hci}")
    async with Device(transport) as band:
        backend = transport.client._backend
        assert isinstance(backend, BumbleClient)
        interval_s = backend.connection.parameters.connection_interval / 1000
        await band.set_limits(verdict.limits.cap_level)
        await band.load(verdict.schedule)
        await band.start()
        stream = band.stream()
        async for item in stream:
            if isinstance(item, Telemetry) and item.measured_level > 5_000:
                break
        sent = time.perf_counter()
        await band.estop()
        acked = time.perf_counter()
        async for item in stream:
            if isinstance(item, VentStarted):
                break
        vent_seen = time.perf_counter()
        round_trips = []
        for _ in range(ESTOPS):
            t0 = time.perf_counter()
            await band.estop()
            round_trips.append(time.perf_counter() - t0)
        status = await band.status()
        assert status.state in (FirmwareState.VENTING, FirmwareState.IDLE)
    return [acked - sent, *round_trips], vent_seen - sent, interval_s


async def rig(attach: str) -> None:
    radio = VirtualRadio()
    band = BleBand(
        Simulation(SimOptions.from_url("sim://?speed=20&seed=1")), radio.controller("band")
    )
    await band.start()
    server: HciServer | None = None
    if attach == "tcp":
        server = HciServer(radio)
        await server.start(0)
        hci = server.spec
    else:
        hci = radios.register_local("bench", radio.controller("host"))
    try:
        await bands.pair(band.address, passkey=band.passkeys.get, hci=hci)
        scans, connects, firsts = [], [], []
        for _ in range(ROUNDS):
            scanned, connected = await scan_to_connected(hci, band.address)
            scans.append(scanned)
            connects.append(connected)
            firsts.append(await connect_to_first_telemetry(hci, band.address))
            await asyncio.sleep(0.05)  # the band re-advertises
        estops, vent, interval_s = await estop_latency(hci, band.address)
        title = "in-process LocalLink" if attach == "local" else "TCP HCI on loopback"
        print(f"== {title} (speed=20, {ROUNDS} rounds)")
        print(f"  scan start -> band found:        {summary(scans)}")
        print(f"  found -> connected (bonded):     {summary(connects)}")
        print(f"  connect -> first telemetry:      {summary(firsts)}")
        print(f"  connection interval (virtual):   {ms(interval_s)}")
        print(
            f"  ESTOP request -> Ack:            {summary(estops)}"
            f" = {statistics.median(estops) / interval_s:.2f} intervals"
        )
        print(f"  ESTOP request -> VentStarted:    {ms(vent)} = {vent / interval_s:.2f} intervals")
    finally:
        if server is not None:
            await server.close()
        else:
            radios.unregister_local("bench")
        await band.stop()


async def main() -> None:
    # Bonds and the registry go to a scratch home, never the user's own.
    os.environ["ACUDEVICE_HOME"] = tempfile.mkdtemp(prefix="acudevice-bench-")
    for attach in ("local", "tcp"):
        await rig(attach)
    print(
        "Figures exclude air time; on a real link add >= 1 interval per request and "
        "per notification (ESTOP floor: 1 interval to arrive, ~2 for its Ack)."
    )


if __name__ == "__main__":
    asyncio.run(main())
