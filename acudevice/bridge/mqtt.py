"""The one place acudevice touches aiomqtt 2.x: connect, publish, subscribe, receive.

aiomqtt 3 is a rewrite (MQTT 5 only, new API), so the client stays behind this module: a move
to 3.x, or to another client, changes this file only. aiomqtt is imported inside `connect`,
never at module level, so `acudevice --help` does not pay for it.

Publishing goes to paho directly, not through aiomqtt's `publish`: aiomqtt 2.5 awaits paho's
"published" callback for every message, QoS 0 included (an event-loop round trip and ~70 µs
of CPU per message, where paho needs ~8.5 µs). `publish_nowait` hands a QoS 0 message to paho
and returns; `publish` (QoS 1) awaits the broker's PUBACK. paho builds a ReasonCode and a
Properties object for every QoS 0 message it writes while an `on_publish` callback is set
(~20 µs), so the link sets its own callback only while a QoS 1 message awaits its PUBACK.
Both rely on the paho client aiomqtt keeps in `Client._client`: `paho_client` checks that it
is still there (tests/test_bridge_publishing.py fails loudly when an aiomqtt release moves
it, and pyproject pins both releases). aiomqtt still connects, subscribes and receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from acudevice.bridge.incoming import IncomingQueue
from acudevice.errors import AcuDeviceError, InputError, Problem

_REFUSED_CODES = {4, 5, 134, 135}  # bad user name or password / not authorised (3.1.1 and 5)
INFLIGHT = 1000
"""QoS 1 messages sent and not yet acknowledged (paho's default, 20, holds back the rest: a
gateway announcing a thousand bands would wait twenty at a time for the broker)."""
NO_DELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
"""Small messages go out at once: paho never sets TCP_NODELAY, and without it a write can
wait on the broker's delayed acknowledgement, a 40 ms floor on the latency tail."""


class BrokerError(AcuDeviceError):
    """The broker could not be reached or the connection to it was lost."""


class BrokerRefused(BrokerError):
    """The broker refused our credentials: retrying with the same ones cannot help."""


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str, source: str = "--broker") -> BrokerAddress:
        """`mqtt://HOST[:PORT]` (1883) or `mqtts://HOST[:PORT]` (8883)."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise InputError(
                [Problem(source, "", f"{url!r} is not mqtt://HOST:PORT or mqtts://HOST:PORT")]
            )
        if parts.path not in ("", "/") or parts.query or parts.username:
            raise InputError(
                [
                    Problem(
                        source,
                        "",
                        f"{url!r}: only a host and a port (credentials go in --username and --password-file)",
                    )
                ]
            )
        try:
            port = parts.port
        except ValueError:
            raise InputError(
                [Problem(source, "", f"{url!r}: the port is not a number 1-65535")]
            ) from None
        tls = parts.scheme == "mqtts"
        return cls(parts.hostname, port or (8883 if tls else 1883), tls)

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


@dataclass(frozen=True)
class Will:
    topic: str
    payload: str
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True)
class Credentials:
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class Inbound:
    topic: str
    payload: bytes
    retain: bool


class Handed(Protocol):
    """A message handed to the client: `is_published()` once written (QoS 0) or acknowledged."""

    mid: int

    def is_published(self) -> bool: ...


def paho_client(client: Any) -> Any:
    """The paho client inside an aiomqtt 2.x `Client`; BrokerError if a release moved it."""
    from paho.mqtt.client import Client as PahoClient

    paho = getattr(client, "_client", None)
    if not isinstance(paho, PahoClient):
        raise BrokerError(
            "aiomqtt no longer keeps its paho client in Client._client: "
            "acudevice/bridge/mqtt.py needs updating for this aiomqtt release"
        )
    return paho


class MqttLink:
    """One live connection: publish, subscribe and read messages; errors become BrokerError."""

    def __init__(self, client: Any, incoming: IncomingQueue) -> None:
        self._client = client
        self._incoming = incoming
        self._paho = paho_client(client)
        self._paho.on_publish = None  # aiomqtt's; set again only while a PUBACK is awaited
        self._closed = False
        self._poll: select.poll | None = None
        self._confirming: dict[int, list[tuple[Handed, asyncio.Future[None]]]] = {}

    def publish_nowait(
        self, topic: str, payload: str | bytes, *, qos: int = 0, retain: bool = False
    ) -> Handed:
        """Hand a message to the client without waiting for it to be written or acknowledged.

        paho queues it and writes it when the socket is ready (the event loop's writer),
        and keeps a QoS 1 message until the broker acknowledges it; the returned handle says
        when that happened. Raises BrokerError when paho refuses (the connection is gone)."""
        info = self._paho.publish(topic, payload, qos, retain)
        if info.rc != 0:
            raise BrokerError(f"could not publish on {topic}: paho error {info.rc}")
        return info  # type: ignore[no-any-return]

    def raw_socket(self) -> socket.socket | None:
        """The connection's socket (TLS or plain), to read its options; None once closed."""
        sock = self._paho.socket()
        return sock if isinstance(sock, socket.socket) else None

    def writable(self) -> bool:
        """Can the socket take more bytes now? False when the broker or the network is not
        keeping up (the kernel's send buffer is full), as opposed to the client merely not
        having had its turn of the event loop yet to write what it holds."""
        if self._poll is None:
            sock = self.raw_socket()
            if sock is None:
                return False
            self._poll = select.poll()
            self._poll.register(sock.fileno(), select.POLLOUT)
        return bool(self._poll.poll(0))

    async def publish(
        self, topic: str, payload: str | bytes, *, qos: int = 0, retain: bool = False
    ) -> None:
        """QoS 0: handed to the client. QoS 1 and 2: returns once the broker confirmed it.

        No deadline: the bridge cancels its writers when the connection drops."""
        handed = self.publish_nowait(topic, payload, qos=qos, retain=retain)
        if qos:
            await self.confirmed(handed)

    async def confirmed(self, handed: Handed) -> None:
        """Once the broker acknowledged a QoS 1 message handed to the client; BrokerError if
        this connection ends first (the client sends it again on the next one)."""
        if handed.is_published():
            return
        if self._closed:
            raise BrokerError("the connection to the broker was lost")
        mid = handed.mid
        self._paho.on_publish = self._on_publish
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._confirming.setdefault(mid, [])
        waiters.append((handed, done))
        try:
            await done
        finally:
            waiters.remove((handed, done))
            if not waiters and self._confirming.get(mid) is waiters:
                del self._confirming[mid]
            if not self._confirming:
                self._paho.on_publish = None

    def _on_publish(self, _client: Any, _userdata: Any, mid: int, *_reason: Any) -> None:
        # paho marks the message published just after this returns: look at it then. A QoS 0
        # message written meanwhile may reuse the mid (after 65,535 messages): is_published
        # tells the two apart.
        if mid in self._confirming:
            asyncio.get_running_loop().call_soon(self._confirmed, mid)

    def _confirmed(self, mid: int) -> None:
        for handed, done in self._confirming.get(mid, []):
            if handed.is_published() and not done.done():
                done.set_result(None)

    def close(self) -> None:
        """The connection ended: whoever awaits an acknowledgement hears so."""
        self._closed = True
        for waiters in self._confirming.values():
            for _, done in waiters:
                if not done.done():
                    done.set_exception(BrokerError("the connection to the broker was lost"))

    async def subscribe(self, topic: str, *, qos: int = 1) -> None:
        with _translated():
            await self._client.subscribe(topic, qos=qos)

    async def messages(self) -> AsyncIterator[Inbound]:
        """Messages as they come (stop and estop ahead of the rest); raises BrokerError when
        the connection drops. aiomqtt's iterator waits for the first of a burst (and for a
        disconnect); the rest of the burst is taken at once."""
        with _translated():
            async for first in self._client.messages:
                for message in [first, *self._incoming.take_waiting()]:
                    yield _inbound(message)


def _inbound(message: Any) -> Inbound:
    payload = message.payload
    if isinstance(payload, str):
        payload = payload.encode()
    elif not isinstance(payload, bytes | bytearray):
        payload = b"" if payload is None else str(payload).encode()
    return Inbound(str(message.topic), bytes(payload), bool(message.retain))


class MqttClient:
    """One client for the life of the bridge, connected again and again (aiomqtt's own pattern)."""

    def __init__(
        self,
        address: BrokerAddress,
        *,
        client_id: str,
        credentials: Credentials = Credentials(),
        will: Will | None = None,
        ca_file: Path | None = None,
        timeout_s: float = 10.0,
        precious: Callable[[str], bool] = lambda _topic: False,
    ) -> None:
        """`precious(topic)`: messages read before any other, never dropped for another
        when the incoming queue is full (the bridge's stop and estop)."""
        self.address = address
        self.client_id = client_id
        self.credentials = credentials
        self.will = will
        self.ca_file = ca_file
        self.timeout_s = timeout_s
        self.incoming = IncomingQueue(precious=lambda message: precious(str(message.topic)))
        self._client: Any = None

    def _build(self) -> Any:
        import aiomqtt  # here, not at the top: the CLI must start without it

        tls_context = None
        if self.address.tls:
            tls_context = ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file else None
            )
        will = None
        if self.will is not None:
            w = self.will
            will = aiomqtt.Will(w.topic, w.payload, qos=w.qos, retain=w.retain)
        return aiomqtt.Client(
            self.address.host,
            self.address.port,
            identifier=self.client_id,
            username=self.credentials.username,
            password=self.credentials.password,
            will=will,
            clean_session=True,  # commands sent while we were away are never replayed
            tls_context=tls_context,
            timeout=self.timeout_s,
            keepalive=10,
            # aiomqtt calls queue_type(maxsize=...) once: any callable does; ours bounds itself.
            queue_type=lambda maxsize: self.incoming,  # type: ignore[arg-type]
            max_inflight_messages=INFLIGHT,
            socket_options=[NO_DELAY],  # set on paho's socket (TLS too) once connected
        )

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[MqttLink]:
        """Connect (raising BrokerRefused or BrokerError), yield the link, disconnect cleanly."""
        if self._client is None:
            self._client = self._build()  # needs the running loop, so not in __init__
        with _translated():
            async with self._client:
                link = MqttLink(self._client, self.incoming)
                try:
                    yield link
                finally:
                    link.close()


@contextlib.contextmanager
def _translated() -> Any:
    import aiomqtt
    from aiomqtt.exceptions import MqttConnectError

    try:
        yield
    except MqttConnectError as exc:
        code = getattr(exc.rc, "value", exc.rc)
        if isinstance(code, int) and code in _REFUSED_CODES:
            raise BrokerRefused(f"the broker refused the connection: {exc}") from None
        raise BrokerError(str(exc)) from None
    except aiomqtt.MqttError as exc:
        raise BrokerError(str(exc) or type(exc).__name__) from None
