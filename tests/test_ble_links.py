"""Link failures: deadlines, stale bonds, forgetting a band, and alias resolution."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from bleak import BleakClient
from bumble import hci
from bumble.controller import Controller
from bumble.device import Device
from bumble.host import Host
from bumble.transport.common import AsyncPipeSink

from acudevice.ble import BleakConnectTimeout, BumbleClient, radios
from acudevice.ble.errors import BleNotFound, BleStaleBond
from acudevice.device import Device as Band
from acudevice.device import pairing
from acudevice.device.addresses import open_device_transport
from acudevice.errors import NotFoundError
from acudevice.store.paired import PairedDevices
from acudevice.transport import TransportError
from acudevice.transport.ble import BleTransport, radio_config
from simulator.ble_radio import HciServer, VirtualRadio
from simulator.link_bands import BleServedBand, served_bands
from tests.ble_helpers import ble_rig, bonds_in

pytestmark = pytest.mark.wire

MISSING = "C2:00:00:00:0B:AD"


@pytest.mark.looptime
async def test_connect_to_a_missing_address_meets_its_deadline_and_the_radio_recovers() -> None:
    loop = asyncio.get_running_loop()
    async with ble_rig() as rig, radios.use(rig.hci, radio_config()) as radio:
        started = loop.time()
        with pytest.raises(BleakConnectTimeout):
            await BleakClient(MISSING, backend=BumbleClient, radio=radio, timeout=0.3).connect()
        assert loop.time() - started < 1.5, "the deadline held (plus the cancel's grace)"
        assert not radio.wedged, "the controller confirmed the cancel"
        async with BleakClient(rig.band.address, backend=BumbleClient, radio=radio) as client:
            assert client.is_connected, "a later connect works"


@pytest.mark.looptime
async def test_the_transport_reports_a_missing_band_as_not_found_after_its_attempts() -> None:
    loop = asyncio.get_running_loop()
    async with ble_rig() as rig:
        await rig.pair()
        await rig.band.drop_link(silent_s=30)  # no advertising: as if switched off
        transport = BleTransport(rig.url(timeout_s=0.3, attempts=2))
        started = loop.time()
        with pytest.raises(BleNotFound, match="acudevice scan"):
            await transport.connect()
        assert 0.3 * 2 + 0.5 <= loop.time() - started < 3.0, "two attempts, one backoff"


async def test_bumbles_stock_controller_still_never_cancels_a_connect() -> None:
    # Canary for the trap `RadioController` fixes: if this starts failing, Bumble fixed
    # LE Create Connection Cancel upstream and the workaround can go.
    link = VirtualRadio().link
    controller = Controller("stock", link=link, public_address="A0:00:00:00:00:01")
    host = Device(
        address=hci.Address("F0:00:00:00:00:01"), host=Host(controller, AsyncPipeSink(controller))
    )
    await host.power_on()
    missing = hci.Address(MISSING, hci.Address.RANDOM_DEVICE_ADDRESS)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await host.connect(missing, timeout=None)
    await host.send_sync_command(hci.HCI_LE_Create_Connection_Cancel_Command())
    await host.power_on()  # even an HCI Reset does not clear it
    assert controller.pending_le_connection is not None


async def test_a_stale_bond_advises_forgetting_and_pairing_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with ble_rig() as rig:
        monkeypatch.setenv("ACUDEVICE_BLE_HCI", rig.hci)
        await rig.pair(alias="left-wrist")
        await rig.band.forget_bonds()  # the band was reset: it no longer knows us
        transport = open_device_transport("left-wrist")
        with pytest.raises(BleStaleBond) as stale:
            async with Band(transport):
                pass
    assert "the band has forgotten this computer" in str(stale.value)
    assert "acudevice devices forget left-wrist, then pair again" in str(stale.value)


async def test_forgetting_a_band_removes_its_bond_and_its_registry_entry() -> None:
    async with ble_rig() as rig:
        entry = await rig.pair(alias="left-wrist")
        assert rig.band.address in bonds_in(entry.bond.keystore, entry.bond.identity)
        forgotten = await pairing.forget("left-wrist")
        assert forgotten.address == rig.band.address
        assert rig.band.address not in bonds_in(entry.bond.keystore, entry.bond.identity)
        with PairedDevices() as paired:
            assert paired.all() == []
        with pytest.raises(NotFoundError, match="no paired band"):
            await pairing.forget("left-wrist")
        with pytest.raises(TransportError, match="acudevice pair"):
            await BleTransport(rig.url(timeout_s=1)).connect()


async def test_pairing_again_after_a_band_reset_works(monkeypatch: pytest.MonkeyPatch) -> None:
    async with ble_rig() as rig:
        monkeypatch.setenv("ACUDEVICE_BLE_HCI", rig.hci)
        await rig.pair(alias="left-wrist")
        await rig.band.forget_bonds()
        await pairing.forget("left-wrist")
        await rig.pair(alias="left-wrist")
        async with Band(open_device_transport("left-wrist")) as band:
            assert band.info.serial == rig.sim.device.serial


async def test_aliases_and_bare_addresses_resolve_to_ble_urls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with ble_rig() as rig:
        await rig.pair(alias="left-wrist")
    monkeypatch.setenv("ACUDEVICE_BLE_HCI", "local:nowhere")
    by_alias = open_device_transport("LEFT-wrist")
    assert isinstance(by_alias, BleTransport)
    assert (by_alias.address, by_alias.label, by_alias.hci) == (
        rig.band.address,
        "left-wrist",
        "local:nowhere",
    )
    bare = open_device_transport(rig.band.address.lower())
    assert isinstance(bare, BleTransport) and bare.url == f"ble://{rig.band.address}"
    with pytest.raises(TransportError, match="no paired band's alias"):
        open_device_transport("right-wrist")
    with pytest.raises(TransportError, match="unknown scheme"):
        open_device_transport("bluetooth://x")


async def test_over_tcp_hci_a_host_may_reattach_at_once() -> None:
    async with ble_rig() as rig:
        server = HciServer(rig.radio)
        await server.start(0)
        try:
            assert re.fullmatch(r"tcp-client:127\.0\.0\.1:\d+", server.spec) and server.port
            for _ in range(3):  # close and reopen back to back, as a reconnect does
                async with radios.use(server.spec, radio_config()) as radio:
                    client = BleakClient(rig.band.address, backend=BumbleClient, radio=radio)
                    await client.connect()
                    await client.disconnect()
        finally:
            await server.close()


@pytest.mark.looptime
async def test_bands_connecting_at_once_on_one_radio_take_turns(tmp_path: Path) -> None:
    """A controller takes one connection attempt at a time: a gateway's bands connecting
    together on one dongle all get their link (Bumble refused the second as "connection
    already pending", which killed that band's keeper)."""
    async with served_bands("ble", 3, tmp_path) as bands:
        transports = [BleTransport(band.url) for band in bands]
        await asyncio.gather(*(t.connect() for t in transports))
        try:
            assert all(t.subscriptions == 1 for t in transports)
        finally:
            for transport in transports:
                await transport.close()


@pytest.mark.looptime
async def test_a_bonded_band_out_of_range_times_out_without_wedging_a_shared_radio(
    tmp_path: Path,
) -> None:
    """Connecting to a bonded band first scans to resolve its address: the controller holds
    no connect to cancel at the deadline. That once marked the radio wedged; shared by a
    gateway's other bands, it was never reset, and no band could reconnect again."""
    async with served_bands("ble", 2, tmp_path) as [gone, near]:
        assert isinstance(gone, BleServedBand)
        hci_spec = gone.air.hci
        async with radios.use(hci_spec, radio_config()) as radio:  # held, as by other links
            holder = BleTransport(near.url)
            await holder.connect()
            lost = BleTransport(gone.url)
            await lost.connect()
            await gone.band.drop_link(60.0)  # the link lost, and not advertising: out of range
            await lost.close()
            with pytest.raises(BleNotFound):
                await BleTransport(gone.url).connect()
            assert not radio.wedged
            await holder.close()
            again = BleTransport(near.url)
            await again.connect()  # the shared radio still connects
            await again.close()


@pytest.mark.looptime
async def test_a_link_made_just_as_its_connect_gives_up_is_dropped_not_leaked() -> None:
    """The band comes back in range just as the host's deadline passes: the link is made at
    the controller as the host gives up. Bumble's handler failed on it, nobody owned it, and
    the band, holding it, never advertised again. It is dropped now, and the radio stays
    usable."""
    async with ble_rig() as rig:
        await rig.pair()
        outcomes = set()
        async with radios.use(rig.hci, radio_config()) as radio:
            for step in range(12):  # back 0.974 .. 0.985 s later: around the 1 s deadline
                first = BleTransport(rig.url(timeout_s=5, attempts=1))
                await first.connect()  # the band is there (and the last link was dropped)
                await rig.band.drop_link(silent_s=0.974 + step * 0.001)
                await first.close()
                late = BleTransport(rig.url(timeout_s=1, attempts=1))
                try:
                    await late.connect()
                    outcomes.add("connected")
                except BleNotFound:
                    outcomes.add("gave up")
                await late.close()
                await asyncio.sleep(0.2)
                assert not radio.wedged and not rig.band.device.connections, step
        assert outcomes == {"connected", "gave up"}, "the sweep crossed the deadline"


@pytest.mark.looptime
async def test_a_link_nobody_owns_is_dropped_before_the_next_connect() -> None:
    """However a late link comes about (Bumble's device fails on one that completes just as
    its connect task is cancelled), the band holding it would never advertise again: the
    radio drops it before its next connect, and the band can be reached."""
    async with ble_rig() as rig:
        await rig.pair()
        async with radios.use(rig.hci, radio_config()) as radio:
            for step in range(12):  # as in the test above, but cancelling Bumble's task
                first = BleTransport(rig.url(timeout_s=5, attempts=1))
                await first.connect()
                await rig.band.drop_link(silent_s=0.974 + step * 0.001)
                await first.close()
                peer = radio.peer_address(rig.band.address)
                attempt = asyncio.ensure_future(radio.device.connect(peer, timeout=None))
                done, _ = await asyncio.wait({attempt}, timeout=1.0)
                if done:
                    await attempt.result().disconnect()
                    continue
                attempt.cancel()
                await asyncio.wait({attempt})
                await asyncio.sleep(0.2)
                if rig.band.device.connections:
                    break  # a link nobody owns: the band holds it
            else:
                pytest.fail("the sweep never left a link behind: Bumble changed?")
            again = BleTransport(rig.url(timeout_s=3, attempts=1))
            await again.connect()
            await again.close()
