"""Who wears which band on a gateway, and each participant's health profile.

`--participant BAND=ID` (or `[participants]` in bridge.toml) names the participant of a
band; `--participant-profile ID=FILE` (or `[participant_profiles]`) their health profile.
A session on that band is screened with that profile and that participant's remembered
comfort maxima only, and journalled under their pseudonym. A band without a participant
uses the gateway's own profile (`--profile`) and names nobody; so does a participant
without a profile of their own.

A participant wears at most one band of a gateway: two sessions at once on one person would
each have a cap of their own that knows nothing of the other (a "too strong" on one wrist
would not lower the other), so a second band for the same ID is refused at start-up. A pair
on one person is `acudevice run --both`, one session with one cap.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from acudevice.errors import InputError, Problem
from acudevice.safety.profile import HealthProfile, load_profile
from acudevice.store.identity import check_participant


@dataclass(frozen=True)
class Participants:
    by_band: Mapping[str, str] = field(default_factory=dict)
    """band id -> participant pseudonym."""
    profiles: Mapping[str, HealthProfile] = field(default_factory=dict)
    """participant -> their health profile."""

    def of(self, band: str) -> str | None:
        return self.by_band.get(band)

    def profile(self, band: str, gateway_profile: HealthProfile) -> HealthProfile:
        """The profile a session on `band` is screened with."""
        participant = self.of(band)
        if participant is None:
            return gateway_profile
        return self.profiles.get(participant, gateway_profile)

    def bands_of(self, participant: str) -> list[str]:
        return [band for band, who in self.by_band.items() if who == participant]


def split_pairs(specs: list[str], source: str, left: str, right: str) -> dict[str, str]:
    """`LEFT=RIGHT` strings (`BAND=ID`, `ID=FILE`) as a dict; one line for each mistake."""
    pairs: dict[str, str] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or not key or not value:
            raise InputError([Problem(source, "", f"{spec!r} is not {left}={right}")])
        if key in pairs:
            raise InputError([Problem(source, "", f"{left} {key!r} is given twice")])
        pairs[key] = value
    return pairs


def assign(assigned: Mapping[str, str], bands: Collection[str], source: str) -> dict[str, str]:
    """band -> participant, checked against the gateway's bands and the pseudonym rule."""
    owner: dict[str, str] = {}
    for band, participant in assigned.items():
        if band not in bands:
            known = ", ".join(sorted(bands))
            raise InputError(
                [Problem(source, "", f"no band {band!r} on this gateway (bands: {known})")]
            )
        check_participant(participant, f"{source} {band}")
        if participant in owner:
            raise InputError(
                [
                    Problem(
                        source,
                        "",
                        f"{participant} is on bands {owner[participant]} and {band}: a "
                        "participant wears one band of a gateway (two sessions would not "
                        "share a cap)",
                    )
                ]
            )
        owner[participant] = band
    return dict(assigned)


def load_profiles(
    paths: Mapping[str, Path], participants: Collection[str], source: str
) -> dict[str, HealthProfile]:
    """participant -> profile read from its file; a profile for nobody on this gateway is
    refused (a typo in an ID must not leave the real participant on the gateway's profile)."""
    profiles: dict[str, HealthProfile] = {}
    for participant, path in paths.items():
        check_participant(participant, source)
        if participant not in participants:
            raise InputError(
                [
                    Problem(
                        source,
                        "",
                        f"a profile for {participant}, who is on no band of this gateway "
                        "(--participant BAND=ID)",
                    )
                ]
            )
        profiles[participant] = load_profile(path)
    return profiles
