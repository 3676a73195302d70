"""Transports are found by URL scheme through the `acudevice.transports` entry points.

This is how `sim://` reaches the simulator without `acudevice` importing it, the way any
third-party transport plugs in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib.metadata import entry_points
from urllib.parse import urlsplit

from acudevice.transport.base import Transport, TransportError

ENTRY_POINT_GROUP = "acudevice.transports"
_BARE_ADDRESS = re.compile(r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$")

TransportFactory = Callable[[str], Transport]


def available_schemes() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def resolve(url: str) -> tuple[str, str | None]:
    """A URL with a scheme as it is; a paired alias (or bare address) as its ble:// URL.

    Returns the URL and, for a registry entry, the name the user knows the band by.
    """
    if _BARE_ADDRESS.match(url):
        return f"ble://{url.upper()}", None
    if urlsplit(url).scheme:
        return url, None
    from acudevice.store.devices import DeviceRegistry  # only scheme-less names need it

    device = DeviceRegistry().find(url)
    if device is None:
        raise TransportError(
            f"device URL {url!r} has no scheme and is no paired band's alias; use one of: "
            + ", ".join(f"{s}://" for s in available_schemes())
            + " — or pair a band with `acudevice pair ADDRESS --alias NAME`"
        )
    return device.url, device.label


def open_transport(url: str) -> Transport:
    """Build (not yet connect) the transport for `url` (or for a paired band's alias)."""
    url, label = resolve(url)
    scheme = urlsplit(url).scheme
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == scheme]
    if not matches:
        raise TransportError(
            f"device URL {url!r}: unknown scheme {scheme!r}; known: "
            + ", ".join(f"{s}://" for s in available_schemes())
        )
    factory: TransportFactory = matches[0].load()
    transport = factory(url)
    if label is not None and hasattr(transport, "label"):
        transport.label = label  # advice texts name the band as the user does
    return transport
