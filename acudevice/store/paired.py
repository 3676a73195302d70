"""Paired bands, in the store's SQLite database beside the journal.

Each entry records what pairing learnt (address, alias, model, firmware, serial) and where
the bond is (the Bumble key store file and this computer's identity address). SQLite
serialises writers, so two commands cannot interleave a read-modify-write. An alias names a
band anywhere a device URL is expected (`acudevice run nausea-relief --device left-wrist`).
Bands paired by an acudevice that kept them in `devices.json` are imported on first open.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from types import TracebackType

from pydantic import BaseModel, ConfigDict, ValidationError

from acudevice.errors import InputError, NotFoundError, Problem
from acudevice.store.database import StoreError, open_database

_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_ADDRESS_LIKE = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")
LEGACY_FILE = "devices.json"


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


class PairedDevices:
    """The paired-band table; use as a context manager (it holds a database connection)."""

    def __init__(self, path: Path | None = None) -> None:
        self._db, self.path = open_database(path)
        try:
            self._import_legacy(self.path.parent / LEGACY_FILE)
        except BaseException:
            self._db.close()
            raise

    def __enter__(self) -> PairedDevices:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ reading

    def all(self) -> list[PairedDevice]:
        rows = self._db.execute("SELECT entry FROM paired_devices ORDER BY rowid").fetchall()
        devices = []
        for row in rows:
            try:
                devices.append(PairedDevice.model_validate_json(row["entry"]))
            except ValidationError:
                raise StoreError(
                    f"{self.path}: a paired-band entry is damaged; forget the band and pair again"
                ) from None
        return devices

    def find(self, name: str) -> PairedDevice | None:
        """By alias (case-insensitive) or by address."""
        key = name.casefold()
        for device in self.all():
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

    def _put(self, device: PairedDevice) -> None:
        self._db.execute(
            "INSERT INTO paired_devices (address, alias, entry) VALUES (?, ?, ?) "
            "ON CONFLICT(address) DO UPDATE SET alias=excluded.alias, entry=excluded.entry",
            (device.address, device.alias, device.model_dump_json()),
        )

    def add(self, device: PairedDevice) -> PairedDevice:
        """Record a pairing; replaces an earlier entry for the same address."""
        if device.alias is not None:
            check_alias(device.alias)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            clash = self._db.execute(
                "SELECT address FROM paired_devices WHERE alias = ? AND address != ?",
                (device.alias, device.address),
            ).fetchone()
            if device.alias and clash is not None:
                raise InputError(
                    [Problem("--alias", "", f"{device.alias!r} already names another band")]
                )
            self._put(device)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return device

    def rename(self, old: str, new: str) -> PairedDevice:
        check_alias(new)
        target = self.get(old)
        clash = self.find(new)
        if clash is not None and clash.address != target.address:
            raise InputError([Problem("NEW", "", f"{new!r} already names {clash.address}")])
        renamed = target.model_copy(update={"alias": new})
        self._put(renamed)
        return renamed

    def remove(self, name: str) -> PairedDevice:
        target = self.get(name)
        self._db.execute("DELETE FROM paired_devices WHERE address = ?", (target.address,))
        return target

    def _import_legacy(self, legacy: Path) -> None:
        """Bands from an older acudevice's JSON file move here once; the file is kept aside."""
        if not legacy.is_file():
            return
        try:
            data = json.loads(legacy.read_text(encoding="utf-8"))
            devices = [PairedDevice.model_validate(d) for d in data.get("devices", [])]
        except (OSError, ValueError, ValidationError, AttributeError):
            raise StoreError(
                f"{legacy} is damaged and could not be imported; move it aside and pair again"
            ) from None
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for device in devices:
                if (
                    self._db.execute(
                        "SELECT 1 FROM paired_devices WHERE address = ?", (device.address,)
                    ).fetchone()
                    is None
                ):
                    self._put(device)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        legacy.replace(legacy.with_name(legacy.name + ".imported"))


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
