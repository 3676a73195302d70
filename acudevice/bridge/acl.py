"""A Mosquitto 2.0 password/ACL example: each gateway writes under its own prefix only.

Users: one per gateway (user name = gateway id = MQTT client id), `homeassistant` (reads
everything, may press stop and estop), `operator` (the only one who may send cmd/start), and
`ingester` (the study centre: reads every gateway's records, writes their acks, the
retained withdrawal notices and the participants' study protocols; docs/study.md,
docs/trials.md). A gateway publishes records only under its own prefix, reads only its own
acks, reads the withdrawal notices, and reads the study protocols: of every participant, or,
given `participants` (gateway -> pseudonyms), of its own only. A protocol carries the
program behind a participant's label, so nobody else may read it: not Home Assistant, not
the operator (a `deny` line under their `read <prefix>/#`: Mosquitto 2.0 refuses a topic
any `deny` line matches, wherever it stands; tests/test_trial_delivery.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from acudevice.bridge.topics import STUDY_LEVEL, check_segment, protocol_topic
from acudevice.errors import InputError, Problem
from acudevice.store.identity import check_participant

_PLAIN = ("stop", "estop", "pause", "resume", "too-strong", "intensity")


def acl_text(
    gateways: list[str],
    prefix: str = "acudevice",
    *,
    ha_user: str = "homeassistant",
    operator: str = "operator",
    ingester: str = "ingester",
    participants: Mapping[str, Sequence[str]] | None = None,
) -> str:
    for gw in gateways:
        check_segment(gw, "gateway")
    for gw, ids in (participants or {}).items():
        if gw not in gateways:
            raise InputError([Problem("participants", gw, "not one of the gateways listed")])
        for participant in ids:
            check_participant(participant)
    for user in (ha_user, operator, ingester):
        check_segment(user, "user")
    lines = [
        f"# Mosquitto acl_file for acudevice (prefix {prefix!r}).",
        "# Gateways write only under their own prefix and read only their own commands.",
    ]
    for gw in gateways:
        lines += [
            "",
            f"user {gw}",
            f"topic write {prefix}/{gw}/#",
            f"topic read {prefix}/{gw}/status",
            f"topic read {prefix}/{gw}/instance",
            f"topic read {prefix}/{gw}/+/cmd/#",
            f"topic read {prefix}/{gw}/records/ack",
            f"topic read {prefix}/study/withdrawn/+",
            *(
                f"topic read {protocol_topic(prefix, p)}"
                for p in (participants[gw] if participants and gw in participants else ["+"])
            ),
            f"topic write homeassistant/device/acudevice_{gw}/#",
            "topic read homeassistant/status",
        ]
    lines += [
        "",
        f"user {ha_user}",
        f"topic read {prefix}/#",
        f"topic deny {prefix}/{STUDY_LEVEL}/participants/#",
        "topic read homeassistant/#",
        "topic write homeassistant/status",
    ]
    lines += [f"topic write {prefix}/+/+/cmd/{verb}" for verb in _PLAIN]
    lines += ["", f"user {operator}", f"topic read {prefix}/#"]
    lines += [f"topic deny {prefix}/{STUDY_LEVEL}/participants/#"]
    lines += [f"topic write {prefix}/+/+/cmd/{verb}" for verb in (*_PLAIN, "start")]
    lines += [
        "",
        f"user {ingester}",
        f"topic read {prefix}/+/records",
        f"topic write {prefix}/+/records/ack",
        f"topic readwrite {prefix}/study/withdrawn/+",
        f"topic readwrite {protocol_topic(prefix, '+')}",
    ]
    return "\n".join(lines) + "\n"


def passwd_commands(
    gateways: list[str],
    *,
    ha_user: str = "homeassistant",
    operator: str = "operator",
    ingester: str = "ingester",
) -> str:
    users = [*gateways, ha_user, operator, ingester]
    lines = ["# Create the password file (prompts for each password; -c only for the first):"]
    for i, user in enumerate(users):
        lines.append(f"mosquitto_passwd {'-c ' if i == 0 else ''}/etc/mosquitto/passwd {user}")
    lines += [
        "",
        "# mosquitto.conf:",
        "#   listener 8883",
        "#   set_tcp_nodelay true",
        "#   cafile /etc/mosquitto/ca.crt",
        "#   certfile /etc/mosquitto/server.crt",
        "#   keyfile /etc/mosquitto/server.key",
        "#   allow_anonymous false",
        "#   password_file /etc/mosquitto/passwd",
        "#   acl_file /etc/mosquitto/acl",
        "#   set_tcp_nodelay true",
    ]
    return "\n".join(lines) + "\n"
