"""`tcp://127.0.0.1:7000` — a device (usually `acudevice-sim serve`) over TCP.

The byte stream carries exactly the serial framing (COBS + CRC-16, 0x00-delimited), so a
serial-to-TCP bridge and the simulator look the same to the host. asyncio streams; a
reader task feeds the deframer and reports end-of-stream as a lost link.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from urllib.parse import urlsplit

from acudevice.transport.base import TransportError
from acudevice.transport.framed import FramedStreamTransport, number_option, query_options

OPTIONS = {
    "timeout_s": "deadline to connect, default 3",
    "gap_ms": "minimum gap between frames written, default 0",
}
READ_CHUNK = 4096


class TcpTransport(FramedStreamTransport):
    """One device at one TCP address."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "tcp":
            raise TransportError(f"{url}: not a tcp:// URL")
        try:
            port = parts.port
        except ValueError:
            raise TransportError(f"{url}: the port is not a number in 0..65535") from None
        if not parts.hostname or port is None:
            raise TransportError(f"{url}: write tcp://HOST:PORT, e.g. tcp://127.0.0.1:7000")
        if parts.path not in ("", "/"):
            raise TransportError(f"{url}: a tcp:// URL has no path")
        self.host, self.port = parts.hostname, port
        options = query_options(url, OPTIONS)
        super().__init__(
            url,
            connect_timeout_s=number_option(url, options, "timeout_s", 3.0),
            write_timeout_s=2.0,
            min_gap_s=number_option(url, options, "gap_ms", 0.0) / 1000.0,
        )
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    async def _open(self) -> None:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except ConnectionRefusedError:
            raise TransportError(
                f"connection refused at {self.where} — is acudevice-sim serve running?"
            ) from None
        except socket.gaierror as exc:
            raise TransportError(f"cannot resolve host {self.host!r}: {exc.strerror}") from None
        except OSError as exc:
            raise TransportError(f"cannot connect to {self.where}: {exc}") from None
        self._writer = writer
        self._reader_task = asyncio.get_running_loop().create_task(self._read_loop(reader))

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                data = await reader.read(READ_CHUNK)
                if not data:
                    self._on_lost(f"{self.where} closed the connection")
                    return
                self._on_data(data)
        except OSError as exc:
            self._on_lost(f"{self.where}: {exc}")

    async def _write(self, data: bytes) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            raise ConnectionError("connection is closed")
        writer.write(data)
        await writer.drain()

    async def _close_io(self) -> None:
        task, writer = self._reader_task, self._writer
        self._reader_task, self._writer = None, None
        if task is not None and task is not asyncio.current_task():
            # Cancel and wait without catching CancelledError: that would also eat a
            # cancel aimed at whoever is closing us.
            task.cancel()
            await asyncio.wait([task])
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()
