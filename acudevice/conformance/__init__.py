"""Conformance: drive any device URL through the promises of docs/protocol.md.

`run_conformance(url)` runs `CHECKS` in order (`suite.py`); the checks of the wire contract
are in `protocol_checks.py`, those of the safety promises in `safety_checks.py`, batched
telemetry in `telemetry.py`, and what they share in `support.py`.
"""

from acudevice.conformance.protocol_checks import check_version_negotiation
from acudevice.conformance.safety_checks import required_safety
from acudevice.conformance.suite import CHECKS, CheckResult, run_conformance, settle

__all__ = [
    "CHECKS",
    "CheckResult",
    "check_version_negotiation",
    "required_safety",
    "run_conformance",
    "settle",
]
