"""Home Assistant device-based discovery: one retained config per band, one for the gateway.

Each band is a device `via_device` the gateway, available only when both the gateway and the
band are online (`availability_mode: all`). The program select (which starts a session) is
announced only when remote start is enabled on this gateway, and offers only the programs the
band can run: pressure programs on a pressure band, vibration programs on a vibration pad.

A band whose participant is in a trial (`scheduled`: their label) offers nothing else: its
select lists the label alone, and with a "Start <label>" button sends `cmd/start-scheduled`;
a "Session due" binary sensor follows the band's `schedule` topic (bridge/reminding.py), on
while a session is due, with the window as its attributes, for a notification automation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from acudevice import __version__
from acudevice.bridge.topics import Topics

DISCOVERY_PREFIX = "homeassistant"
START_TEMPLATE = (
    '{"program": "{{ value }}", "issued_at": {{ now().timestamp() }}, '
    '"request_id": "ha-{{ (now().timestamp() * 1000) | int }}"}'
)


SCHEDULED_TEMPLATE = (
    '{"issued_at": {{ now().timestamp() }}, '
    '"request_id": "ha-{{ (now().timestamp() * 1000) | int }}"}'
)


INTENSITY_TEMPLATE = (
    '{"percent": {{ value | int }}, "request_id": "ha-{{ (now().timestamp() * 1000) | int }}"}'
)


def device_id(topics: Topics, band: str | None = None) -> str:
    base = f"acudevice_{topics.gateway}"
    return f"{base}_{band}" if band else base


def config_topic(topics: Topics, object_id: str) -> str:
    """`homeassistant/device/<node_id>/<object_id>/config`, node_id the gateway's device id,
    so a broker ACL can give each gateway its own discovery subtree."""
    return f"{DISCOVERY_PREFIX}/device/{device_id(topics)}/{object_id}/config"


def offered_programs(programs: Mapping[str, str], actuator: str | None) -> list[str]:
    """The program names (from name -> actuator) a band with `actuator` can run, sorted.

    None until the band has said what it is: a start offered before then could be a vibration
    program on a pressure band, which screening would refuse anyway.
    """
    if actuator is None:
        return []
    return sorted(name for name, needs in programs.items() if needs == actuator)


def _scheduled(
    topics: Topics, band: str, uid: str, label: str, remote_start: bool
) -> dict[str, dict[str, Any]]:
    """A trial's band: whether a session is due, and (with remote start) the one to start."""
    schedule = topics.band(band, "schedule")
    found: dict[str, dict[str, Any]] = {
        f"{uid}_session_due": {
            "platform": "binary_sensor",
            "unique_id": f"{uid}_session_due",
            "name": "Session due",
            "state_topic": schedule,
            "value_template": "{{ 'ON' if value_json.due else 'OFF' }}",
            "json_attributes_topic": schedule,
        }
    }
    if remote_start:
        start = {
            "command_topic": topics.command(band, "start-scheduled"),
            "command_template": SCHEDULED_TEMPLATE,
            "qos": 1,
            "retain": False,
        }
        found[f"{uid}_program"] = {
            "platform": "select",
            "unique_id": f"{uid}_program",
            "name": "Start program",
            "options": [label],
            "optimistic": True,
            **start,
        }
        found[f"{uid}_start_scheduled"] = {
            "platform": "button",
            "unique_id": f"{uid}_start_scheduled",
            "name": f"Start {label}",
            **start,
        }
    return found


def _origin() -> dict[str, str]:
    return {"name": "acudevice", "sw_version": __version__}


def gateway_config(topics: Topics) -> tuple[str, str]:
    gid = device_id(topics)
    payload = {
        "device": {
            "identifiers": [gid],
            "name": f"acudevice gateway {topics.gateway}",
            "manufacturer": "acudevice",
            "model": "gateway",
            "sw_version": __version__,
        },
        "origin": _origin(),
        "components": {
            f"{gid}_online": {
                "platform": "binary_sensor",
                "unique_id": f"{gid}_online",
                "name": "Online",
                "device_class": "connectivity",
                "state_topic": topics.status,
                "payload_on": "online",
                "payload_off": "offline",
            }
        },
    }
    return config_topic(topics, gid), json.dumps(payload)


def band_config(
    topics: Topics,
    band: str,
    *,
    model: str | None,
    actuator: str | None,
    programs: Mapping[str, str] | None,
    scheduled: str | None = None,
) -> tuple[str, str]:
    """(topic, payload); `programs` (name -> actuator) is None unless remote start is enabled;
    `scheduled`: the label of the band's participant's scheduled session, if in a trial."""
    uid = device_id(topics, band)
    state = topics.band(band, "state")
    components: dict[str, dict[str, Any]] = {}
    if actuator != "vibration":
        components[f"{uid}_pressure"] = {
            "platform": "sensor",
            "unique_id": f"{uid}_pressure",
            "name": "Pressure",
            "state_topic": state,
            "device_class": "pressure",
            "unit_of_measurement": "kPa",
            "state_class": "measurement",
            "suggested_display_precision": 1,
            "value_template": "{{ value_json.measured }}",
        }
    else:
        components[f"{uid}_intensity"] = {
            "platform": "sensor",
            "unique_id": f"{uid}_intensity",
            "name": "Intensity",
            "state_topic": state,
            "state_class": "measurement",
            "value_template": "{{ value_json.measured }}",
        }
    components[f"{uid}_battery"] = {
        "platform": "sensor",
        "unique_id": f"{uid}_battery",
        "name": "Battery",
        "state_topic": state,
        "device_class": "battery",
        "unit_of_measurement": "%",
        "state_class": "measurement",
        "value_template": "{{ value_json.battery_percent }}",
    }
    components[f"{uid}_running"] = {
        "platform": "binary_sensor",
        "unique_id": f"{uid}_running",
        "name": "Running",
        "state_topic": state,
        "device_class": "running",
        "value_template": "{{ 'ON' if value_json.session in ('running', 'paused') else 'OFF' }}",
    }
    components[f"{uid}_stop"] = {
        "platform": "button",
        "unique_id": f"{uid}_stop",
        "name": "Stop",
        "command_topic": topics.command(band, "stop"),
        "payload_press": "{}",
        "qos": 1,
        "retain": False,
    }
    components[f"{uid}_intensity_level"] = {
        "platform": "number",
        "unique_id": f"{uid}_intensity_level",
        "name": "Intensity",
        "state_topic": state,
        "value_template": "{{ value_json.intensity_percent if value_json.intensity_percent is not none else 'None' }}",
        "command_topic": topics.command(band, "intensity"),
        "command_template": INTENSITY_TEMPLATE,
        "unit_of_measurement": "%",
        "min": 10,
        "max": 100,
        "step": 5,
        "mode": "slider",
        "qos": 1,
        "retain": False,
    }
    if scheduled is not None:
        components.update(_scheduled(topics, band, uid, scheduled, programs is not None))
    options = offered_programs(programs, actuator) if programs is not None else []
    if options and scheduled is None:
        components[f"{uid}_program"] = {
            "platform": "select",
            "unique_id": f"{uid}_program",
            "name": "Start program",
            "command_topic": topics.command(band, "start"),
            "command_template": START_TEMPLATE,
            "options": options,
            "optimistic": True,
            "qos": 1,
            "retain": False,
        }
    payload = {
        "device": {
            "identifiers": [uid],
            "name": f"acudevice {band}",
            "manufacturer": "acudevice",
            "model": model or "band",
            "via_device": device_id(topics),
        },
        "origin": _origin(),
        "availability": [
            {
                "topic": topics.status,
                "payload_available": "online",
                "payload_not_available": "offline",
            },
            {
                "topic": topics.band(band, "availability"),
                "payload_available": "online",
                "payload_not_available": "offline",
            },
        ],
        "availability_mode": "all",
        "qos": 1,
        "components": components,
    }
    return config_topic(topics, uid), json.dumps(payload)
