"""Declarative asset checks evaluated on an asset's own output, in the same step.

Each signal output declares `CheckRule`s; `specs()` turns them into `check_specs` (partitioned like
the asset, so every evaluation is stored for its title or day and the UI's Checks tab names the
partition) and `evaluate()` into `AssetCheckResult`s yielded right after the output, so every
materialization of every partition is checked without loading the artifact again.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any, Callable

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, PartitionsDefinition, PreviewWarning


@dataclass(frozen=True)
class CheckRule:
    name: str
    description: str
    fn: Callable[[Any], tuple[bool, dict]]  # value -> (passed, metadata)
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR
    blocking: bool = False

    def with_severity(self, severity: AssetCheckSeverity) -> "CheckRule":
        return dataclasses.replace(self, severity=severity)


def partitioned_spec(name: str, asset: str, description: str, blocking: bool, partitions_def: PartitionsDefinition | None) -> AssetCheckSpec:
    """A check spec partitioned like its asset. Partitioned check specs are a Dagster 1.13 *preview*
    feature that Prism relies on deliberately (per-title check results); its warning is silenced here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)
        return AssetCheckSpec(name, asset=asset, description=description, blocking=blocking, partitions_def=partitions_def)


def specs(asset: str, rules: list[CheckRule] | tuple[CheckRule, ...], partitions_def: PartitionsDefinition | None = None) -> list[AssetCheckSpec]:
    return [partitioned_spec(r.name, asset, r.description, r.blocking, partitions_def) for r in rules]


def _num(value):
    import math

    if isinstance(value, float) and math.isfinite(value):
        return round(value, 3) if abs(value) >= 1 else float(f"{value:.4g}")
    return value


def _cell(value) -> str:
    """One value in a Markdown table cell: null as `null`, numbers rounded, small structures inline."""
    import json

    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(_num(value))
    if isinstance(value, (list, tuple)) and all(not isinstance(x, (dict, list)) for x in value):
        return ", ".join(_cell(x) for x in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_cell(v)}" for k, v in value.items()) or "none"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text.replace("|", "\\|").replace("\n", " ")


def readable(value):
    """A JSON metadata value as a person reads it (the UI shows JSON as a collapsed blob): a mapping as a two-column
    Markdown table, records (a list of mappings) as a table with their keys as columns, a list of plain values as one
    line; anything else unchanged."""
    from dagster import JsonMetadataValue, MetadataValue

    if not isinstance(value, JsonMetadataValue):
        return value
    data = value.data
    if isinstance(data, dict) and data:
        rows = "\n".join(f"| {k} | {_cell(v)} |" for k, v in data.items())
        return MetadataValue.md(f"| name | value |\n|---|---|\n{rows}")
    if isinstance(data, list) and data and all(isinstance(x, dict) for x in data):
        cols = list(dict.fromkeys(k for x in data for k in x))
        head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols)
        return MetadataValue.md(head + "".join("\n| " + " | ".join(_cell(x.get(c)) for c in cols) + " |" for x in data))
    if isinstance(data, list):
        return MetadataValue.text(_cell(data))
    if data is None:
        return None
    return value


def tidy(value):
    """A metadata value as a person reads it: floats rounded (3 decimals from 1 up, else 4 significant digits), so the UI
    never shows 30.999999999999996; JSON blobs as tables or one line (`readable`); anything else unchanged."""
    return readable(_num(value))


def tidy_metadata(meta: dict) -> dict:
    return {k: tidy(v) for k, v in meta.items()}


def summary(passed: bool, meta: dict, partition: str | None = None) -> str:
    """The evaluation's one line (the Checks tab's description column): the title or day, passed / FAILED, and what was
    found: `meta["summary"]` when the rule wrote one, else its first plain values (`key value`)."""
    found = meta.get("summary")
    if not found:
        plain = [(k, v) for k, v in meta.items() if isinstance(v, (int, float, bool)) or (isinstance(v, str) and len(v) <= 80)]
        plain += [(k, f"{len(v)}: {', '.join(map(str, v[:3]))}{' ...' if len(v) > 3 else ''}") for k, v in meta.items()
                  if isinstance(v, (list, tuple)) and v and all(isinstance(x, (str, int, float)) for x in v)]
        found = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in plain[:4])  # floats already rounded (tidy_metadata)
    line = ("passed" if passed else "FAILED") + (f": {found}" if found else "")
    return " ".join(((f"{partition}: " if partition else "") + line).split())[:300]


def evaluate(asset: str, rules: list[CheckRule] | tuple[CheckRule, ...], value: Any, partition: str | None = None,
             label: str = "partition") -> list[AssetCheckResult]:
    """One result per rule; each names its partition (metadata `label`, e.g. `title`) and says in its description what it found."""
    out = []
    for r in rules:
        try:
            passed, meta = r.fn(value)
        except Exception as exc:  # a check that cannot evaluate fails, with the reason
            passed, meta = False, {"error": f"{type(exc).__name__}: {exc}"}
        meta = tidy_metadata(meta)
        line = summary(bool(passed), meta, partition)
        meta.pop("summary", None)
        if partition:
            meta.setdefault(label, partition)
        out.append(AssetCheckResult(asset_key=asset, check_name=r.name, passed=bool(passed), severity=r.severity, metadata=meta, description=line))
    return out


def skipped(asset: str, rules: list[CheckRule] | tuple[CheckRule, ...], reason: str, partition: str | None = None,
            label: str = "partition") -> list[AssetCheckResult]:
    """Results for an output that was deliberately not produced (e.g. no picture in an audio-only
    delivery): passed, WARN severity, with the reason."""
    meta = {"skipped": reason, **({label: partition} if partition else {})}
    return [AssetCheckResult(asset_key=asset, check_name=r.name, passed=True, severity=AssetCheckSeverity.WARN, metadata=meta,
                             description=(f"{partition}: " if partition else "") + f"not applicable: {reason}"[:280]) for r in rules]
