"""What the Bumble backend raises: bleak's own errors where bleak has one, ours beside them.

bleak users catch `BleakError`; every class here is one. ATT errors from the peer become
bleak's public `BleakGATTProtocolError` (its `.code` is a `BleakGATTProtocolErrorCode`), so a
caller handles "insufficient authentication" the same way on every backend.
"""

from __future__ import annotations

from bleak.exc import BleakError, BleakGATTProtocolError
from bumble import att, core, hci


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


def translate(exc: BaseException, address: str) -> BleakError:
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
