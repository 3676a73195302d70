"""Telling the gateways that a participant has withdrawn: one retained MQTT notice.

Topic `<prefix>/study/withdrawn/<ID>`, payload `{"v": 1, "participant": ID, "at": epoch}`,
QoS 1, retained, so a gateway offline today reads it when it next connects. A gateway acts
on it by `Journal.withdraw(ID)`: it deletes the participant's journal rows and queued
records, and refuses their sessions from then on. The notice stays retained: clearing it
would let a gateway that was away the whole time miss it. The participant's study protocol
(`<prefix>/study/participants/<ID>/protocol`, docs/trials.md), if any, is cleared with it:
no schedule or reminder outlives a withdrawal.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from acudevice.bridge.mqtt import BrokerAddress, Credentials
from acudevice.bridge.topics import protocol_topic, withdrawn_topic
from acudevice.store.identity import check_participant
from acudevice.study.notices import publish_retained


def notice(participant: str, at: float | None = None) -> str:
    return json.dumps({"v": 1, "participant": participant, "at": at or time.time()})


async def announce(
    address: BrokerAddress,
    credentials: Credentials,
    prefix: str,
    participant: str,
    *,
    ca_file: Path | None = None,
) -> str:
    """Publish the retained notice; returns its topic. BrokerError if it could not be sent."""
    check_participant(participant)
    topic = withdrawn_topic(prefix, participant)
    await publish_retained(
        address, credentials, f"acudevice-withdraw-{participant}",
        [(topic, notice(participant)), (protocol_topic(prefix, participant), b"")],
        ca_file=ca_file,
    )  # fmt: skip
    return topic
