"""`serial:///dev/ttyUSB0?baud=115200` — a device on a serial port (USB CDC or UART).

Reading uses `loop.add_reader` on pyserial's file descriptor with a zero read timeout:
no thread, no polling, and `close()` takes effect at once. That needs a POSIX system
(Linux, macOS), which is where these devices are driven from. Writes are small (≤ 132
bytes) but may block if the device stops reading, so they run in the default executor,
bounded by `write_timeout_s`, and are spaced by `gap_ms`.

Opening: the port is locked for exclusive use, its input buffer is flushed (stale bytes
from before we opened are not ours), and DTR/RTS are left as pyserial sets them on open
unless `dtr=`/`rts=` say otherwise; these are applied before opening, so no line toggles
afterwards (many boards reset on a DTR edge).
"""

from __future__ import annotations

import asyncio
import errno
import os
import sys
import threading
from urllib.parse import unquote, urlsplit

import serial

from acudevice.transport.base import TransportError
from acudevice.transport.framed import FramedStreamTransport, number_option, query_options

OPTIONS = {
    "baud": "bits per second, default 115200",
    "dtr": "0 or 1: set DTR before opening; default: leave it",
    "rts": "0 or 1: set RTS before opening; default: leave it",
    "gap_ms": "minimum gap between frames written, default 2",
    "timeout_s": "deadline to open the port, default 3",
}
READ_CHUNK = 4096


def _flag(url: str, options: dict[str, str], key: str) -> bool | None:
    raw = options.get(key)
    if raw is None:
        return None
    if raw not in ("0", "1"):
        raise TransportError(f"{url}: option {key}={raw!r} must be 0 or 1")
    return raw == "1"


class SerialTransport(FramedStreamTransport):
    """One device on one serial port; see the module docstring for how it reads."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "serial":
            raise TransportError(f"{url}: not a serial:// URL")
        self.port = unquote(parts.netloc + parts.path)
        if not self.port:
            raise TransportError(f"{url}: no port; write serial:///dev/ttyUSB0 or serial://COM3")
        options = query_options(url, OPTIONS)
        baud = number_option(url, options, "baud", 115200)
        if baud != int(baud) or baud <= 0:
            raise TransportError(f"{url}: baud must be a positive whole number")
        self.baud = int(baud)
        self.dtr = _flag(url, options, "dtr")
        self.rts = _flag(url, options, "rts")
        super().__init__(
            url,
            connect_timeout_s=number_option(url, options, "timeout_s", 3.0),
            write_timeout_s=2.0,
            min_gap_s=number_option(url, options, "gap_ms", 2.0) / 1000.0,
        )
        self._serial: serial.Serial | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def _open(self) -> None:
        if sys.platform == "win32":
            raise TransportError(f"{self.url}: serial:// needs a POSIX system (Linux, macOS)")
        self._loop = asyncio.get_running_loop()
        port = await self._open_in_thread()
        self._serial = port
        self._loop.add_reader(port.fileno(), self._readable)

    async def _open_in_thread(self) -> serial.Serial:
        """Open off the loop; if connect gives up first, the late port is closed, not leaked."""
        lock = threading.Lock()
        abandoned = False
        opened: list[serial.Serial] = []

        def work() -> serial.Serial:
            port = self._open_blocking()
            with lock:
                if abandoned:
                    port.close()
                else:
                    opened.append(port)
            return port

        try:
            return await asyncio.get_running_loop().run_in_executor(None, work)
        except asyncio.CancelledError:
            with lock:
                abandoned = True
                for port in opened:
                    port.close()
            raise

    def _open_blocking(self) -> serial.Serial:
        port = serial.Serial()
        port.port = self.port
        port.baudrate = self.baud
        port.timeout = 0  # reads return what is there; add_reader says when
        port.write_timeout = self.write_timeout_s
        port.exclusive = True
        if self.dtr is not None:
            port.dtr = self.dtr
        if self.rts is not None:
            port.rts = self.rts
        try:
            port.open()
            port.reset_input_buffer()
        except (serial.SerialException, OSError) as exc:
            port.close()
            raise TransportError(self._advice(exc)) from None
        return port

    def _advice(self, exc: BaseException) -> str:
        code = getattr(exc, "errno", None)
        if code == errno.ENOENT or (code is None and not os.path.exists(self.port)):
            return (
                f"no such port {self.port} — is the device plugged in? "
                "List ports with: python -m serial.tools.list_ports"
            )
        if code in (errno.EACCES, errno.EPERM):
            return (
                f"permission denied on {self.port} — add your user to the group owning it "
                "(often 'dialout' or 'uucp') and log in again"
            )
        if code in (errno.EBUSY, errno.EAGAIN) or "lock" in str(exc).lower():
            return f"{self.port} is in use by another program — close it and retry"
        return f"cannot open {self.port}: {exc}"

    def _readable(self) -> None:
        port = self._serial
        if port is None:
            return
        try:
            data = port.read(READ_CHUNK)
        except (serial.SerialException, OSError) as exc:
            self._stop_reading()
            self._on_lost(f"{self.port}: {exc}")
            return
        if data:
            self._on_data(data)

    async def _write(self, data: bytes) -> None:
        port = self._serial
        if port is None:
            raise ConnectionError("port is not open")
        loop = asyncio.get_running_loop()
        written = await loop.run_in_executor(None, port.write, data)
        if written != len(data):
            raise ConnectionError(f"wrote {written} of {len(data)} bytes")

    def _stop_reading(self) -> None:
        port, loop = self._serial, self._loop
        if port is not None and loop is not None and port.is_open:
            loop.remove_reader(port.fileno())

    async def _close_io(self) -> None:
        port = self._serial
        if port is None:
            return
        self._stop_reading()
        self._serial = None
        port.close()
