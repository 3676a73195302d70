"""The virtual radio: Bumble's `LocalLink` with controllers that behave like real ones.

Bumble's virtual `Controller` is a faithful enough link layer for GATT and SMP, but two of
its HCI commands are no-ops: LE Create Connection Cancel leaves the attempt pending (a
connect to an address nobody advertises never ends, and every later connect is refused as
"command disallowed") and Reset clears nothing. `RadioController` implements both as the
Core Specification says, and drops a host's links when that host goes away.

`HciServer` lets host processes attach over TCP with Bumble's HCI framing (H4), the way
`acudevice-sim serve --ble` does (`tcp-client:127.0.0.1:PORT`). As a phone and a laptop
both hear a real band, every host that attaches gets its own controller on the shared
air, up to `max_hosts`; one more is answered, on its first command, with the HCI status
"connection rejected due to limited resources" and closed, so it can say why in one line.
It binds loopback only.
"""

from __future__ import annotations

import asyncio
import logging

from bumble import hci, ll
from bumble.controller import Controller
from bumble.core import InvalidPacketError
from bumble.link import LocalLink
from bumble.transport.common import PacketParser

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
MAX_HOSTS = 8
"""Hosts attached at once; each costs one controller on the shared link."""
REFUSED = hci.HCI_ErrorCode.CONNECTION_REJECTED_DUE_TO_LIMITED_RESOURCES_ERROR


class RadioController(Controller):
    """A virtual controller whose connect-cancel and reset work."""

    def on_hci_le_create_connection_cancel_command(
        self, _command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        pending = self.pending_le_connection
        if pending is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        # After the command completes, the attempt ends with "unknown connection identifier".
        asyncio.get_running_loop().call_soon(self._report_cancelled, pending.peer_address)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def _report_cancelled(self, peer: hci.Address) -> None:
        self.send_hci_packet(
            hci.HCI_LE_Connection_Complete_Event(
                status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
                connection_handle=0,
                role=hci.Role.CENTRAL,
                peer_address_type=peer.address_type,
                peer_address=peer,
                connection_interval=0,
                peripheral_latency=0,
                supervision_timeout=0,
                central_clock_accuracy=0,
            )
        )

    def on_hci_reset_command(
        self, _command: hci.HCI_Reset_Command
    ) -> hci.HCI_StatusReturnParameters:
        self.drop_links(tell_host=False)
        self.le_scan_enable = False
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def drop_links(self, *, tell_host: bool) -> None:
        """End every LE link as a supervision timeout would, and any pending connect."""
        self.pending_le_connection = None
        reason = hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR
        for connection in list(self.le_connections.values()):
            connection.send_ll_control_pdu(ll.TerminateInd(reason))
            if tell_host:
                self.on_le_disconnected(connection, reason)
            else:
                self.le_connections.pop(connection.peer_address, None)


class VirtualRadio:
    """One shared radio medium; every controller made here hears every other."""

    def __init__(self) -> None:
        self.link = LocalLink()  # type: ignore[no-untyped-call]  # bumble leaves it untyped
        self._count = 0

    def controller(self, name: str, public_address: str | None = None) -> RadioController:
        self._count += 1
        address = (
            public_address or f"A0:C0:DE:00:{self._count >> 8 & 0xFF:02X}:{self._count & 0xFF:02X}"
        )
        return RadioController(name, link=self.link, public_address=address)

    def remove(self, controller: RadioController) -> None:
        """Take a controller off the air (its host went away)."""
        self.link.controllers.discard(controller)


class _Refusal:
    """Answers every HCI command with `REFUSED`, so the host fails with a reason."""

    def __init__(self, connection: _HostConnection) -> None:
        self.connection = connection

    def on_packet(self, packet: bytes) -> None:
        try:
            command = hci.HCI_Packet.from_bytes(packet)
        except Exception:  # anything unreadable: just close
            command = None
        if isinstance(command, hci.HCI_Command):
            event = hci.HCI_Command_Complete_Event(
                num_hci_command_packets=1,
                command_opcode=command.op_code,
                return_parameters=hci.HCI_StatusReturnParameters(REFUSED),
            )
            self.connection.on_packet(bytes(event))
        transport = self.connection.transport
        if transport is not None:
            asyncio.get_running_loop().call_later(0.2, transport.close)


class _HostConnection(asyncio.Protocol):
    """One attached host: its own controller on the shared link while it stays."""

    def __init__(self, server: HciServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser: PacketParser | None = None
        self.controller: RadioController | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        server = self.server
        if len(server.hosts) >= server.max_hosts:
            log.warning(
                "refused a host: %d hosts are attached already (at most %d)",
                len(server.hosts),
                server.max_hosts,
            )
            self.parser = PacketParser(_Refusal(self))
            return
        server.attached += 1
        self.controller = server.radio.controller(f"host-{server.attached}")
        self.controller.host = self
        self.parser = PacketParser(self.controller)
        server.hosts.add(self)
        log.info("host %d attached to the virtual radio", server.attached)

    def data_received(self, data: bytes) -> None:
        if self.parser is None:
            return
        try:
            self.parser.feed_data(data)
        except InvalidPacketError:
            log.warning("garbage on the HCI connection; dropping the host")
            if self.transport is not None:
                self.transport.close()

    def on_packet(self, packet: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(packet)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.hosts.discard(self)
        controller, self.controller = self.controller, None
        if controller is None:
            return
        controller.host = None
        controller.drop_links(tell_host=False)
        self.server.radio.remove(controller)
        log.info("a host detached from the virtual radio")


class HciServer:
    """Hosts attach to `radio` over TCP on loopback; `port=0` lets the OS pick (`.port`)."""

    def __init__(self, radio: VirtualRadio, *, max_hosts: int = MAX_HOSTS) -> None:
        self.radio = radio
        self.max_hosts = max_hosts
        self.hosts: set[_HostConnection] = set()
        self.attached = 0
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self, port: int = 0) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _HostConnection(self), LOOPBACK, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    @property
    def spec(self) -> str:
        """The Bumble transport spec a host uses to attach."""
        return f"tcp-client:{LOOPBACK}:{self.port}"

    async def close(self) -> None:
        for host in list(self.hosts):
            if host.transport is not None:
                host.transport.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
