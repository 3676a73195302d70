"""What serial and TCP links share: COBS/CRC framing over a byte stream.

A subclass opens the stream, writes bytes, arranges for received bytes to reach
`_on_data`, reports a lost stream with `_on_lost`, and closes it. This class frames,
paces and serialises writes, deframes (dropping and logging bad frames), buffers payloads
for `payloads()`, and turns every failure into `TransportClosed`.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

from acudevice.protocol.codes import MAX_PAYLOAD
from acudevice.protocol.framing import DELIMITER, Deframer, frame
from acudevice.transport.base import TransportClosed, TransportError
from acudevice.transport.inbox import Inbox

log = logging.getLogger("acudevice.transport")

MAX_LOGGED_BAD_FRAMES = 20
"""Bad frames logged at WARNING per connection; later ones go to DEBUG."""


def query_options(url: str, known: dict[str, str]) -> dict[str, str]:
    """The URL's query as a dict; unknown or repeated keys are refused with the known ones."""
    query = parse_qs(urlsplit(url).query, keep_blank_values=True, strict_parsing=False)
    options: dict[str, str] = {}
    for key, values in query.items():
        if key not in known:
            listed = ", ".join(f"{k} ({v})" for k, v in known.items())
            raise TransportError(f"{url}: unknown option {key!r}; known options: {listed}")
        if len(values) != 1:
            raise TransportError(f"{url}: option {key!r} given {len(values)} times")
        options[key] = values[0]
    return options


def number_option(url: str, options: dict[str, str], key: str, default: float) -> float:
    """A non-negative number option, refused (not guessed) when malformed."""
    raw = options.get(key)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise TransportError(f"{url}: option {key}={raw!r} is not a number") from None
    if not value >= 0:
        raise TransportError(f"{url}: option {key}={raw!r} must be zero or more")
    return value


LATE_TURN_S = 0.05
"""After a write's deadline, how long a write already done (but not yet seen) may take to be
seen: one turn of the event loop."""


class FramedStreamTransport(ABC):
    """Shared half of `SerialTransport` and `TcpTransport`; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout_s: float,
        write_timeout_s: float,
        min_gap_s: float,
        max_queued: int = 1024,
    ) -> None:
        self.url = url
        self.connect_timeout_s = connect_timeout_s
        self.write_timeout_s = write_timeout_s
        self.min_gap_s = min_gap_s
        self._deframer = Deframer()
        self._inbox = Inbox(max_queued)
        self._send_lock = asyncio.Lock()
        self._last_write = 0.0
        self._state = "new"  # new -> open -> closed
        self._closed_reason = ""
        self._logged_bad = 0
        self._background: asyncio.Task[None] | None = None

    @property
    def dropped_payloads(self) -> int:
        """Payloads discarded because nobody consumed `payloads()` fast enough."""
        return self._inbox.dropped

    @property
    def mtu(self) -> int:
        return MAX_PAYLOAD

    @property
    def is_open(self) -> bool:
        return self._state == "open"

    @property
    def bad_frames(self) -> int:
        """Frames dropped for a bad CRC, bad COBS, or oversize, since connect."""
        return self._deframer.error_count

    # ---------------------------------------------------------- for subclasses

    @abstractmethod
    async def _open(self) -> None:
        """Open the stream and start delivering bytes; raise `TransportError` with advice."""

    @abstractmethod
    async def _write(self, data: bytes) -> None:
        """Write all of `data`; raise any exception when the stream is gone."""

    @abstractmethod
    async def _close_io(self) -> None:
        """Release the stream; may raise, the caller swallows it."""

    def _on_data(self, data: bytes) -> None:
        if self._state != "open":
            return
        for payload in self._deframer.feed(data):
            self._inbox.put(payload)
        for error in self._deframer.drain_errors():
            self._logged_bad += 1
            level = logging.WARNING if self._logged_bad <= MAX_LOGGED_BAD_FRAMES else logging.DEBUG
            log.log(level, "%s: dropped a bad frame: %s", self.url, error)
            if self._logged_bad == MAX_LOGGED_BAD_FRAMES:
                log.warning("%s: further bad frames are logged at DEBUG", self.url)

    def _on_lost(self, reason: str) -> None:
        """The stream ended under us; wake readers, release the stream in the background."""
        if self._state != "open":
            return
        log.warning("%s: link lost: %s", self.url, reason)
        self._mark_closed(f"link lost: {reason}")
        self._background = asyncio.get_running_loop().create_task(self._quiet_close_io())

    # ---------------------------------------------------------- Transport API

    async def connect(self) -> None:
        """Open within `connect_timeout_s`; flushes the peer's deframer with one 0x00."""
        if self._state != "new":
            raise TransportError(f"{self.url}: a transport connects once; make a new one")
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                await self._open()
        except TimeoutError:
            await self._quiet_close_io()
            self._mark_closed("connect timed out")
            raise TransportError(
                f"{self.url}: no connection within {self.connect_timeout_s:g} s"
            ) from None
        except BaseException:
            self._mark_closed("connect failed")
            await self._quiet_close_io()
            raise
        self._state = "open"
        log.info("%s: connected", self.url)
        try:
            await self._paced_write(DELIMITER)
        except TransportClosed as exc:
            raise TransportError(f"{self.url}: link failed right after opening: {exc}") from None

    async def send(self, payload: bytes) -> None:
        """Frame and write one payload, at least `min_gap_s` after the previous one."""
        data = frame(payload)
        await self._paced_write(data)

    async def send_raw(self, data: bytes) -> None:
        """Write bytes exactly as given, framing included: for conformance and fuzz checks."""
        await self._paced_write(data)

    async def payloads(self) -> AsyncIterator[bytes]:
        """Received payloads in order; raises `TransportClosed` once the link is gone."""
        if self._state == "new":
            raise TransportClosed(f"{self.url}: not connected; call connect() first")
        async for payload in self._inbox.drain(self.url):
            yield payload

    async def close(self) -> None:
        """Best effort and idempotent; never raises."""
        if self._state == "closed":
            if self._background is not None:
                await self._background  # a lost link is still being released
            return
        was_open = self._state == "open"
        self._mark_closed("closed by us")
        await self._quiet_close_io()
        if was_open:
            log.info("%s: closed", self.url)

    # ---------------------------------------------------------- internals

    async def _paced_write(self, data: bytes) -> None:
        async with self._send_lock:
            if self._state != "open":
                raise TransportClosed(f"{self.url}: {self._closed_reason or 'not connected'}")
            loop = asyncio.get_running_loop()
            wait = self._last_write + self.min_gap_s - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                await self._write_within(data)
            except TimeoutError:
                reason = f"write stalled for {self.write_timeout_s:g} s"
                self._on_lost(reason)
                raise TransportClosed(f"{self.url}: {reason}") from None
            except Exception as exc:
                self._on_lost(f"write failed: {exc}")
                raise TransportClosed(f"{self.url}: write failed: {exc}") from exc
            self._last_write = loop.time()

    async def _write_within(self, data: bytes) -> None:
        """`_write`, or TimeoutError if it has not finished within the write deadline.

        Our own process may be what stalled (a frozen host, a busy machine): a write that
        finished meanwhile is completed as soon as the loop turns again, after the deadline's
        own wake-up. So a write gets one more turn of the loop before it is called stalled.
        """
        write = asyncio.ensure_future(self._write(data))
        try:
            done, _ = await asyncio.wait([write], timeout=self.write_timeout_s)
            if not done:
                done, _ = await asyncio.wait([write], timeout=LATE_TURN_S)
        except BaseException:
            write.cancel()
            raise
        if not done:
            write.cancel()
            raise TimeoutError
        write.result()  # the write's own error, if it failed

    def _mark_closed(self, reason: str) -> None:
        self._state = "closed"
        self._closed_reason = self._closed_reason or reason
        self._inbox.close(self._closed_reason)

    async def _quiet_close_io(self) -> None:
        try:
            await self._close_io()
        except Exception as exc:  # close never raises; the link is gone either way
            log.debug("%s: error while closing (ignored): %s", self.url, exc)
