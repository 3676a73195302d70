"""Whole sessions over BLE: the Session runner, the Device API, the BLE transport, the band."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from acudevice.device import Device
from acudevice.device.keeper import ReconnectPolicy
from acudevice.session.runner import Session
from acudevice.store import Journal
from acudevice.transport.ble import BleTransport
from simulator.link_bands import BleServedBand, served_bands
from tests.ble_helpers import NAUSEA, Progress, ble_rig

# The loop clock is virtual (looptime): the band's 3 s watchdog passes at once.
pytestmark = [pytest.mark.wire, pytest.mark.looptime]


async def test_nausea_relief_runs_to_completion_over_ble_by_alias(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with ble_rig("sim://?speed=max&seed=7") as rig:
        await rig.pair(alias="left-wrist")
        monkeypatch.setenv("ACUDEVICE_BLE_HCI", rig.hci)
        with Journal() as journal:
            result = await Session(NAUSEA, ["left-wrist"], journal=journal).run()
            samples = journal.samples(result.session_id) if result.session_id else []
        run_link = rig.band.links[-1]
    assert (result.outcome, result.repeats_done, result.faults) == ("completed", 4, ())
    assert 11_000 < result.peak_level <= result.cap_level
    assert len(samples) > 100
    assert run_link.subscriptions == 1 and rig.band.stats["unsent"] == 0


async def test_a_band_side_drop_mid_hold_vents_then_the_host_reconnects_fresh_from_a_ramp() -> None:
    async with ble_rig("sim://?speed=20&seed=4") as rig:
        await rig.pair()
        transports: list[BleTransport] = []

        def connect(url: str) -> Device:
            transports.append(BleTransport(url))
            return Device(transports[-1])

        watch = Progress()
        runner = watch.follow(
            Session(
                NAUSEA,
                [rig.url(timeout_s=1, attempts=2)],
                connect=connect,
                reconnect=ReconnectPolicy(first_attempts=1, attempts_per_loss=5),
            )
        )
        task = asyncio.create_task(runner.run())
        await watch.until(lambda: watch.phases[-1:] == ["hold"], within_s=20)
        held = rig.sim.device.true_level
        await rig.band.drop_link(silent_s=4.0)  # gone longer than the 3 s watchdog
        await watch.until(lambda: any("restarting repeat" in n for n in watch.notes), within_s=30)
        level_at_restart = rig.sim.device.true_level
        await asyncio.sleep(0.5)  # let the new link carry a few notifications
        runner.stop()
        result = await asyncio.wait_for(task, 30)
    assert held > 10_000, "the drop happened at pressure"
    assert level_at_restart < 2_000, "the band vented; the host restarts from a ramp"
    assert any(f.startswith("device-watchdog") for f in result.faults), "the band vented"
    assert len(transports) >= 2 and all(t.subscriptions <= 1 for t in transports)
    assert all(t.notifications == 0 for t in transports if t.subscriptions == 0)
    new, band_link = transports[-1], rig.band.links[-1]
    assert new is not transports[0] and new.subscriptions == 1 and band_link.subscriptions == 1
    assert new.notifications == band_link.notified > 0, "each notification arrived once"
    assert "link-lost" in " ".join(result.faults)


async def test_a_control_write_never_answered_mid_hold_is_recovered_as_a_lost_link(
    tmp_path: Path,
) -> None:
    """The band's stack loses one write request: the host's writes wait behind it, the band
    hears nothing and its watchdog vents it (its notifications still arrive), then the
    host's 3 s write deadline gives the link up. The session reconnects and restarts the
    repeat from its ramp rather than ending faulted."""
    async with served_bands("ble", 1, tmp_path) as [band]:
        assert isinstance(band, BleServedBand)
        watch = Progress()
        runner = watch.follow(Session(NAUSEA, [band.url]))
        task = asyncio.create_task(runner.run())
        await watch.until(lambda: watch.phases[-1:] == ["hold"], within_s=20)
        band.swallow_next_write()
        await watch.until(lambda: any("restarting repeat" in n for n in watch.notes), within_s=30)
        runner.stop()
        result = await asyncio.wait_for(task, 30)
    assert band.band.stats["swallowed"] == 1
    assert result.outcome == "stopped"
    assert [f.split(":")[0] for f in result.faults] == ["link-lost", "device-watchdog"]
