"""Serving a simulated device over a byte stream: a pseudo-terminal or TCP on 127.0.0.1.

Both speak the serial framing of `docs/protocol.md` section 4 (COBS + CRC-16, 0x00
delimited) through `acudevice.protocol`'s `frame` and `Deframer`. Link faults (drop,
corrupt, duplicate, delay) act on whole frames in both directions. At speed=max a byte
stream gets at most one telemetry sample per 20 ms of wall time (the rest are skipped; at a
numeric speed the firmware already spaces them), so a serial reader is not flooded.

- PTY: `os.openpty()` in raw mode; a host opens the slave path with pyserial. The server
  keeps its own slave descriptor open, so a host closing and reopening the port is seen as
  the same connection (as on a real UART) and reads never fail with EIO. Optionally behind
  a stable symlink (a udev by-id name), which survives `hang_up`: the adapter unplugged and
  plugged back as a new pty.
- TCP: one client at a time; a new connection replaces the previous one and counts as a
  new connection for the firmware (HELLO and SET_LIMITS again). The device keeps running
  between clients, so a client that vanishes mid-session trips the watchdog. `reset` aborts
  the connection (RST); `refuse` closes the port for a while.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
import tty
from collections.abc import Callable
from pathlib import Path

from acudevice.protocol import Deframer, Kind, ProtocolError, decode, frame, opcode_name
from simulator.link import DelayLine, LinkImpairment
from simulator.options import WALL_TELEMETRY_FLOOR_S
from simulator.simulation import Simulation

log = logging.getLogger("acudevice-sim")

Writer = Callable[[bytes], None]


def describe(payload: bytes) -> str:
    """One payload in hex with its decoded form, for `-v` logs."""
    hexed = payload.hex(" ")
    try:
        env = decode(payload)
    except ProtocolError as exc:
        return f"{hexed} | undecodable: {exc}"
    name = opcode_name(int(env.kind), env.opcode)
    return f"{hexed} | {env.kind.name} {name} seq={env.seq} {env.message!r}"


class StreamLink:
    """One byte-stream connection: frames out, deframes in, impairs both ways."""

    def __init__(self, sim: Simulation, write: Writer, *, name: str, verbose: bool = False) -> None:
        self.sim = sim
        self._write = write
        self.name = name
        self.verbose = verbose
        loop = asyncio.get_running_loop()
        faults = sim.options.faults
        self._impair = LinkImpairment(faults, seed=sim.options.seed, clock=loop.time)
        self._deframer = Deframer()
        self._partial = bytearray()
        self._open = True
        self._late = DelayLine()
        self._unbounded = sim.options.speed is None
        self._last_telemetry = -1.0
        self.telemetry_skipped = 0
        """At speed=max, samples dropped to keep >= 20 ms of wall time between two."""

    def lose(self, why: str) -> None:
        if self._open:
            log.info("%s: link closed: %s", self.name, why)
        self._open = False
        self._late.close()

    # device -> host
    def from_device(self, payload: bytes) -> None:
        if not self._open:
            return
        if self._unbounded and payload[1] == Kind.TELEMETRY:
            now = asyncio.get_running_loop().time()
            if now - self._last_telemetry < WALL_TELEMETRY_FLOOR_S:
                self.telemetry_skipped += 1
                return
            self._last_telemetry = now
        if self.verbose:
            log.info("%s <- %s", self.name, describe(payload))
        self._emit(frame(payload), self._write)

    # host -> device
    def from_host(self, data: bytes) -> None:
        if not self._open:
            return
        if not self.sim.options.faults.link_faults:
            self._deliver(data)
            return
        self._partial += data
        while (end := self._partial.find(0)) >= 0:
            one = bytes(self._partial[: end + 1])
            del self._partial[: end + 1]
            self._emit(one, self._deliver)

    def _emit(self, data: bytes, to: Writer) -> None:
        for delivery in self._impair.impair(data):
            if delivery.delay_s > 0:
                self._late.put(delivery.delay_s, delivery.data, to)
            else:
                to(delivery.data)

    def _deliver(self, data: bytes) -> None:
        for payload in self._deframer.feed(data):
            if self.verbose:
                log.info("%s -> %s", self.name, describe(payload))
            self.sim.from_host(payload)
        for error in self._deframer.drain_errors():
            log.info("%s: dropped a bad frame: %s", self.name, error)


class PtyServer:
    """`link_path`: a stable name for the port (a symlink to the pty, as udev makes
    /dev/serial/by-id/... for a USB adapter), which `hang_up` keeps across a new pty."""

    def __init__(
        self, sim: Simulation, *, verbose: bool = False, link_path: Path | None = None
    ) -> None:
        self.sim = sim
        self.verbose = verbose
        self.link_path = link_path
        self._master = -1
        self._slave = -1
        self.path = ""
        """What a host opens: `link_path` if given, else the pty's own name."""
        self.tty = ""
        self._link: StreamLink | None = None
        self._reopen: asyncio.TimerHandle | None = None
        self.overruns = 0
        self.hang_ups = 0

    async def start(self) -> str:
        self._open_pty()
        self.sim.start()
        return self.path

    def _open_pty(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.tty = os.ttyname(self._slave)
        self.path = self.tty
        if self.link_path is not None:
            temporary = self.link_path.with_name(self.link_path.name + ".new")
            temporary.unlink(missing_ok=True)
            temporary.symlink_to(self.tty)
            temporary.replace(self.link_path)  # atomic: a host never sees it half made
            self.path = str(self.link_path)
        self._link = StreamLink(self.sim, self._write, name="pty", verbose=self.verbose)
        self.sim.attach(self._link)
        asyncio.get_running_loop().add_reader(self._master, self._readable)

    def hang_up(self, for_s: float) -> None:
        """The port goes away (a USB adapter unplugged or reset: the host's reads fail with
        EIO and `link_path` is gone) and comes back as a new pty behind `link_path` after
        `for_s` seconds. The firmware keeps running meanwhile, watchdog and all."""
        self.hang_ups += 1
        self._close_pty("hung up")
        if self.link_path is not None:
            self.link_path.unlink(missing_ok=True)
        self._reopen = asyncio.get_running_loop().call_later(for_s, self._reopen_pty)

    def _reopen_pty(self) -> None:
        self._reopen = None
        self._open_pty()

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            log.warning("pty read failed: %s", exc)
            return
        if data and self._link is not None:
            self._link.from_host(data)

    def _write(self, data: bytes) -> None:
        if self._master < 0:
            return
        # Like a UART with nobody reading: when the terminal's buffer is full, bytes are lost.
        try:
            written = os.write(self._master, data)
        except BlockingIOError:
            written = 0
        except OSError as exc:
            log.warning("pty write failed: %s", exc)
            return
        if written < len(data):
            self.overruns += 1

    def _close_pty(self, why: str) -> None:
        if self._master >= 0:
            asyncio.get_running_loop().remove_reader(self._master)
        link, self._link = self._link, None
        if link is not None:
            link.lose(why)
            self.sim.detach(link)
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1

    async def close(self) -> None:
        if self._reopen is not None:
            self._reopen.cancel()
            self._reopen = None
        self._close_pty("server closing")
        if self.link_path is not None:
            self.link_path.unlink(missing_ok=True)


class TcpServer:
    def __init__(self, sim: Simulation, *, port: int = 0, verbose: bool = False) -> None:
        self.sim = sim
        self.port = port
        self.verbose = verbose
        self._server: asyncio.Server | None = None
        self._current: tuple[StreamLink, asyncio.StreamWriter] | None = None
        self._clients = 0
        self._closed = False
        self.resets = 0

    async def start(self) -> int:
        await self._listen()
        self.sim.start()
        return self.port

    async def _listen(self) -> None:
        # The same port again after `refuse`: asyncio sets SO_REUSEADDR on POSIX.
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def reset(self) -> bool:
        """Abort the current connection with a TCP reset (SO_LINGER 0: RST, not FIN), as a
        NAT or a rebooted bridge does; the host's next read fails. False: no connection."""
        current, self._current = self._current, None
        if current is None:
            return False
        link, writer = current
        link.lose("reset")
        self.sim.detach(link)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        self.resets += 1
        return True

    async def refuse(self, for_s: float) -> None:
        """Reset the current connection and refuse new ones (nothing listens on the port)
        for `for_s` seconds, then listen on the same port again."""
        self.reset()
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        await asyncio.sleep(for_s)
        if not self._closed:
            await self._listen()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients += 1
        peer = writer.get_extra_info("peername")
        name = f"tcp#{self._clients}"
        if self._current is not None:
            old_link, old_writer = self._current
            old_link.lose("replaced by a new connection")
            old_writer.close()
        link = StreamLink(self.sim, writer.write, name=name, verbose=self.verbose)
        self._current = (link, writer)
        self.sim.attach(link)
        log.info("%s: connected from %s", name, peer)
        try:
            while data := await reader.read(4096):
                link.from_host(data)
        except (ConnectionError, OSError) as exc:
            log.info("%s: %s", name, exc)
        finally:
            link.lose("the client disconnected")
            self.sim.detach(link)
            if self._current is not None and self._current[0] is link:
                self._current = None
            writer.close()

    async def close(self) -> None:
        self._closed = True
        if self._current is not None:
            link, writer = self._current
            self._current = None
            link.lose("server closing")
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await writer.drain()  # the shutdown vent's events reach the client
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
