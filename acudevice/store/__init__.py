"""Persistent state: one SQLite database holding the session journal and paired bands."""

from acudevice.store.database import SCHEMA_VERSION, StoreError
from acudevice.store.journal import Journal, JournalError, Outcome, Sample, SessionRecord
from acudevice.store.paired import PairedDevice, PairedDevices

__all__ = [
    "SCHEMA_VERSION",
    "Journal",
    "JournalError",
    "Outcome",
    "PairedDevice",
    "PairedDevices",
    "Sample",
    "SessionRecord",
    "StoreError",
]
