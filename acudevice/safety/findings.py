"""What a safety check found: one finding per broken rule, hard or soft."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from acudevice.errors import AcuDeviceError
from acudevice.safety.rules import RULES, RuleId, Severity


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: RuleId
    message: str
    where: str | None = None
    clears_at: int | None = None
    """For a finding about how strong the program is (`comfort-max`, `bleeding-risk`): the
    peak level (Pa or permille) at or under which it would not apply, so a program scaled
    under it (`acudevice.safety.fitting`) no longer raises it."""

    @property
    def severity(self) -> Severity:
        return RULES[self.rule].severity

    def __str__(self) -> str:
        where = f" {self.where}:" if self.where else ""
        return f"[{self.rule}]{where} {self.message}"


class PlanRefused(AcuDeviceError):
    """A plan breaks hard rules; every broken rule is listed, nothing is clamped."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = list(findings)
        super().__init__("; ".join(str(f) for f in self.findings))
