"""Several hosts on the simulated air at once, a one-line refusal, and a band's own IRK.

A real band is heard by a phone and a laptop together; `acudevice-sim serve --ble` gives
every host that attaches over HCI/TCP its own controller on the shared link.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bleak import BleakScanner

from acudevice.ble import BleakRadioRefused, BumbleScanner, Identity, Radio, RadioConfig, radios
from acudevice.protocol import BLE_SERVICE_UUID
from acudevice.transport.ble import radio_config
from simulator.ble_band import band_identity_key
from simulator.ble_radio import HciServer
from tests.ble_helpers import Rig, ble_rig

pytestmark = pytest.mark.wire


@contextlib.asynccontextmanager
async def host(spec: str) -> AsyncIterator[Radio]:
    """One more computer attaching to the radio, with an identity of its own."""
    radio = Radio(spec, RadioConfig(Identity.generate()), None)
    await radio.open()
    try:
        yield radio
    finally:
        await radio.close()


@contextlib.asynccontextmanager
async def served(rig: Rig, max_hosts: int) -> AsyncIterator[HciServer]:
    server = HciServer(rig.radio, max_hosts=max_hosts)
    await server.start(0)
    try:
        yield server
    finally:
        await server.close()


async def _scan(radio: Radio) -> set[str]:
    found = await BleakScanner.discover(
        0.3, service_uuids=[BLE_SERVICE_UUID], backend=BumbleScanner, radio=radio
    )
    return {d.address for d in found}


async def test_two_hosts_scan_at_once_and_both_hear_the_band() -> None:
    async with (
        ble_rig() as rig,
        served(rig, max_hosts=2) as server,
        host(server.spec) as phone,
        host(server.spec) as laptop,
    ):
        heard = await asyncio.gather(_scan(phone), _scan(laptop))
        assert heard == [{rig.band.address}, {rig.band.address}]
        assert len(server.hosts) == 2


async def test_a_host_past_the_limit_is_refused_in_one_line_and_a_freed_place_is_reused() -> None:
    async with ble_rig() as rig, served(rig, max_hosts=1) as server:
        async with host(server.spec):
            with pytest.raises(BleakRadioRefused) as refused:
                async with host(server.spec):
                    pass
            assert str(refused.value) == (
                f"the radio at {server.spec!r} refused this host: it has no room for another"
            )
        async with asyncio.timeout(2):  # the server notices the socket close
            while True:
                if not server.hosts:
                    break
                await asyncio.sleep(0.01)
        async with host(server.spec) as later:
            assert await _scan(later) == {rig.band.address}


async def test_the_scan_command_says_why_in_one_line_without_a_traceback(
    isolated_home: Path,
) -> None:
    async with ble_rig() as rig, served(rig, max_hosts=1) as server, host(server.spec):
        env = {**os.environ, "ACUDEVICE_HOME": str(isolated_home)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "acudevice.cli",
            "scan",
            "--timeout",
            "0.2",
            "--hci",
            server.spec,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(60):
            _, stderr_bytes = await proc.communicate()
    stderr = stderr_bytes.decode()
    assert proc.returncode == 2
    assert "Traceback" not in stderr and "!!!" not in stderr
    (line,) = stderr.strip().splitlines()
    assert "refused this host: it has no room for another" in line
    assert "close another program attached to that radio" in line
    assert "start the virtual radio" not in line


async def test_each_band_bonds_with_its_own_identity_key() -> None:
    assert band_identity_key("WB1-000001") != band_identity_key("WB1-000002")
    async with ble_rig() as rig:
        paired = await rig.pair()
        assert rig.band.device.irk == band_identity_key(rig.band.serial) != bytes(16)
        async with radios.use(rig.hci, radio_config()) as radio:
            keys = await radio.bond(paired.address)
        assert keys is not None and keys.irk is not None
        assert keys.irk.value == band_identity_key(rig.band.serial)
