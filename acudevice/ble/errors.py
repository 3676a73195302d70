"""Every BLE error, in two tiers.

The Bumble backend raises bleak's own errors where bleak has one and ours beside them
(`bleak_error`): bleak users catch `BleakError`, and ATT errors become bleak's public
`BleakGATTProtocolError`, so "insufficient authentication" looks the same on every backend.

Above it, `user_error` turns any bleak error into a `TransportError` carrying the advice a
user needs and how long to wait before trying again (the bleak-retry-connector pattern: back
off by error kind, never retry what waiting cannot fix, one outer deadline).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bleak.exc import (
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
    BleakGATTProtocolErrorCode,
)
from bumble import att, core, hci

from acudevice.errors import TransportClosed, TransportError

log = logging.getLogger("acudevice.ble")
T = TypeVar("T")


class BleakConnectTimeout(BleakError):
    """No connection within the deadline: the peer is off, out of range, or not advertising."""

    def __init__(self, address: str, seconds: float) -> None:
        self.address = address
        self.seconds = seconds
        super().__init__(f"{address}: no connection within {seconds:g} s")


class BleakPairingFailed(BleakError):
    """Pairing did not complete; `reason` is the SMP reason name (e.g. CONFIRM_VALUE_FAILED)."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"{address}: pairing failed ({reason})")


class BleakBondRejected(BleakError):
    """We hold a bond for the peer but it no longer knows our key (it was reset or unpaired)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(f"{address}: the peer rejected our stored key (PIN or key missing)")


class BleakLinkLost(BleakError):
    """The link dropped while an operation was in flight."""


class BleakRadioError(BleakError):
    """The HCI transport to the radio could not be opened or stopped answering."""


class BleakRadioRefused(BleakRadioError):
    """The radio answered but refused this host (no room for another, or in use)."""


class BleakRadioResetting(BleakRadioError):
    """The radio is being reset (a connect attempt got stuck); its next user reopens it."""


def bleak_error(exc: BaseException, address: str) -> BleakError:
    """The bleak error for a Bumble exception raised during a GATT or link operation."""
    if isinstance(exc, BleakError):
        return exc
    if isinstance(exc, att.ATT_Error):
        return BleakGATTProtocolError(exc.error_code)
    if isinstance(exc, core.ProtocolError) and exc.error_namespace == "smp":
        return BleakPairingFailed(address, str(exc.error_name or exc.error_code))
    if isinstance(exc, hci.HCI_Error):
        if exc.error_code == hci.HCI_ErrorCode.PIN_OR_KEY_MISSING_ERROR:
            return BleakBondRejected(address)
        return BleakLinkLost(f"{address}: {exc.error_name}")
    if isinstance(exc, core.ConnectionError | core.InvalidStateError | ConnectionError):
        return BleakLinkLost(f"{address}: link lost ({exc})")
    return BleakError(f"{address}: {type(exc).__name__}: {exc}")


AUTH_CODES = frozenset(
    {
        BleakGATTProtocolErrorCode.INSUFFICIENT_AUTHENTICATION,
        BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION,
        BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION_KEY_SIZE,
    }
)


class BleError(TransportError):
    """A BLE link problem; `advice` says what to do about it."""

    retry_after_s: float | None = None
    """Seconds to wait before the next attempt, growing per attempt; None: do not retry."""

    def __init__(self, what: str, advice: str) -> None:
        self.what = what
        self.advice = advice
        super().__init__(f"{what} — {advice}")


class BleNotFound(BleError):
    """Nothing answered at the address before the connect deadline."""

    retry_after_s = 0.5


class BleOutOfRange(BleError, TransportClosed):
    """The link dropped or stalled: the band moved away, lost power, or was reset."""

    retry_after_s = 0.25


class BleRadioUnavailable(BleError):
    """The computer's radio (or the HCI transport to it) is not usable."""


class BleRadioBusy(BleRadioUnavailable):
    """The radio is being reset after a stuck connection attempt; the next try reopens it."""

    retry_after_s = 0.1


class BlePairingRefused(BleError):
    """Pairing failed: a wrong or missing passkey, or the band said no."""


class BleNotPaired(BleError, TransportClosed):
    """The band refused control: this computer is not paired with it (MITM, passkey)."""


class BleStaleBond(BleError):
    """We hold a bond the band no longer has: it was reset or paired with us again elsewhere."""


def pair_advice(address: str) -> str:
    return f"pair the band: acudevice pair {address}"


def user_error(exc: BaseException, address: str, label: str, timeout_s: float) -> BaseException:
    """The transport error for a bleak (or backend) error; anything else passes through."""
    if isinstance(exc, BleError):
        return exc
    if isinstance(exc, BleakConnectTimeout | BleakDeviceNotFoundError):
        return BleNotFound(
            f"no band answered at {address} within {timeout_s:g} s",
            "is it switched on, charged and within a few metres? `acudevice scan` lists the "
            "bands in range (a band already connected to another computer does not advertise)",
        )
    if isinstance(exc, BleakBondRejected):
        return BleStaleBond(
            f"{address} rejected this computer's key",
            f"the band has forgotten this computer: acudevice devices forget {label}, "
            "then pair again",
        )
    if isinstance(exc, BleakPairingFailed):
        return BlePairingRefused(
            f"pairing with {address} failed ({exc.reason})",
            f"check the passkey the band shows and try again: acudevice pair {address}",
        )
    if isinstance(exc, BleakGATTProtocolError) and exc.code in AUTH_CODES:
        return BleNotPaired(
            f"{address} refused control on this link ({exc.code.name})", pair_advice(address)
        )
    if isinstance(exc, BleakRadioResetting):
        return BleRadioBusy(str(exc), "retrying")
    if isinstance(exc, BleakRadioRefused):
        return BleRadioUnavailable(
            str(exc),
            "close another program attached to that radio (the simulator serves "
            "up to 8 hosts at once), or use another adapter",
        )
    if isinstance(exc, BleakRadioError):
        return BleRadioUnavailable(
            str(exc),
            "start the virtual radio with `acudevice-sim serve --ble` and export the "
            "ACUDEVICE_BLE_HCI it prints, or plug in the Bluetooth adapter (docs/ble.md)",
        )
    if isinstance(exc, OSError) and not isinstance(exc, TimeoutError):
        return BleRadioUnavailable(
            f"the operating system's Bluetooth service is not reachable ({exc})",
            "start it (Linux: bluetoothd and D-Bus), or use a Bumble radio with --hci / "
            "ACUDEVICE_BLE_HCI (docs/ble.md)",
        )
    if isinstance(exc, BleakLinkLost | TimeoutError):
        return BleOutOfRange(
            f"the link to {address} dropped ({exc or 'timed out'})",
            "move the band closer, check its battery, and try again",
        )
    if isinstance(exc, BleakError):
        return BleError(f"{address}: {exc}", "see docs/ble.md, troubleshooting")
    return exc


async def with_backoff(
    attempt: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    deadline_s: float,
    describe: Callable[[BaseException], BaseException],
) -> T:
    """Run `attempt` until it succeeds, an error says not to retry, or time runs out.

    Each error is translated by `describe`; a `BleError` with `retry_after_s` is retried
    after that delay times the attempt number, the rest are raised at once. The last error
    is raised when the attempts or the outer deadline run out.
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    for number in range(1, attempts + 1):
        try:
            return await attempt()
        except Exception as exc:
            error = describe(exc)
            delay = error.retry_after_s if isinstance(error, BleError) else None
            if delay is None or number == attempts or loop.time() + delay * number >= end:
                raise error from exc
            log.info(
                "attempt %d/%d failed (%s); retrying in %.2f s",
                number,
                attempts,
                type(error).__name__,
                delay * number,
            )
            await asyncio.sleep(delay * number)
    raise AssertionError("unreachable: the loop returns or raises")
