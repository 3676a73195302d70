"""The centre's retained messages to gateways: withdrawal notices and participants' protocols.

Each is published QoS 1 and retained, so a gateway offline today reads it when it next
connects. A participant's protocol (topics.protocol_topic; the payload is
bridge/participant_protocol.py) is delivered after the enrolment commits; publishing it again
replaces it, and an empty one clears it (on withdrawal).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from acudevice.bridge.mqtt import BrokerAddress, Credentials, MqttClient
from acudevice.bridge.participant_protocol import ParticipantProtocol, encode
from acudevice.bridge.topics import protocol_topic


async def publish_retained(
    address: BrokerAddress,
    credentials: Credentials,
    client_id: str,
    messages: Sequence[tuple[str, str | bytes]],
    *,
    ca_file: Path | None = None,
) -> None:
    """Publish every (topic, payload), retained, QoS 1; BrokerError if it could not be sent."""
    client = MqttClient(address, client_id=client_id, credentials=credentials, ca_file=ca_file)
    async with client.connect() as link:
        for topic, payload in messages:
            await link.publish(topic, payload, qos=1, retain=True)


async def deliver(
    address: BrokerAddress,
    credentials: Credentials,
    prefix: str,
    protocol: ParticipantProtocol,
    *,
    ca_file: Path | None = None,
) -> str:
    """Publish a participant's protocol for their gateway; returns its topic."""
    topic = protocol_topic(prefix, protocol.participant)
    await publish_retained(
        address, credentials, f"acudevice-enrol-{protocol.participant}",
        [(topic, encode(protocol))], ca_file=ca_file,
    )  # fmt: skip
    return topic
