"""What `acudevice.ble` and `simulator.ble_*` rely on in bleak and Bumble, pinned.

Our backend implements bleak's abstract backend classes and drives Bumble below its most
public surface in a few places. Each check here names the thing it guards, so an upgrade
that moves one fails with a sentence saying what to look at, not somewhere deep in a test.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService
from bleak.exc import BleakGATTProtocolError, BleakGATTProtocolErrorCode
from bumble import (
    att,
    controller,
    device,
    gatt,
    gatt_client,
    gatt_server,
    hci,
    keys,
    link,
    ll,
    pairing,
    transport,
)
from bumble.transport import common

from acudevice.ble import BumbleClient, BumbleScanner

pytestmark = pytest.mark.unit

PINS = {"bleak": "3.1.0", "bumble": "0.0.236"}


def _params(func: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(func).parameters)


def _declared(owner: object, name: str) -> bool:
    """An attribute, or an instance attribute the class declares (annotation, dataclass)."""
    if hasattr(owner, name):
        return True
    mro = getattr(owner, "__mro__", ())
    return any(name in getattr(klass, "__annotations__", {}) for klass in mro)


def _needs(owner: object, *names: str) -> None:
    missing = [n for n in names if not _declared(owner, n)]
    assert not missing, f"{getattr(owner, '__name__', owner)} lost {missing}: see acudevice/ble"


def test_installed_versions_are_the_pinned_ones_and_pyproject_pins_them() -> None:
    for package, pinned in PINS.items():
        assert version(package) == pinned, (
            f"{package} {version(package)} installed, {pinned} pinned"
        )
    pyproject = tomllib.loads(Path(__file__).parents[1].joinpath("pyproject.toml").read_text())
    deps = pyproject["project"]["dependencies"]
    for package, pinned in PINS.items():
        assert f"{package}=={pinned}" in deps, f"pyproject.toml must pin {package}=={pinned}"


def test_bleak_abstract_backend_methods_are_the_ones_we_implement() -> None:
    client_abstract = {
        "mtu_size", "connect", "disconnect", "pair", "unpair", "is_connected",
        "read_gatt_char", "read_gatt_descriptor", "write_gatt_char", "write_gatt_descriptor",
        "start_notify", "stop_notify",
    }  # fmt: skip
    assert BaseBleakClient.__abstractmethods__ == client_abstract, "BaseBleakClient changed"
    assert BaseBleakScanner.__abstractmethods__ == {"start", "stop"}, "BaseBleakScanner changed"
    assert not BumbleClient.__abstractmethods__ and not BumbleScanner.__abstractmethods__


def test_bleak_signatures_we_call() -> None:
    assert "backend" in _params(BleakClient.__init__), "BleakClient(..., backend=) is our door"
    assert "backend" in _params(BleakScanner.__init__), "BleakScanner(..., backend=) too"
    base_client = _params(BaseBleakClient.__init__)
    assert base_client[:2] == ["self", "address_or_ble_device"]
    assert {"disconnected_callback", "timeout"} <= set(base_client)
    assert _params(BaseBleakScanner.__init__) == ["self", "detection_callback", "service_uuids"]
    assert _params(BaseBleakScanner.create_or_update_device) == [
        "self", "key", "address", "name", "details", "adv",
    ]  # fmt: skip
    _needs(BaseBleakScanner, "call_detection_callbacks", "is_allowed_uuid", "seen_devices")
    assert _params(BleakGATTService.__init__) == ["self", "obj", "handle", "uuid"]
    assert _params(BleakGATTCharacteristic.__init__) == [
        "self", "obj", "handle", "uuid", "properties", "max_write_without_response_size",
        "service",
    ]  # fmt: skip
    assert _params(BleakGATTDescriptor.__init__) == [
        "self",
        "obj",
        "handle",
        "uuid",
        "characteristic",
    ]
    assert AdvertisementData._fields == (
        "local_name", "manufacturer_data", "service_data", "service_uuids", "tx_power",
        "rssi", "platform_data",
    )  # fmt: skip
    error = BleakGATTProtocolError(0x05)
    assert error.code is BleakGATTProtocolErrorCode.INSUFFICIENT_AUTHENTICATION


def test_bumble_host_side_surface() -> None:
    assert "timeout" in _params(device.Device.connect), "Device.connect(timeout=None)"
    _needs(device.Device, "power_on", "start_scanning", "stop_scanning", "send_sync_command")
    _needs(device.Device, "EVENT_ADVERTISEMENT", "EVENT_CONNECTION", "EVENT_CONNECTION_FAILURE")
    _needs(device.Connection, "pair", "encrypt", "disconnect", "EVENT_DISCONNECTION")
    _needs(device.Peer, "request_mtu", "discover_services", "subscribe", "unsubscribe")
    assert "service" in _params(device.Peer.discover_characteristics)
    assert "characteristic" in _params(device.Peer.discover_descriptors)
    assert _params(device.Peer.subscribe)[1:] == ["characteristic", "subscriber", "prefer_notify"]
    assert "with_response" in _params(gatt_client.AttributeProxy.write_value)
    # A dropped link cancels the pending ATT request; BumbleClient turns that into BleakLinkLost.
    assert "pending_response.cancel()" in inspect.getsource(gatt_client.Client.on_disconnection)
    _needs(device.Advertisement, "address", "rssi")
    assert "data" in device.Advertisement.__dataclass_fields__
    params = _params(pairing.PairingConfig.__init__)
    assert {"sc", "mitm", "bonding", "delegate", "identity_address_type"} <= set(params)
    _needs(pairing.PairingDelegate, "get_number", "display_number", "generate_passkey")
    assert _params(keys.JsonKeyStore.__init__) == ["self", "namespace", "filename"]
    _needs(keys.PairingKeys.Key, "authenticated")
    _needs(transport, "open_transport")
    _needs(common, "AsyncPipeSink", "PacketParser")


def test_bumble_virtual_radio_surface() -> None:
    ctl = controller.Controller
    _needs(ctl, "on_hci_le_create_connection_cancel_command", "on_hci_reset_command")
    _needs(ctl, "on_le_disconnected", "send_hci_packet", "pending_le_connection", "le_scan_enable")
    _needs(controller.Connection, "send_ll_control_pdu")
    _needs(ll, "TerminateInd")
    assert _params(hci.HCI_LE_Connection_Complete_Event.__init__)[1:2] == ["status"]
    # The link routes LE data by the sender's random address: hosts connect with RANDOM.
    assert "sender_controller.random_address" in inspect.getsource(link.LocalLink.send_acl_data)


def test_bumble_peripheral_surface() -> None:
    server = gatt_server.Server
    _needs(server, "on_att_write_command", "get_descriptor_attribute", "subscribers")
    _needs(server, "notify_subscriber", "EVENT_CHARACTERISTIC_SUBSCRIPTION")
    # The band intercepts write commands by replacing the handler the server looks up by name.
    assert re.search(r"on_\{att_pdu\.name\.lower\(\)\}", inspect.getsource(server.on_gatt_pdu))
    _needs(gatt.Characteristic, "WRITEABLE", "READABLE")
    _needs(att.Attribute.Permissions, "WRITE_REQUIRES_ENCRYPTION")
    _needs(att, "ATT_INSUFFICIENT_AUTHENTICATION_ERROR", "ATT_WRITE_NOT_PERMITTED_ERROR")
    _needs(device.Connection, "EVENT_PAIRING", "EVENT_CONNECTION_ENCRYPTION_CHANGE")
    # Bumble marks any paired link authenticated; the band must read the key's own flag.
    assert "connection.authenticated = True" in inspect.getsource(device.Device.on_pairing)
