"""A Mosquitto 2.0 password/ACL example: each gateway writes under its own prefix only.

Users: one per gateway (user name = gateway id = MQTT client id), `homeassistant` (reads
everything, may press stop and estop), and `operator` (the only one who may send cmd/start).
"""

from __future__ import annotations

from acudevice.bridge.topics import check_segment

_PLAIN = ("stop", "estop", "pause", "resume", "too-strong", "intensity")


def acl_text(
    gateways: list[str],
    prefix: str = "acudevice",
    *,
    ha_user: str = "homeassistant",
    operator: str = "operator",
) -> str:
    for gw in gateways:
        check_segment(gw, "gateway")
    for user in (ha_user, operator):
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
            f"topic read {prefix}/{gw}/+/cmd/#",
            f"topic write homeassistant/device/acudevice_{gw}/#",
            "topic read homeassistant/status",
        ]
    lines += [
        "",
        f"user {ha_user}",
        f"topic read {prefix}/#",
        "topic read homeassistant/#",
        "topic write homeassistant/status",
    ]
    lines += [f"topic write {prefix}/+/+/cmd/{verb}" for verb in _PLAIN]
    lines += ["", f"user {operator}", f"topic read {prefix}/#"]
    lines += [f"topic write {prefix}/+/+/cmd/{verb}" for verb in (*_PLAIN, "start")]
    return "\n".join(lines) + "\n"


def passwd_commands(
    gateways: list[str], *, ha_user: str = "homeassistant", operator: str = "operator"
) -> str:
    users = [*gateways, ha_user, operator]
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
    ]
    return "\n".join(lines) + "\n"
