"""A single host's way to a participant's study protocol: read it once from the broker.

A gateway subscribes to its participants' protocols for as long as it runs
(bridge/schedule.py). A participant who runs sessions on one computer instead (`acudevice
run --scheduled`) has no gateway: `acudevice study fetch ID` connects as that host's broker
user (a gateway user in the ACL), reads the retained protocol and the retained withdrawal
notice, and the command keeps the protocol in the journal. Absence cannot be told from a slow
broker, so "nothing there" is decided after `wait_s`; a protocol or a withdrawal notice ends
the wait at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

from acudevice.bridge.centre import read_notice
from acudevice.bridge.mqtt import BrokerAddress, Credentials, MqttClient
from acudevice.bridge.participant_protocol import ParticipantProtocol, decode
from acudevice.bridge.topics import protocol_topic, withdrawn_topic


@dataclass(frozen=True)
class Fetched:
    topic: str
    protocol: ParticipantProtocol | None
    body: bytes
    withdrawn: bool
    """A withdrawal notice for the participant is on the broker (then no protocol is read)."""


async def fetch_protocol(
    address: BrokerAddress,
    credentials: Credentials,
    prefix: str,
    participant: str,
    *,
    ca_file: Path | None = None,
    wait_s: float = 5.0,
) -> Fetched:
    """The participant's retained protocol (None if there is none) and whether they withdrew.
    A malformed protocol raises InputError naming the topic and field; BrokerError if the
    broker cannot be reached."""
    topic = protocol_topic(prefix, participant)
    notice = withdrawn_topic(prefix, participant)
    client = MqttClient(
        address, client_id=f"acudevice-fetch-{participant}", credentials=credentials,
        ca_file=ca_file,
    )  # fmt: skip
    body = b""
    withdrawn = False
    async with client.connect() as link:
        await link.subscribe(notice, qos=1)  # retained messages come in subscription order
        await link.subscribe(topic, qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                async for message in link.messages():
                    if message.topic == notice and message.payload:
                        withdrawn = read_notice(participant, message.payload) is not None
                        if withdrawn:  # their protocol was cleared with it
                            break
                    elif message.topic == topic:
                        body = message.payload
                        break
    return Fetched(topic, decode(body, topic), body, withdrawn)
