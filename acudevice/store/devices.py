"""Paired bands: a small JSON file in the user data directory.

Each entry records what pairing learnt (address, alias, model, firmware, serial) and where
the bond is (the Bumble key store file and this computer's identity address). Writes are
atomic (a temporary file, fsync, rename) and serialised by a lock file, so two commands
cannot interleave a read-modify-write. An alias names a band anywhere a device URL is
expected (`acudevice run nausea-relief --device left-wrist`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from acudevice.errors import AcuDeviceError, InputError, NotFoundError, Problem
from acudevice.paths import PRIVATE_FILE_MODE, private_data_dir

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: single-user use, no lock
    fcntl = None  # type: ignore[assignment]

VERSION = 1
_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_ADDRESS_LIKE = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")


class RegistryError(AcuDeviceError):
    """The registry file is unreadable; the message says where it is."""


class Bond(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    keystore: str
    """The Bumble JSON key store holding the keys (empty: the OS keeps them)."""
    identity: str
    """This computer's address the band bonded with."""


class PairedDevice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str
    alias: str | None = None
    name: str | None = None
    model: str
    firmware: str
    serial: str
    paired_at: float
    bond: Bond

    @property
    def url(self) -> str:
        return f"ble://{self.address}"

    @property
    def label(self) -> str:
        return self.alias or self.address


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = VERSION
    devices: list[PairedDevice] = []


def check_alias(alias: str) -> str:
    if not _ALIAS.match(alias) or _ADDRESS_LIKE.match(alias):
        raise InputError(
            [
                Problem(
                    "alias",
                    "",
                    f"{alias!r} is not a usable alias: 1-32 letters, digits, '-' or '_', "
                    "starting with a letter or digit, and not shaped like an address",
                )
            ]
        )
    return alias


class DeviceRegistry:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or private_data_dir() / "devices.json"

    # ------------------------------------------------------------------ reading

    def _load(self) -> _File:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return _File()
        except OSError as exc:
            raise RegistryError(f"cannot read {self.path}: {exc.strerror}") from None
        try:
            data = _File.model_validate(json.loads(text))
        except (ValueError, ValidationError) as exc:
            raise RegistryError(
                f"{self.path} is damaged ({type(exc).__name__}); move it aside and pair again"
            ) from None
        return data

    def all(self) -> list[PairedDevice]:
        return list(self._load().devices)

    def find(self, name: str) -> PairedDevice | None:
        """By alias (case-insensitive) or by address."""
        key = name.casefold()
        for device in self._load().devices:
            if key in (device.address.casefold(), (device.alias or "").casefold()):
                return device
        return None

    def get(self, name: str) -> PairedDevice:
        device = self.find(name)
        if device is None:
            known = ", ".join(d.label for d in self.all()) or "none paired yet"
            raise NotFoundError(
                f"no paired band called {name!r} (known: {known}); pair one with "
                "`acudevice pair ADDRESS --alias NAME`"
            )
        return device

    # ------------------------------------------------------------------ writing

    @contextlib.contextmanager
    def _editing(self) -> Iterator[_File]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a+b", opener=_private) as lock:
            if fcntl is not None:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            data = self._load()
            yield data
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            with open(tmp, "w", encoding="utf-8", opener=_private) as out:
                out.write(data.model_dump_json(indent=2) + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)

    def add(self, device: PairedDevice) -> PairedDevice:
        """Record a pairing; replaces an earlier entry for the same address."""
        if device.alias is not None:
            check_alias(device.alias)
        with self._editing() as data:
            others = [d for d in data.devices if d.address.casefold() != device.address.casefold()]
            if device.alias and any(
                (d.alias or "").casefold() == device.alias.casefold() for d in others
            ):
                raise InputError(
                    [Problem("--alias", "", f"{device.alias!r} already names another band")]
                )
            data.devices = [*others, device]
        return device

    def rename(self, old: str, new: str) -> PairedDevice:
        check_alias(new)
        target = self.get(old)
        clash = self.find(new)
        if clash is not None and clash.address != target.address:
            raise InputError([Problem("NEW", "", f"{new!r} already names {clash.address}")])
        renamed = target.model_copy(update={"alias": new})
        with self._editing() as data:
            data.devices = [renamed if d.address == target.address else d for d in data.devices]
        return renamed

    def remove(self, name: str) -> PairedDevice:
        target = self.get(name)
        with self._editing() as data:
            data.devices = [d for d in data.devices if d.address != target.address]
        return target


def new_entry(
    *,
    address: str,
    alias: str | None,
    name: str | None,
    model: str,
    firmware: str,
    serial: str,
    bond: Bond,
) -> PairedDevice:
    return PairedDevice(
        address=address.upper(),
        alias=alias,
        name=name,
        model=model,
        firmware=firmware,
        serial=serial,
        paired_at=time.time(),
        bond=bond,
    )


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, PRIVATE_FILE_MODE)
