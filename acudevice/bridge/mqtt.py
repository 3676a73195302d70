"""The one place acudevice touches aiomqtt 2.x: connect, publish, subscribe, receive.

aiomqtt 3 is a rewrite (MQTT 5 only, new API), so the client stays behind this module: a move
to 3.x, or to another client, changes this file only. aiomqtt is imported inside `connect`,
never at module level, so `acudevice --help` does not pay for it.

Two ways out: `publish` awaits aiomqtt's confirmation (for QoS 1, the broker's PUBACK), and
`publish_nowait` hands a QoS 0 message to paho and returns at once. aiomqtt 2.5 awaits
paho's "published" callback even for QoS 0: an event-loop round trip and ~70 µs of CPU per
message, where paho needs ~8.5 µs. aiomqtt offers no way around it, so `publish_nowait`
calls the paho client aiomqtt keeps in `Client._client`; `paho_client` checks that it is
still there (tests/test_bridge_publishing.py fails loudly when an aiomqtt release moves it,
and pyproject pins both releases).
"""

from __future__ import annotations

import contextlib
import math
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from acudevice.errors import AcuDeviceError, InputError, Problem

INCOMING_QUEUE = 1000
"""Bound on messages waiting for us (aiomqtt #108, #250): past it the client drops, not grows."""
_REFUSED_CODES = {4, 5, 134, 135}  # bad user name or password / not authorised (3.1.1 and 5)
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

    def __init__(self, client: Any) -> None:
        self._client = client
        self._paho = paho_client(client)

    def publish_nowait(self, topic: str, payload: str | bytes, *, retain: bool = False) -> Handed:
        """Hand a QoS 0 message to the client without waiting for it to be written.

        paho queues it and writes it when the socket is ready (the event loop's writer);
        the returned handle says when that happened. Raises BrokerError when paho refuses
        (the connection is gone)."""
        info = self._paho.publish(topic, payload, 0, retain)
        if info.rc != 0:
            raise BrokerError(f"could not publish on {topic}: paho error {info.rc}")
        return info  # type: ignore[no-any-return]

    def raw_socket(self) -> socket.socket | None:
        """The connection's socket (TLS or plain), to read its options; None once closed."""
        sock = self._paho.socket()
        return sock if isinstance(sock, socket.socket) else None

    async def publish(
        self, topic: str, payload: str | bytes, *, qos: int = 0, retain: bool = False
    ) -> None:
        # No deadline of aiomqtt's own: it costs a task per message, and the bridge cancels
        # its writers when the connection drops, so nothing waits forever.
        with _translated():
            await self._client.publish(topic, payload, qos=qos, retain=retain, timeout=math.inf)

    async def subscribe(self, topic: str, *, qos: int = 1) -> None:
        with _translated():
            await self._client.subscribe(topic, qos=qos)

    async def messages(self) -> AsyncIterator[Inbound]:
        with _translated():
            async for message in self._client.messages:
                payload = message.payload
                if isinstance(payload, str):
                    payload = payload.encode()
                elif not isinstance(payload, bytes | bytearray):
                    payload = b"" if payload is None else str(payload).encode()
                yield Inbound(str(message.topic), bytes(payload), bool(message.retain))


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
    ) -> None:
        self.address = address
        self.client_id = client_id
        self.credentials = credentials
        self.will = will
        self.ca_file = ca_file
        self.timeout_s = timeout_s
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
            max_queued_incoming_messages=INCOMING_QUEUE,
            socket_options=[NO_DELAY],  # set on paho's socket (TLS too) once connected
        )

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[MqttLink]:
        """Connect (raising BrokerRefused or BrokerError), yield the link, disconnect cleanly."""
        if self._client is None:
            self._client = self._build()  # needs the running loop, so not in __init__
        with _translated():
            async with self._client:
                yield MqttLink(self._client)


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
