"""A signal domain: one folder that registers itself (its signals, resources, jobs, schedules,
sensors and profile defaults). `definitions.build_definitions(settings)` imports each domain of
`settings.domains`, turns each into a `dagster.Definitions` and merges them with
`Definitions.merge` (the per-domain definitions pattern of dagster-open-platform)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

from dagster import Definitions

from ..settings import PrismSettings
from .policy import Policy
from .signal import Signal, build_signal_asset


@dataclass(frozen=True)
class DomainContext:
    """What a domain's builders get: the settings, the shared policy and the profile resource."""

    settings: PrismSettings
    policy: Policy
    profile: object  # PrismProfile
    signals: tuple = ()  # every signal of the code location (all domains)


@dataclass(frozen=True)
class Domain:
    name: str  # the asset group and the profile section
    description: str
    signals: tuple[Signal, ...] = ()
    defaults: dict = field(default_factory=dict)  # profile section defaults (the YAML overrides them)
    resources: Callable[[DomainContext], dict] | None = None  # heavy model resources, by key
    jobs: Callable[[DomainContext], list] | None = None
    schedules: Callable[[DomainContext], list] | None = None
    sensors: Callable[[DomainContext], list] | None = None

    def definitions(self, ctx: DomainContext, qc_sources: dict) -> Definitions:
        return Definitions(
            assets=[build_signal_asset(s, ctx.policy, qc_sources) for s in self.signals],
            resources=self.resources(ctx) if self.resources else None,
            jobs=self.jobs(ctx) if self.jobs else None,
            schedules=self.schedules(ctx) if self.schedules else None,
            sensors=self.sensors(ctx) if self.sensors else None,
        )


class DomainError(ValueError):
    pass


def load_domain(module_name: str) -> Domain:
    """The `DOMAIN` of an importable package (one line in prism_assets/domains.py or PRISM_EXTRA_DOMAINS)."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DomainError(f"signal domain {module_name!r} cannot be imported: {exc}") from None
    domain = getattr(module, "DOMAIN", None)
    if not isinstance(domain, Domain):
        raise DomainError(f"signal domain {module_name!r} has no DOMAIN (a prism_assets.core.domain.Domain)")
    return domain


def load_domains(names) -> list[Domain]:
    domains = [load_domain(n) for n in names]
    seen: dict[str, str] = {}
    for d in domains:
        for s in d.signals:
            for key in [s.name, *s.output_names]:
                if key in seen and seen[key] != s.name:
                    raise DomainError(f"asset or step name {key!r} is declared twice ({seen[key]} and {s.name})")
                seen[key] = s.name
    return domains


def all_signals(domains) -> list[Signal]:
    return [s for d in domains for s in d.signals]


def qc_sources(domains) -> dict[str, Callable]:
    """Every output that contributes events to the title's QC verdict, with its hook."""
    return {o.name: o.qc_events for s in all_signals(domains) for o in s.outputs if o.qc_events is not None}
