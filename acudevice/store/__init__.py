"""Persistent state: one SQLite database holding the session journal, paired bands and the
outbox of records for a study's centre."""

from acudevice.store.database import SCHEMA_VERSION, StoreError
from acudevice.store.identity import check_participant
from acudevice.store.journal import Journal, JournalError
from acudevice.store.models import Outcome, Sample, SessionRecord
from acudevice.store.outbox import OutboxBound, OutboxStatus
from acudevice.store.paired import PairedDevice, PairedDevices

__all__ = [
    "SCHEMA_VERSION",
    "Journal",
    "JournalError",
    "OutboxBound",
    "OutboxStatus",
    "Outcome",
    "PairedDevice",
    "PairedDevices",
    "Sample",
    "SessionRecord",
    "StoreError",
    "check_participant",
]
