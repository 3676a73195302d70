"""The Keeper's contract, the same over every transport: in-process, a pty, TCP and BLE.

Each band is a simulator served in this process (`simulator.link_bands`), so a test can cut
the link from the band's side and look inside the band: what it heard, when it vented. The
in-process and BLE links run on the virtual clock (looptime); pty and TCP on real time, with
shorter request deadlines and heartbeats so the same contract is quick to prove.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from acudevice.device import Device, DeviceDisconnected, connect
from acudevice.device.keeper import BandBusy, Keeper, KeeperClosed, KeeperState, ReconnectPolicy
from acudevice.protocol import FaultCode, FirmwareState, Reason
from acudevice.transport import TransportError
from simulator.link_bands import BleServedBand, TransportKind
from tests.keeper_helpers import (
    LINKS,
    States,
    Tap,
    bands_on,
    real_time,
    start_program,
    until_state,
)

QUICK = ReconnectPolicy(initial_s=0.1, maximum_s=0.4)
"""A keeper for ever, backing off briefly (a gateway's, sped up)."""
C, R, L, X = KeeperState.CONNECTING, KeeperState.READY, KeeperState.LOST, KeeperState.CLOSED
MOVING = (FirmwareState.RUNNING, FirmwareState.PAUSED)
AT_REST = (FirmwareState.IDLE, FirmwareState.FAULT)


@pytest.fixture(params=LINKS)
def link(request: pytest.FixtureRequest) -> TransportKind:
    kind: TransportKind = request.param
    return kind


async def test_the_keeper_reconnects_a_fresh_device_after_the_band_drops_the_link(
    link: TransportKind, tmp_path: Path
) -> None:
    async with (
        bands_on(link, tmp_path) as [band],
        Keeper(band.url, policy=QUICK, connect=band.connect) as keeper,
    ):
        states = States(keeper)
        first = await keeper.wait_ready(10)
        await band.drop()
        await states.until(lambda: keeper.connections == 2 and keeper.ready)
        second = keeper.device
        assert second is not first and not first.connected
        assert (await second.status()).state is FirmwareState.IDLE, "the new link works"
    assert states.seen[:3] == [C, R, L] and states.seen[-3:] == [C, R, X], states.seen
    assert set(states.seen[2:-3]) <= {L, C}, "lost, then connecting until ready again"
    assert states.whys[2], "the listeners were told why"


async def test_a_lease_leaves_the_band_stopped_released_or_vented_and_keeps_the_link(
    link: TransportKind, tmp_path: Path
) -> None:
    async with bands_on(link, tmp_path) as [band], Keeper(band.url, connect=band.connect) as keeper:
        tap = Tap(band.sim)
        await keeper.wait_ready(10)
        async with keeper.lease() as device:
            await start_program(device)
        assert tap.reasons == [Reason.HOST_STOP], "a normal exit releases (STOP)"
        assert await until_state(keeper.device, AT_REST) is FirmwareState.IDLE
        with pytest.raises(RuntimeError, match="the caller broke"):
            async with keeper.lease() as device:
                await start_program(device)
                raise RuntimeError("the caller broke")
        assert tap.reasons == [Reason.HOST_STOP, Reason.HOST_ESTOP], "an error vents (ESTOP)"
        assert keeper.state is R and keeper.connections == 1, "the link stayed"


async def test_one_lease_at_a_time(link: TransportKind, tmp_path: Path) -> None:
    async with bands_on(link, tmp_path) as [band], Keeper(band.url, connect=band.connect) as keeper:
        await keeper.wait_ready(10)
        async with keeper.lease():
            assert keeper.leased
            with pytest.raises(BandBusy):
                async with keeper.lease():
                    pass
        async with keeper.lease() as device:  # free again once the first is left
            assert device is keeper.device


async def test_a_cancel_inside_a_lease_is_raised_and_the_band_still_vents(
    link: TransportKind, tmp_path: Path
) -> None:
    async with bands_on(link, tmp_path) as [band], Keeper(band.url, connect=band.connect) as keeper:
        tap = Tap(band.sim)
        await keeper.wait_ready(10)
        running = asyncio.Event()

        async def hold() -> None:
            async with keeper.lease() as device:
                await start_program(device)
                running.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(hold())
        async with asyncio.timeout(10):
            await running.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert tap.reasons == [Reason.HOST_ESTOP]
        assert keeper.state is R and not keeper.leased


async def test_a_band_lost_during_a_lease_is_left_to_its_watchdog(
    link: TransportKind, tmp_path: Path
) -> None:
    async with bands_on(link, tmp_path) as [band]:
        written_after_loss: list[bytes] = []

        def counted(url: str) -> Device:
            device = band.connect(url)
            transport = device.link.transport
            send = transport.send

            async def counting_send(payload: bytes) -> None:
                if not device.connected:
                    written_after_loss.append(payload)
                await send(payload)

            transport.send = counting_send  # type: ignore[method-assign]
            return device

        async with Keeper(band.url, policy=QUICK, connect=counted) as keeper:
            tap = Tap(band.sim)
            await keeper.wait_ready(10)
            with pytest.raises(DeviceDisconnected):
                async with keeper.lease() as device:
                    await start_program(device)
                    await band.go_away(5.0)  # longer than the band's 3 s watchdog
                    await device.wait_disconnected()
                    await device.status()  # the lessee finds out, and leaves with an error
            await tap.until(lambda: bool(tap.faults))
            [(fault_at, fault)] = tap.faults
            assert fault.fault is FaultCode.WATCHDOG
            assert tap.reasons == [Reason.WATCHDOG], "no ESTOP reached it: it vented by itself"
            since_last_frame = fault_at - tap.last_request_before(fault_at)
            slack = 1.5 if real_time(link) else 0.1  # a starved simulator on a busy machine
            assert 3.0 < since_last_frame <= 3.0 + slack
            assert written_after_loss == [], "nothing was written on the dead link"
            await keeper.wait_ready(15)  # back once the band is in reach again
            assert (await keeper.device.status()).fault is FaultCode.WATCHDOG


async def test_a_band_back_before_its_watchdog_is_vented_not_heartbeated_running(
    link: TransportKind, tmp_path: Path
) -> None:
    """A new link's heartbeats would keep the lost lease's program running with nobody
    watching it: the keeper vents it (ESTOP) before it says READY."""
    async with (
        bands_on(link, tmp_path) as [band],
        Keeper(band.url, policy=QUICK, connect=band.connect) as keeper,
    ):
        tap = Tap(band.sim)
        states = States(keeper)
        await keeper.wait_ready(10)
        async with keeper.lease() as device:
            await start_program(device)
            await band.drop()  # back at once: sooner than the 3 s watchdog
            await states.until(lambda: keeper.connections == 2 and keeper.ready)
            status = await keeper.device.status()
            assert status.state not in MOVING, status
            assert tap.reasons == [Reason.HOST_ESTOP]
        assert tap.reasons == [Reason.HOST_ESTOP], "nothing more to stop"


async def test_a_lease_left_as_its_link_drops_still_gets_its_band_vented(
    link: TransportKind, tmp_path: Path
) -> None:
    """The lessee leaves before the keeper has seen the loss (a session ending `link-lost`
    does): its STOP never reached the band. Once back, the keeper vents it, rather than
    heartbeat a program nobody watches until it runs out."""
    async with (
        bands_on(link, tmp_path) as [band],
        Keeper(band.url, policy=QUICK, connect=band.connect) as keeper,
    ):
        tap = Tap(band.sim)
        states = States(keeper)
        await keeper.wait_ready(10)
        async with keeper.lease() as device:
            await start_program(device)
            await band.drop()  # and leave at once
        await states.until(lambda: keeper.connections == 2 and keeper.ready)
        assert (await keeper.device.status()).state not in MOVING
        assert tap.reasons == [Reason.HOST_ESTOP]


async def test_a_silent_link_is_noticed_by_heartbeats_and_reconnected(
    link: TransportKind, tmp_path: Path
) -> None:
    async with (
        bands_on(link, tmp_path) as [band],
        Keeper(band.url, policy=QUICK, connect=band.connect) as keeper,
    ):
        states = States(keeper)
        first = await keeper.wait_ready(10)
        # Two heartbeats unanswered in a row: 5 s with the default 1 s / 2 s, 1.25 s on
        # real time (0.25 s / 0.5 s).
        band.silence(2.0 if real_time(link) else 7.0)
        await states.until(lambda: keeper.connections == 2 and keeper.ready, within_s=30)
        assert keeper.device is not first
    lost = states.seen.index(L)
    assert "heartbeats" in (states.whys[lost] or ""), states.whys


@pytest.mark.sim
@pytest.mark.looptime
async def test_a_link_that_goes_silent_after_every_connect_is_reconnected_each_time() -> None:
    from tests.session_helpers import connector, simulated

    async with (
        simulated("sim://?speed=20&fault=drop:1500") as sim,
        Keeper(sim.options.to_url(), policy=QUICK, connect=connector(sim)) as keeper,
    ):
        states = States(keeper)
        await keeper.wait_ready(10)
        await states.until(lambda: keeper.connections >= 3, within_s=60)
    silent = [why for state, why in zip(states.seen, states.whys, strict=True) if state is L]
    assert len(silent) >= 2 and all("heartbeats" in (w or "") for w in silent), silent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_first_connect_that_fails_raises_the_transports_own_error(
    link: TransportKind, tmp_path: Path
) -> None:
    async with bands_on(link, tmp_path) as [band]:
        wrong = {
            "sim": "sim://?model=no-such-band",
            "pty": f"serial://{tmp_path / 'no-such-port'}",
            "tcp": f"tcp://127.0.0.1:{_free_port()}",
            "ble": band.url,  # paired, but switched off (below)
        }[link]
        if link == "ble":
            await band.go_away(60.0)
        attempts: list[str] = []

        def counted(url: str) -> Device:
            attempts.append(url)
            return connect(url) if link == "sim" else band.connect(url)

        policy = ReconnectPolicy(initial_s=0.1, maximum_s=0.4, first_attempts=1)
        async with Keeper(wrong, policy=policy, connect=counted) as keeper:
            with pytest.raises(TransportError) as raised:
                await keeper.wait_ready(30)
            assert not isinstance(raised.value, KeeperClosed), "the transport's own error"
            assert keeper.state is X and attempts == [wrong]
            assert keeper.gave_up is not None and "1 attempt" in keeper.gave_up


async def test_a_keeper_with_a_budget_per_loss_gives_up_and_says_why(
    link: TransportKind, tmp_path: Path
) -> None:
    async with bands_on(link, tmp_path) as [band]:
        attempts = 0

        def counted(url: str) -> Device:
            nonlocal attempts
            attempts += 1
            return band.connect(url)

        policy = ReconnectPolicy(initial_s=0.1, maximum_s=0.4, attempts_per_loss=2)
        async with Keeper(band.url, policy=policy, connect=counted) as keeper:
            states = States(keeper)
            await keeper.wait_ready(10)
            await band.go_away(60.0)
            await states.until(lambda: keeper.state is X, within_s=30)
            assert attempts == 1 + 2, "the first connection, then two tries after the loss"
            assert keeper.gave_up is not None and "gave up after 2 attempt(s)" in keeper.gave_up
            with pytest.raises(KeeperClosed, match="gave up"):
                await keeper.wait_ready(1)


async def test_a_shared_semaphore_bounds_how_many_bands_open_at_once(
    link: TransportKind, tmp_path: Path
) -> None:
    async with bands_on(link, tmp_path, count=3) as bands:
        opening = 0
        most = 0

        def slow_open(band_connect: Callable[[str], Device]) -> Callable[[str], Device]:
            """The connect function, instrumented: each open counted, and slow to finish."""

            def connect_slowly(url: str) -> Device:
                device = band_connect(url)
                open_device = device.open

                async def open_slowly() -> None:
                    nonlocal opening, most
                    opening += 1
                    most = max(most, opening)
                    try:
                        await asyncio.sleep(0.3)  # a radio that takes its time
                        await open_device()
                    finally:
                        opening -= 1

                device.open = open_slowly  # type: ignore[method-assign]
                return device

            return connect_slowly

        async def open_all(connecting: asyncio.Semaphore | None) -> int:
            nonlocal most
            most = 0
            async with contextlib.AsyncExitStack() as stack:
                keepers = [
                    await stack.enter_async_context(
                        Keeper(b.url, connecting=connecting, connect=slow_open(b.connect))
                    )
                    for b in bands
                ]
                for keeper in keepers:
                    await keeper.wait_ready(20)
            return most

        assert await open_all(None) == 3, "unbounded, all three open together"
        assert await open_all(asyncio.Semaphore(2)) == 2


async def test_close_leaves_the_band_stopped_then_closes(
    link: TransportKind, tmp_path: Path
) -> None:
    async with bands_on(link, tmp_path) as [band]:
        tap = Tap(band.sim)
        keeper = Keeper(band.url, connect=band.connect)
        device = await keeper.wait_ready(10)
        await start_program(device)  # not leased: the keeper's own band
        await keeper.close()
        assert tap.reasons == [Reason.HOST_STOP] and keeper.state is X
        assert not device.connected
        with pytest.raises(ValueError, match="the owner broke"):
            async with Keeper(band.url, connect=band.connect) as keeper:
                await start_program(await keeper.wait_ready(10))
                raise ValueError("the owner broke")
        assert tap.reasons == [Reason.HOST_STOP, Reason.HOST_ESTOP], "an error vents"


@pytest.mark.wire
@pytest.mark.looptime
async def test_a_gatt_write_never_answered_gives_up_the_link_and_the_keeper_reconnects(
    tmp_path: Path,
) -> None:
    """A stack that loses a write request leaves the host's GATT write waiting: its 3 s
    deadline closes the link (the next write could not go out anyway) and the keeper
    connects afresh."""
    async with bands_on("ble", tmp_path) as [band]:
        assert isinstance(band, BleServedBand)
        async with Keeper(band.url, policy=QUICK, connect=band.connect) as keeper:
            states = States(keeper)
            await keeper.wait_ready(10)
            band.swallow_next_write()  # the next heartbeat's write is never answered
            await states.until(lambda: keeper.connections == 2 and keeper.ready, within_s=20)
            assert (await keeper.device.status()).state is FirmwareState.IDLE
    assert band.band.stats["swallowed"] == 1
    lost = states.seen.index(L)
    assert "dropped" in (states.whys[lost] or ""), states.whys
