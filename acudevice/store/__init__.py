"""Persistent state: the session journal (and, later, paired devices)."""

from acudevice.store.journal import Journal, JournalError, Outcome, Sample, SessionRecord

__all__ = ["Journal", "JournalError", "Outcome", "Sample", "SessionRecord"]
