"""Forgetting a band on the broker: its retained discovery config, availability, state and
trial schedule.

A band taken off a gateway stays in Home Assistant as a phantom for ever: its discovery config
is retained by the broker, and no bridge serves the band any more to take it back. Clearing a
retained message is publishing an empty retained message on its topic; Home Assistant reads an
empty discovery config as "remove this device".

This runs without a bridge (`acudevice bridge --forget BAND`), with the gateway's own broker
credentials: its ACL lets it write exactly these topics. A bridge that still serves the band
announces it again on its next connect, so forget only bands no bridge serves.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from acudevice.bridge.discovery import config_topic, device_id
from acudevice.bridge.mqtt import BrokerAddress, Credentials, MqttClient
from acudevice.bridge.topics import Topics, check_segment

RETAINED_LEAVES = ("availability", "state", "schedule")
"""What a bridge publishes retained for each band, besides its discovery config (`schedule`:
only for a trial participant's band)."""


def retained_topics(topics: Topics, band: str) -> list[str]:
    """Every topic a bridge keeps a retained message on for `band`."""
    check_segment(band, "band")
    discovery = config_topic(topics, device_id(topics, band))
    return [discovery, *(topics.band(band, leaf) for leaf in RETAINED_LEAVES)]


async def forget_bands(
    address: BrokerAddress,
    topics: Topics,
    bands: Sequence[str],
    *,
    credentials: Credentials | None = None,
    ca_file: Path | None = None,
) -> list[str]:
    """Clear every retained message of each band (QoS 1, acknowledged); the topics cleared.

    The client id is the gateway's with a suffix, so a bridge running under the gateway id
    keeps its connection (a broker drops the older of two clients with one id).
    """
    wanted = [topic for band in bands for topic in retained_topics(topics, band)]
    client = MqttClient(
        address,
        client_id=f"{topics.gateway}-forget-{os.getpid()}",
        credentials=credentials or Credentials(),
        ca_file=ca_file,
    )
    async with client.connect() as link:
        for topic in wanted:
            await link.publish(topic, b"", qos=1, retain=True)
    return wanted
