"""Bridge settings: `bridge.toml` in the user config dir, with command-line flags on top.

broker = "mqtts://broker.example:8883"
ca = "/etc/acudevice/ca.pem"
username = "gw-kitchen"
password_file = "/etc/acudevice/mqtt-password"
gateway = "gw-kitchen"
devices = ["left=sim://?seed=1", "tcp://127.0.0.1:7000"]
allow_remote_start = false
ha_discovery = true
"""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from acudevice.bridge.gateway import BridgeOptions
from acudevice.bridge.mqtt import BrokerAddress, Credentials
from acudevice.bridge.topics import band_id_for, check_segment
from acudevice.device.addresses import open_device_transport
from acudevice.errors import AcuDeviceError, InputError, Problem
from acudevice.files import problems_from_validation, read_toml
from acudevice.paths import user_config_dir
from acudevice.safety.profile import HealthProfile
from acudevice.transport import TransportError

MAX_PASSWORD_FILE = 4096
MAX_FLEET = 5000
MIN_BATCH_WINDOW_MS = 10
MAX_BATCH_WINDOW_MS = 10_000


class BridgeFile(BaseModel):
    """What bridge.toml may hold; every key is also a flag."""

    model_config = ConfigDict(extra="forbid", strict=True)

    broker: str | None = None
    ca: str | None = None
    username: str | None = None
    password_file: str | None = None
    gateway: str | None = None
    devices: list[str] = Field(default_factory=list)
    prefix: str | None = None
    allow_remote_start: bool | None = None
    ha_discovery: bool | None = None
    telemetry_hz: float | None = Field(default=None, gt=0, le=10)
    batch_window_ms: int | None = Field(default=None, ge=0, le=MAX_BATCH_WINDOW_MS)
    broker_grace_s: float | None = Field(default=None, gt=0, le=3600)
    remote_max_s: float | None = Field(default=None, gt=0, le=24 * 3600)
    sim_fleet: int | None = Field(default=None, ge=0, le=MAX_FLEET)


def default_config_path() -> Path:
    return user_config_dir() / "bridge.toml"


def load_file(path: Path | None) -> BridgeFile:
    """The named file (must exist), or the default one if present, or nothing."""
    if path is None:
        path = default_config_path()
        if not path.is_file():
            return BridgeFile()
    data = read_toml(path)
    try:
        return BridgeFile.model_validate(data)
    except ValidationError as exc:
        raise InputError(problems_from_validation(str(path), exc)) from None


def read_password(path: Path) -> str:
    """The first line of a small regular file: passwords never go on the command line."""
    try:
        if not path.is_file():
            raise InputError([Problem(str(path), "", "not a regular file")])
        if path.stat().st_size > MAX_PASSWORD_FILE:
            raise InputError(
                [
                    Problem(
                        str(path),
                        "",
                        f"larger than {MAX_PASSWORD_FILE} bytes; is this a password file?",
                    )
                ]
            )
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError([Problem(str(path), "", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise InputError([Problem(str(path), "", "not UTF-8 text")]) from None
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise InputError([Problem(str(path), "", "empty: the password is the first line")])
    return lines[0]


def parse_devices(specs: list[str], source: str) -> dict[str, str]:
    """`URL`, `alias` or `ID=URL`; ids must be unique and fit in a topic level."""
    bands: dict[str, str] = {}
    for spec in specs:
        band, sep, url = spec.partition("=")
        if not sep or "://" in band:
            band, url = band_id_for(spec), spec
        check_segment(band, f"{source} {spec!r}: band id")
        try:  # a URL that can never work fails now, in one line, not in a retry loop
            open_device_transport(url)
        except (TransportError, AcuDeviceError) as exc:
            raise InputError([Problem(source, "", f"{spec!r}: {exc}")]) from None
        if band in bands:
            raise InputError(
                [
                    Problem(
                        source,
                        "",
                        f"two devices would both be band {band!r}; name them with ID=URL",
                    )
                ]
            )
        bands[band] = url
    return bands


def fleet(count: int, speed: int) -> dict[str, str]:
    """N in-process simulated bands: sim-0001..., each with its own seed."""
    if not 0 <= count <= MAX_FLEET:
        raise InputError([Problem("--sim-fleet", "", f"must be 0..{MAX_FLEET}, got {count}")])
    return {f"sim-{i:04d}": f"sim://?seed={i}&speed={speed}" for i in range(1, count + 1)}


def build_options(
    file: BridgeFile,
    *,
    broker: str | None,
    ca: Path | None,
    username: str | None,
    password_file: Path | None,
    gateway: str | None,
    devices: list[str],
    prefix: str | None,
    allow_remote_start: bool,
    ha_discovery: bool,
    telemetry_hz: float | None,
    broker_grace_s: float | None,
    remote_max_s: float | None,
    sim_fleet: int | None,
    sim_speed: int,
    profile: HealthProfile,
    batch_window_ms: int | None = None,
) -> BridgeOptions:
    url = broker or file.broker
    if url is None:
        raise InputError(
            [
                Problem(
                    "--broker",
                    "",
                    "no broker: pass --broker mqtt://HOST:PORT or set broker in bridge.toml",
                )
            ]
        )
    address = BrokerAddress.parse(url)
    ca_path = ca or (Path(file.ca) if file.ca else None)
    if ca_path is not None and not address.tls:
        raise InputError([Problem("--ca", "", "a CA file is for mqtts:// brokers")])
    if ca_path is not None and not ca_path.is_file():
        raise InputError([Problem(str(ca_path), "", "CA file not found")])
    pw_path = password_file or (Path(file.password_file) if file.password_file else None)
    password = read_password(pw_path) if pw_path else None
    gw = gateway or file.gateway or socket.gethostname().split(".")[0]
    bands = parse_devices(devices or file.devices, "--device")
    for band, sim_url in fleet(
        sim_fleet if sim_fleet is not None else file.sim_fleet or 0, sim_speed
    ).items():
        if band in bands:
            raise InputError([Problem("--sim-fleet", "", f"band {band!r} is also a --device")])
        bands[band] = sim_url
    if not bands:
        raise InputError(
            [Problem("--device", "", "no bands: pass --device URL (repeatable) or --sim-fleet N")]
        )
    for name, value in (
        ("--telemetry-hz", telemetry_hz),
        ("--broker-grace", broker_grace_s),
        ("--remote-max", remote_max_s),
    ):
        if value is not None and value <= 0:
            raise InputError([Problem(name, "", f"must be positive, got {value:g}")])
    if telemetry_hz is not None and telemetry_hz > 10:
        raise InputError([Problem("--telemetry-hz", "", "bands send at most 10 Hz")])
    window_ms = batch_window_ms if batch_window_ms is not None else file.batch_window_ms
    if window_ms is None:
        window_ms = 100
    if window_ms and not MIN_BATCH_WINDOW_MS <= window_ms <= MAX_BATCH_WINDOW_MS:
        raise InputError(
            [
                Problem(
                    "--batch-window-ms",
                    "",
                    f"must be 0 (no batches) or {MIN_BATCH_WINDOW_MS}-{MAX_BATCH_WINDOW_MS}, got {window_ms}",
                )
            ]
        )
    return BridgeOptions(
        broker=address,
        gateway=gw,
        bands=bands,
        prefix=prefix or file.prefix or "acudevice",
        credentials=Credentials(username or file.username, password),
        ca_file=ca_path,
        allow_remote_start=allow_remote_start or bool(file.allow_remote_start),
        ha_discovery=ha_discovery or bool(file.ha_discovery),
        telemetry_hz=telemetry_hz or file.telemetry_hz or 1.0,
        batch_window_ms=window_ms,
        broker_grace_s=broker_grace_s or file.broker_grace_s or 10.0,
        remote_max_s=remote_max_s or file.remote_max_s or 3600.0,
        profile=profile,
    )
