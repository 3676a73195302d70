"""acudevice: drive acupressure wearables safely from a computer or gateway.

The public face is flat (`from acudevice import connect, Session, Journal, ...`) and lazy:
a name is imported when first used (PEP 562), so `import acudevice` loads no BLE stack, no
plotting and no protocol models that the caller does not use.
"""

from __future__ import annotations

import importlib

from acudevice.errors import AcuDeviceError, InputError, NotFoundError, Problem

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "connect": "acudevice.device",
    "Device": "acudevice.device",
    "DeviceInfo": "acudevice.device",
    "DeviceError": "acudevice.device",
    "DeviceDisconnected": "acudevice.device",
    "RequestRefused": "acudevice.device",
    "RequestTimeout": "acudevice.device",
    "IncompatibleDevice": "acudevice.device",
    "TransportError": "acudevice.errors",
    "TransportClosed": "acudevice.errors",
    "Keeper": "acudevice.device.keeper",
    "KeeperState": "acudevice.device.keeper",
    "ReconnectPolicy": "acudevice.device.keeper",
    "BandBusy": "acudevice.device.keeper",
    "KeeperClosed": "acudevice.device.keeper",
    "Session": "acudevice.session.runner",
    "LinkPolicy": "acudevice.session.runner",
    "SessionResult": "acudevice.session.model",
    "SessionView": "acudevice.session.view",
    "SessionRefused": "acudevice.session.model",
    "Journal": "acudevice.store",
    "PairedDevices": "acudevice.store",
    "StoreError": "acudevice.store",
    "ProgramLibrary": "acudevice.plan.library",
    "Program": "acudevice.plan.program",
    "Schedule": "acudevice.plan.schedule",
    "load_device": "acudevice.plan.library",
    "HealthProfile": "acudevice.safety.profile",
    "load_profile": "acudevice.safety.profile",
    "Limits": "acudevice.safety.limits",
    "effective_limits": "acudevice.safety.limits",
    "compile_program": "acudevice.safety.compiler",
    "screen": "acudevice.safety.screening",
    "fit_under": "acudevice.safety.fitting",
    "Verdict": "acudevice.safety.screening",
    "PlanRefused": "acudevice.safety.findings",
}
_MODULES = {"programs": "acudevice.programs", "events": "acudevice.session.events"}

__all__ = [
    "AcuDeviceError",
    "BandBusy",
    "Device",
    "DeviceDisconnected",
    "DeviceError",
    "DeviceInfo",
    "HealthProfile",
    "IncompatibleDevice",
    "InputError",
    "Journal",
    "Keeper",
    "KeeperClosed",
    "KeeperState",
    "Limits",
    "LinkPolicy",
    "NotFoundError",
    "PairedDevices",
    "PlanRefused",
    "Problem",
    "Program",
    "ProgramLibrary",
    "ReconnectPolicy",
    "RequestRefused",
    "RequestTimeout",
    "Schedule",
    "Session",
    "SessionRefused",
    "SessionResult",
    "SessionView",
    "StoreError",
    "TransportClosed",
    "TransportError",
    "Verdict",
    "compile_program",
    "connect",
    "effective_limits",
    "events",
    "fit_under",
    "load_device",
    "load_profile",
    "programs",
    "screen",
]


def __getattr__(name: str) -> object:
    if name in _MODULES:
        value: object = importlib.import_module(_MODULES[name])
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'acudevice' has no attribute {name!r}")
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


TYPE_CHECKING = False  # typing's own flag costs a third of the start-up budget
if TYPE_CHECKING:
    from acudevice import programs
    from acudevice.device import (
        Device,
        DeviceDisconnected,
        DeviceError,
        DeviceInfo,
        IncompatibleDevice,
        RequestRefused,
        RequestTimeout,
        connect,
    )
    from acudevice.device.keeper import (
        BandBusy,
        Keeper,
        KeeperClosed,
        KeeperState,
        ReconnectPolicy,
    )
    from acudevice.errors import TransportClosed, TransportError
    from acudevice.plan.library import ProgramLibrary, load_device
    from acudevice.plan.program import Program
    from acudevice.plan.schedule import Schedule
    from acudevice.safety.compiler import compile_program
    from acudevice.safety.findings import PlanRefused
    from acudevice.safety.limits import Limits, effective_limits
    from acudevice.safety.profile import HealthProfile, load_profile
    from acudevice.safety.screening import Verdict, screen
    from acudevice.session import events
    from acudevice.session.model import SessionRefused, SessionResult
    from acudevice.session.runner import LinkPolicy, Session
    from acudevice.session.view import SessionView
    from acudevice.store import Journal, PairedDevices, StoreError
