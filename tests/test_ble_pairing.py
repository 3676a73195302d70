"""Scanning, pairing and link security, through bleak's public API on the virtual radio."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from bleak import BleakScanner
from bleak.exc import BleakGATTProtocolError, BleakGATTProtocolErrorCode

from acudevice.ble import BumbleScanner, radios
from acudevice.ble.errors import BleNotPaired, BlePairingRefused
from acudevice.device import pairing
from acudevice.protocol import (
    BLE_CONTROL_UUID,
    BLE_EVENTS_UUID,
    BLE_SERVICE_UUID,
    Estop,
    Hello,
    encode,
)
from acudevice.store.paired import PairedDevices
from acudevice.transport.ble import BleTransport, radio_config
from simulator.ble_gatt import advertising_data
from tests.ble_helpers import ble_rig, bonds_in, other_advertiser, raw_client

pytestmark = pytest.mark.wire

HELLO = encode(Hello(min_version=1, max_version=1), 1)
ESTOP = encode(Estop(), 0)


def test_the_advertisement_fits_one_legacy_pdu_with_uuid_and_name() -> None:
    data = advertising_data("Acu-0007")
    assert len(data) <= 31
    assert bytes.fromhex(BLE_SERVICE_UUID.replace("-", ""))[::-1] in data
    assert b"Acu-0007" in data
    with pytest.raises(ValueError, match="31 fit"):
        advertising_data("AcuBand-0007")  # 35 bytes: the name the 31-byte limit rules out


async def test_scan_finds_the_band_by_service_uuid_and_filters_others() -> None:
    async with (
        ble_rig() as rig,
        other_advertiser(rig.radio, "Kettle-42"),
        radios.use(rig.hci, radio_config()) as radio,
    ):
        everything = await BleakScanner.discover(
            0.2, return_adv=True, backend=BumbleScanner, radio=radio
        )
        ours = await BleakScanner.discover(
            0.2,
            return_adv=True,
            service_uuids=[BLE_SERVICE_UUID],
            backend=BumbleScanner,
            radio=radio,
        )
    names = {adv.local_name for _, adv in everything.values()}
    assert names == {"Kettle-42", rig.band.name}, "both advertisers are on the air"
    assert list(ours) == [rig.band.address]
    _, adv = ours[rig.band.address]
    assert adv.service_uuids == [BLE_SERVICE_UUID] and adv.local_name == rig.band.name


async def test_the_scan_command_reports_battery_and_paired_state() -> None:
    async with ble_rig("sim://?speed=max&seed=7&battery=83") as rig:
        before = await pairing.scan(timeout_s=0.2, hci=rig.hci)
        await rig.pair(alias="left-wrist")
        after = await pairing.scan(timeout_s=0.2, hci=rig.hci, batteries=False)
    assert [(s.address, s.battery, s.paired) for s in before] == [(rig.band.address, 83, None)]
    assert after[0].paired is not None and after[0].paired.alias == "left-wrist"
    assert after[0].battery is None


async def test_pairing_with_the_right_passkey_bonds_and_records_the_band(tmp_path: Path) -> None:
    async with ble_rig() as rig:
        entry = await rig.pair(alias="left-wrist")
        band_keys = await rig.band.keystore.get_all()
    assert (entry.alias, entry.name, entry.model) == ("left-wrist", rig.band.name, "wristband-p1")
    assert entry.serial == rig.sim.device.serial and entry.firmware == "sim-1.0"
    with PairedDevices() as paired:
        assert paired.get("left-wrist") == entry
    bonds = bonds_in(entry.bond.keystore, entry.bond.identity)
    assert bonds[rig.band.address]["ltk"]["authenticated"] is True, "passkey entry gives MITM"
    assert [name for name, _ in band_keys] == [entry.bond.identity]


async def test_pairing_with_a_wrong_passkey_fails_and_stores_nothing() -> None:
    async with ble_rig() as rig:
        with pytest.raises(BlePairingRefused, match="acudevice pair"):
            await pairing.pair(rig.band.address, passkey=rig.wrong_passkey, hci=rig.hci)
        assert await rig.band.keystore.get_all() == []
    with PairedDevices() as paired:
        assert paired.all() == []
    keystore = radio_config().keystore_path
    assert keystore is not None
    assert not keystore.exists() or not any(json.loads(keystore.read_text()).values())


async def test_a_control_write_on_an_unpaired_link_is_refused_but_estop_is_obeyed() -> None:
    async with ble_rig() as rig, raw_client(rig) as client:
        with pytest.raises(BleakGATTProtocolError) as refused:
            await client.write_gatt_char(BLE_CONTROL_UUID, HELLO, response=True)
        await client.write_gatt_char(BLE_CONTROL_UUID, ESTOP, response=True)
        with pytest.raises(BleakGATTProtocolError) as no_subscription:
            await client.start_notify(BLE_EVENTS_UUID, lambda _c, _d: None)
    assert refused.value.code is BleakGATTProtocolErrorCode.INSUFFICIENT_AUTHENTICATION
    assert no_subscription.value.code is BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION
    assert rig.band.stats["refused"] == 1
    assert rig.sim.device.firmware.last_request == ESTOP, "the ESTOP reached the firmware"


async def test_a_just_works_bond_encrypts_but_does_not_authorise_control() -> None:
    # Bumble calls any paired link "authenticated"; the band checks the key's MITM flag.
    async with ble_rig() as rig, raw_client(rig) as client:
        await client.pair()  # no passkey source: Just Works
        [link] = rig.band.device.connections.values()  # the band's side of this link
        assert link.is_encrypted and link.authenticated, (
            "Bumble: any paired link is 'authenticated'"
        )
        await client.start_notify(BLE_EVENTS_UUID, lambda _c, _d: None)
        with pytest.raises(BleakGATTProtocolError) as refused:
            await client.write_gatt_char(BLE_CONTROL_UUID, HELLO, response=True)
    assert refused.value.code is BleakGATTProtocolErrorCode.INSUFFICIENT_AUTHENTICATION
    assert rig.band.stats["refused"] == 1


async def test_the_band_enforces_its_characteristic_properties() -> None:
    async with ble_rig() as rig:
        await rig.pair()
        async with raw_client(rig) as client:
            received: list[bytes] = []
            arrived = asyncio.Event()

            def on_event(_sender: object, data: bytearray) -> None:
                received.append(bytes(data))
                arrived.set()

            await client.start_notify(BLE_EVENTS_UUID, on_event)
            await client.write_gatt_char(BLE_CONTROL_UUID, HELLO, response=False)
            await asyncio.sleep(0.2)
            assert received == [], "a write-without-response on control is not obeyed"
            await client.write_gatt_char(BLE_CONTROL_UUID, HELLO, response=True)
            await asyncio.wait_for(arrived.wait(), 2)
            with pytest.raises(BleakGATTProtocolError) as write_events:
                await client.write_gatt_char(BLE_EVENTS_UUID, HELLO, response=True)
            with pytest.raises(BleakGATTProtocolError) as read_control:
                await client.read_gatt_char(BLE_CONTROL_UUID)
    assert rig.band.stats["refused_commands"] == 1
    assert len(received) == 1 and received[0][1] == 2 and received[0][4] == 1, "HELLO's answer"
    assert write_events.value.code is BleakGATTProtocolErrorCode.WRITE_NOT_PERMITTED
    assert read_control.value.code is BleakGATTProtocolErrorCode.READ_NOT_PERMITTED


async def test_the_transport_refuses_an_unpaired_band_with_advice_to_pair() -> None:
    async with ble_rig() as rig:
        transport = BleTransport(rig.url(timeout_s=2))
        with pytest.raises(BleNotPaired, match=f"acudevice pair {rig.band.address}"):
            await transport.connect()
        await transport.close()
    assert rig.band.links == [], "refused before any radio traffic"


async def test_the_standard_services_are_open_to_generic_tools() -> None:
    async with ble_rig("sim://?speed=max&seed=7&battery=64") as rig, raw_client(rig) as client:
        battery = await client.read_gatt_char("00002a19-0000-1000-8000-00805f9b34fb")
        serial = await client.read_gatt_char("00002a25-0000-1000-8000-00805f9b34fb")
        model = await client.read_gatt_char("00002a24-0000-1000-8000-00805f9b34fb")
    assert battery == bytearray([64])
    assert (bytes(serial).decode(), bytes(model).decode()) == ("SIM-00000007", "wristband-p1")
