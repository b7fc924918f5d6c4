"""Declarative asset checks evaluated on an asset's own output, in the same step.

Each signal declares `CheckRule`s; `specs()` turns them into `check_specs` for the asset and
`evaluate()` into `AssetCheckResult`s yielded right after the output, so every
materialization of every partition is checked without loading the artifact again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec


@dataclass(frozen=True)
class CheckRule:
    name: str
    description: str
    fn: Callable[[Any], tuple[bool, dict]]  # value -> (passed, metadata)
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR
    blocking: bool = False


def specs(asset: str, rules: list[CheckRule]) -> list[AssetCheckSpec]:
    return [AssetCheckSpec(r.name, asset=asset, description=r.description, blocking=r.blocking) for r in rules]


def evaluate(asset: str, rules: list[CheckRule], value: Any) -> list[AssetCheckResult]:
    out = []
    for r in rules:
        try:
            passed, meta = r.fn(value)
        except Exception as exc:  # a check that cannot evaluate fails, with the reason
            passed, meta = False, {"error": f"{type(exc).__name__}: {exc}"}
        out.append(AssetCheckResult(asset_key=asset, check_name=r.name, passed=bool(passed), severity=r.severity, metadata=meta))
    return out
