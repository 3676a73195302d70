"""The virtual radio: Bumble's `LocalLink` with controllers that behave like real ones.

Bumble's virtual `Controller` is a faithful enough link layer for GATT and SMP, but two of
its HCI commands are no-ops: LE Create Connection Cancel leaves the attempt pending (a
connect to an address nobody advertises never ends, and every later connect is refused as
"command disallowed") and Reset clears nothing. `RadioController` implements both as the
Core Specification says, and drops a host's links when that host goes away.

`HciServer` exposes one controller over TCP with Bumble's HCI framing (H4), the way
`acudevice-sim serve --ble` lets a host process attach (`tcp-client:127.0.0.1:PORT`). It
serves one host at a time (a host that connects while another is attached waits a moment
for it to go, as on a quick reconnect, then is refused) and binds loopback only.
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
ATTACH_GRACE_S = 1.0
"""A second host waits this long for the first to go before it is refused."""


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
        address = public_address or f"A0:C0:DE:00:00:{self._count:02X}"
        return RadioController(name, link=self.link, public_address=address)


class _HostConnection(asyncio.Protocol):
    def __init__(self, server: HciServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser: PacketParser | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.server.host is None:
            self.adopt()
            return
        # The previous host may have just closed its socket (a reconnect): wait for that
        # to be noticed before refusing a second host.
        transport.pause_reading()
        self.server.waiting.append(self)
        asyncio.get_running_loop().call_later(ATTACH_GRACE_S, self._give_up)

    def adopt(self) -> None:
        assert self.transport is not None
        self.server.host = self
        self.parser = PacketParser(self.server.controller)
        self.server.controller.host = self
        self.transport.resume_reading()
        log.info("host attached to the virtual controller")

    def _give_up(self) -> None:
        if self in self.server.waiting:
            self.server.waiting.remove(self)
            log.warning("a second host tried to attach; one host at a time")
            if self.transport is not None:
                self.transport.close()

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
        server = self.server
        if self in server.waiting:
            server.waiting.remove(self)
        if server.host is not self:
            return
        server.host = None
        controller = server.controller
        controller.host = None
        controller.drop_links(tell_host=False)
        log.info("host detached from the virtual controller")
        if server.waiting:
            server.waiting.pop(0).adopt()


class HciServer:
    """`controller` over TCP on loopback; `port=0` lets the OS pick (see `.port`)."""

    def __init__(self, controller: RadioController) -> None:
        self.controller = controller
        self.host: _HostConnection | None = None
        self.waiting: list[_HostConnection] = []
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
        if self.host is not None and self.host.transport is not None:
            self.host.transport.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
