"""What a user types for a device (URL, paired alias, bare BLE address) to a transport.

Aliases live in the paired-device store, which is above the transport layer; this is the
one place that looks them up.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from acudevice.store.paired import PairedDevices
from acudevice.transport import Transport, TransportError, available_schemes, open_transport

_BARE_ADDRESS = re.compile(r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$")


def resolve(name: str, paired: PairedDevices | None = None) -> tuple[str, str | None]:
    """A URL with a scheme as it is; a paired alias (or bare address) as its ble:// URL.

    Returns the URL and, for a paired band, the name the user knows it by.
    """
    if _BARE_ADDRESS.match(name):
        return f"ble://{name.upper()}", None
    if urlsplit(name).scheme:
        return name, None
    if paired is None:
        with PairedDevices() as store:
            device = store.find(name)
    else:
        device = paired.find(name)
    if device is None:
        raise TransportError(
            f"device URL {name!r} has no scheme and is no paired band's alias; use one of: "
            + ", ".join(f"{s}://" for s in available_schemes())
            + " — or pair a band with `acudevice pair ADDRESS --alias NAME`"
        )
    return device.url, device.label


def open_device_transport(name: str) -> Transport:
    """The transport for a URL, a paired band's alias or a bare BLE address."""
    url, label = resolve(name)
    transport = open_transport(url)
    if label is not None and hasattr(transport, "label"):
        transport.label = label  # advice texts name the band as the user does
    return transport
