"""One bridge per gateway id: a second one is refused, never left to flap.

Two bridges with the same gateway id (the default is the host name: two Raspberry Pis from
one image) share an MQTT client id, and the broker hands the connection to whichever
connected last, for ever. So each bridge says who it is in a retained `<p>/<gw>/instance`
beside the retained `status`, and before taking the client id (at start and after every
drop) looks, under a probe id of its own: `online` with another instance means the id is
taken, and this bridge stops with one line saying so. Two started at the same moment both
get through once; the one the broker then drops sees the other on its next look.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from acudevice.bridge.mqtt import BrokerAddress, BrokerRefused, Credentials, MqttClient
from acudevice.bridge.topics import Topics

LOOK_S = 1.0
"""How long to wait for the retained status and instance (they arrive right after SUBACK)."""


class GatewayTaken(BrokerRefused):
    """Another live bridge serves this gateway id: retrying cannot help."""


@dataclass(frozen=True)
class Instance:
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    since: float = field(default_factory=time.time)

    def payload(self) -> str:
        return json.dumps(asdict(self))


def instance_topic(topics: Topics) -> str:
    return f"{topics.root}/instance"


async def check_free(
    address: BrokerAddress,
    topics: Topics,
    me: Instance,
    *,
    credentials: Credentials | None = None,
    ca_file: Path | None = None,
) -> None:
    """Raise GatewayTaken if another bridge is online with this gateway id."""
    probe = MqttClient(
        address,
        client_id=f"{topics.gateway}-probe-{me.id[:8]}",
        credentials=credentials or Credentials(),
        ca_file=ca_file,
    )
    seen: dict[str, bytes] = {}
    wanted = {topics.status, instance_topic(topics)}
    async with probe.connect() as link:
        for topic in wanted:
            await link.subscribe(topic, qos=1)
        try:
            async with asyncio.timeout(LOOK_S):
                async for message in link.messages():
                    if message.retain and message.topic in wanted:
                        seen[message.topic] = message.payload
                        if set(seen) == wanted:
                            break
        except TimeoutError:
            pass  # nothing retained: no bridge has served this id yet
    if seen.get(topics.status) != b"online":
        return
    try:
        other = json.loads(seen.get(instance_topic(topics), b"{}"))
    except ValueError:
        other = {}
    if not isinstance(other, dict) or other.get("id") == me.id:
        return
    started = other.get("since")
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(started)) if started else "?"
    raise GatewayTaken(
        f"gateway id {topics.gateway!r} is already served by another bridge "
        f"(host {other.get('host', '?')}, pid {other.get('pid', '?')}, since {when}); "
        "give this bridge its own --gateway (stopping so the two do not take the broker "
        "connection from each other)"
    )
