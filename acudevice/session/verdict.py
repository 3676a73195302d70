"""The one safety verdict for a program, used by `check` and by `run` alike.

It is `screen` with the user's remembered comfort maxima (lowered by "too strong" in past
sessions) folded into the health profile, so a check can never be more permissive than the
run it predicts. The maxima are those of one participant (None: the single-host user), so one
person's "too strong" never lowers another's sessions.
"""

from __future__ import annotations

from acudevice.plan.devices import FRACTION_TO_PERMILLE, KPA_TO_PA, PressureDevice, VibrationDevice
from acudevice.plan.points import PointCatalog
from acudevice.plan.program import Program
from acudevice.safety.profile import HealthProfile
from acudevice.safety.screening import Verdict, screen
from acudevice.store import Journal


def with_remembered_comfort(
    profile: HealthProfile, remembered: dict[str, int], actuator: str
) -> HealthProfile:
    """The profile with each remembered maximum (Pa or permille) applied where it is lower."""
    if not remembered:
        return profile
    scale = KPA_TO_PA if actuator == "pressure" else FRACTION_TO_PERMILLE
    key = "comfort_max_kpa" if actuator == "pressure" else "comfort_max_intensity"
    merged = dict(getattr(profile, key))
    for point, level in remembered.items():
        merged[point] = min(merged.get(point, level / scale), level / scale)
    return profile.model_copy(update={key: merged})


def remembered_profile(
    profile: HealthProfile,
    journal: Journal | None,
    actuator: str,
    *,
    participant: str | None = None,
) -> HealthProfile:
    """The profile a run screens with: that participant's remembered maxima folded in."""
    if journal is None:
        return profile
    remembered = journal.comfort_max(actuator, participant=participant)
    return with_remembered_comfort(profile, remembered, actuator)


def verdict_for(
    program: Program,
    device: PressureDevice | VibrationDevice,
    catalog: PointCatalog,
    profile: HealthProfile,
    journal: Journal | None,
    *,
    confirm_reason: str | None = None,
    participant: str | None = None,
) -> Verdict:
    profile = remembered_profile(profile, journal, device.actuator, participant=participant)
    return screen(program, device, catalog, profile, confirm_reason=confirm_reason)
