"""Bridge settings: `bridge.toml` in the user config dir, with command-line flags on top.

broker = "mqtts://broker.example:8883"
ca = "/etc/acudevice/ca.pem"
username = "gw-kitchen"
password_file = "/etc/acudevice/mqtt-password"
gateway = "gw-kitchen"
devices = ["left=sim://?seed=1", "tcp://127.0.0.1:7000"]
allow_remote_start = false
ha_discovery = true
telemetry_hz = 1            # 0 < Hz <= 10: per-band telemetry (Home Assistant)
batch_window_ms = 100       # 0 (no batches) or 10-10000 ms: <prefix>/<gw>/telemetry
broker_grace_s = 10         # 0 < s <= 3600
remote_max_s = 3600         # 0 < s <= 86400
backoff_initial_s = 1       # 0.1 <= s <= 600, doubling up to
backoff_max_s = 60          # 1 <= s <= 3600

[participants]              # band id = participant pseudonym (a study; docs/study.md)
left = "P017"

[participant_profiles]      # participant = their health profile TOML
P017 = "/etc/acudevice/profiles/P017.toml"

Every number is checked against its range in `acudevice.bridge.ranges` (nan and inf are
refused), as the same flags are.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from acudevice.bridge.gateway import BridgeOptions
from acudevice.bridge.mqtt import BrokerAddress, Credentials
from acudevice.bridge.participants import Participants, assign, load_profiles, split_pairs
from acudevice.bridge.ranges import (
    BACKOFF_INITIAL_S,
    BACKOFF_MAX_S,
    BATCH_WINDOW_MS,
    BROKER_GRACE_S,
    MIN_BATCH_WINDOW_MS,
    REMOTE_MAX_S,
    SIM_FLEET,
    SIM_SPEED,
    TELEMETRY_HZ,
)
from acudevice.bridge.topics import band_id_for, check_segment
from acudevice.device.addresses import open_device_transport
from acudevice.errors import AcuDeviceError, InputError, Problem
from acudevice.files import problems_from_validation, read_toml
from acudevice.numbers import Span, checked
from acudevice.paths import user_config_dir
from acudevice.safety.profile import HealthProfile
from acudevice.transport import TransportError

MAX_PASSWORD_FILE = 4096
MAX_FLEET = round(SIM_FLEET.high)


def _within(span: Span) -> AfterValidator:
    return AfterValidator(span.validate)


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
    telemetry_hz: Annotated[float, _within(TELEMETRY_HZ)] | None = None
    batch_window_ms: Annotated[int, _within(BATCH_WINDOW_MS)] | None = None
    broker_grace_s: Annotated[float, _within(BROKER_GRACE_S)] | None = None
    remote_max_s: Annotated[float, _within(REMOTE_MAX_S)] | None = None
    backoff_initial_s: Annotated[float, _within(BACKOFF_INITIAL_S)] | None = None
    backoff_max_s: Annotated[float, _within(BACKOFF_MAX_S)] | None = None
    sim_fleet: Annotated[int, _within(SIM_FLEET)] | None = None
    participants: dict[str, str] = Field(default_factory=dict)
    """band id -> participant pseudonym."""
    participant_profiles: dict[str, str] = Field(default_factory=dict)
    """participant -> health profile file."""
    _path: str = PrivateAttr(default="bridge.toml")

    @property
    def source(self) -> str:
        """The file these settings came from, for messages."""
        return self._path

    @model_validator(mode="after")
    def _backoff_grows(self) -> BridgeFile:
        first, longest = self.backoff_initial_s, self.backoff_max_s
        if first is not None and longest is not None and longest < first:
            raise ValueError(
                f"backoff_max_s ({longest:g} s) must not be less than backoff_initial_s "
                f"({first:g} s)"
            )
        return self


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
        loaded = BridgeFile.model_validate(data)
    except ValidationError as exc:
        raise InputError(problems_from_validation(str(path), exc, BridgeFile)) from None
    loaded._path = str(path)
    return loaded


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
    SIM_FLEET.check("--sim-fleet", count)
    SIM_SPEED.check("--sim-speed", speed)
    return {f"sim-{i:04d}": f"sim://?seed={i}&speed={speed}" for i in range(1, count + 1)}


@dataclass(frozen=True)
class BrokerSettings:
    """Where and as whom to connect: what a bridge and `--forget` share."""

    address: BrokerAddress
    gateway: str
    prefix: str
    credentials: Credentials
    ca_file: Path | None


def broker_settings(
    file: BridgeFile,
    *,
    broker: str | None,
    ca: Path | None,
    username: str | None,
    password_file: Path | None,
    gateway: str | None,
    prefix: str | None,
) -> BrokerSettings:
    """Flags over bridge.toml over defaults, each checked (a CA needs mqtts://, and so on)."""
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
    return BrokerSettings(
        address=address,
        gateway=gateway or file.gateway or socket.gethostname().split(".")[0],
        prefix=prefix or file.prefix or "acudevice",
        credentials=Credentials(username or file.username, password),
        ca_file=ca_path,
    )


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
    participants: list[str] | None = None,
    participant_profiles: list[str] | None = None,
    batch_window_ms: int | None = None,
) -> BridgeOptions:
    checked("--telemetry-hz", telemetry_hz, TELEMETRY_HZ)
    checked("--broker-grace", broker_grace_s, BROKER_GRACE_S)
    checked("--remote-max", remote_max_s, REMOTE_MAX_S)
    where = broker_settings(
        file,
        broker=broker,
        ca=ca,
        username=username,
        password_file=password_file,
        gateway=gateway,
        prefix=prefix,
    )
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
    window_ms = batch_window_ms if batch_window_ms is not None else file.batch_window_ms
    if window_ms is None:
        window_ms = 100
    checked("--batch-window-ms", window_ms, BATCH_WINDOW_MS)
    if 0 < window_ms < MIN_BATCH_WINDOW_MS:
        raise InputError(
            [
                Problem(
                    "--batch-window-ms",
                    "",
                    f"got {window_ms} ms; must be 0 (no batches) or at least "
                    f"{MIN_BATCH_WINDOW_MS} ms",
                )
            ]
        )
    return BridgeOptions(
        broker=where.address,
        gateway=where.gateway,
        bands=bands,
        prefix=where.prefix,
        credentials=where.credentials,
        ca_file=where.ca_file,
        allow_remote_start=allow_remote_start or bool(file.allow_remote_start),
        ha_discovery=ha_discovery or bool(file.ha_discovery),
        telemetry_hz=telemetry_hz or file.telemetry_hz or 1.0,
        batch_window_ms=window_ms,
        broker_grace_s=broker_grace_s or file.broker_grace_s or 10.0,
        remote_max_s=remote_max_s or file.remote_max_s or 3600.0,
        backoff_initial_s=file.backoff_initial_s or min(1.0, file.backoff_max_s or 1.0),
        backoff_max_s=file.backoff_max_s or max(60.0, file.backoff_initial_s or 60.0),
        profile=profile,
        participants=study_participants(
            file, participants or [], participant_profiles or [], bands
        ),
    )


def study_participants(
    file: BridgeFile, flags: list[str], profile_flags: list[str], bands: dict[str, str]
) -> Participants:
    """`--participant` flags replace the file's `[participants]`; a `--participant-profile`
    replaces the file's profile for that participant only."""
    if flags:
        source = "--participant"
        by_band = assign(split_pairs(flags, source, "BAND", "ID"), bands, source)
    else:
        by_band = assign(file.participants, bands, f"{file.source}: participants")
    wearing = set(by_band.values())
    from_flags = split_pairs(profile_flags, "--participant-profile", "ID", "FILE")
    from_file = {
        who: Path(path) for who, path in file.participant_profiles.items() if who not in from_flags
    }
    profiles = load_profiles(from_file, wearing, f"{file.source}: participant_profiles")
    flag_paths = {who: Path(path) for who, path in from_flags.items()}
    profiles.update(load_profiles(flag_paths, wearing, "--participant-profile"))
    return Participants(by_band, profiles)
