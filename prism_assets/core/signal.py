"""Signals: a short declaration of a per-title (or per-day) signal -> its Dagster asset.

A signal domain declares *what* a signal is (`Signal`: name, inputs, outputs with their artifact,
schema version, checks and export file, code version, pool, model resource, expected errors) and
one compute function that returns its values (`Result`, a dict of them for several outputs, or
`Skip`). `build_signal_asset` turns the declaration into a Dagster (multi-)asset with everything
every signal shares, in one place:

- the `titles` partitions (dynamic, one per title), the daily partitions or the `seasons` partitions;
- group = domain, `code_version`, schema / artifact / export metadata, asset tags
  (`prism/step`, `prism/domain`, `prism/partitions`), kinds;
- check specs partitioned like the asset (evaluations stored per title / day) for every rule of
  every output, plus the per-title SLA check `processed_on_time` (core/sla.py);
- pool, op tags (GPU steps to GPU workers) and the retry policy (`core.policy.Policy`);
- catalog run tracking, expected errors as one-line `Failure`s (never retried), skips recorded;
- pictures (inline thumbnails) and table previews as UI metadata, bounded (core/pictures.py);
- QC: an output may contribute events to the title's QC verdict (`Output.qc_events`); the QC
  signal (`collects_qc_events=True`) receives every contributor as an input, wired at build time.

The compute function gets a `SignalContext` (partition, storage, catalog, profile section of its
domain, its model resource, logging) and its inputs by asset name; it never touches Dagster's
decorators, so a new signal is a declaration and a function (docs/adding-a-signal.md).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dagster import AllPartitionMapping, AssetDep, AssetIn, AssetOut, Failure, multi_asset
from dagster import Output as DagsterOutput

from ..partitions import daily_partitions, seasons_partitions, titles_partitions
from . import checks
from .checks import CheckRule
from .pictures import Picture, pictures_markdown, table_metadata
from .policy import DOMAIN_TAG, PARTITIONS_TAG, STEP_TAG, Policy
from .sla import SLA_CHECK, sla_result, sla_spec
from .store import StoreError
from .tracking import final_attempt_names_the_cause, one_line, tracked_signal_run

TITLES = "titles"
DAILY = "daily"
SEASONS = "seasons"  # one partition per season of a series (intro/recap across its episodes)
PLATFORM_RESOURCES = ("storage", "catalog", "profile")


@dataclass(frozen=True)
class Output:
    """One asset a signal materializes (its artifact, schema, checks and export)."""

    name: str
    schema_version: str
    artifact: str  # where and how it is stored, e.g. "titles/<title_id>/shots.parquet"
    description: str = ""  # default: the signal's description
    kinds: tuple[str, ...] = ()
    rules: tuple[CheckRule, ...] = ()
    export: str | None = None  # file name in `prism export` (None: not exported)
    required: bool = True  # False: may be skipped for some titles (its descendants are then skipped)
    links: tuple[str, ...] = ()  # bundle files linked from the materialization (e.g. report.html)
    qc_events: Callable[[Any], list[dict]] | None = None  # value -> QC events joining the title's verdict


@dataclass(frozen=True)
class Signal:
    """A step: one compute over inputs (upstream assets) producing one or more outputs."""

    name: str  # the step; with one output, also the asset key
    domain: str  # the asset group and the profile section the compute reads
    description: str
    code_version: str
    outputs: tuple[Output, ...]
    compute: Callable[..., Any]  # compute(sc: SignalContext, **inputs) -> Result | dict[str, Result] | Skip
    inputs: tuple[str, ...] = ()  # upstream assets loaded through the IO manager (same partition)
    deps: tuple[str, ...] = ()  # upstream assets read directly, all partitions (lineage only)
    pool: str | None = None  # "decode" | "gpu" | None
    # `dagster/priority` of the step: ready steps of a run start (and claim pool slots) highest first. Steps on a
    # title's critical path (audio pass -> transcript -> ...) above 0, steps nothing waits for (the proxy) below
    priority: int = 0
    # a step nothing on the critical path waits for, whose processes run niced (the proxy): it runs beside the run's
    # foreground steps instead of holding one of their slots (`prism/cpu` tag, core/routing.py)
    background: bool = False
    model: str | None = None  # resource key of the heavy model this step loads
    resources: tuple[str, ...] = ()  # further resource keys the compute uses
    errors: tuple[type[BaseException], ...] = ()  # expected errors -> one-line Failure "<partition>: <message>"
    partitions: str = TITLES
    collects_qc_events: bool = False
    config_schema: dict | None = None  # launch options shown in the launchpad (read as sc.context.op_config)

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]


@dataclass
class Result:
    """The value of one output, with what the UI shows about it."""

    value: Any
    metadata: dict = field(default_factory=dict)
    pictures: list[Picture] = field(default_factory=list)
    pictures_title: str | None = None
    table: Any = None  # a DataFrame previewed as a table
    table_columns: list[str] | None = None
    tags: dict = field(default_factory=dict)  # tags of the materialization event
    check_value: Any = None  # what the checks evaluate when it is not `value` itself
    rules: tuple[CheckRule, ...] | None = None  # the declared rules with severities decided at run time


@dataclass(frozen=True)
class Skip:
    """Nothing to produce for this partition (e.g. no picture in an audio-only delivery): the
    outputs must be optional; descendants are skipped, checks report the reason."""

    reason: str


@dataclass
class SignalContext:
    context: Any  # the Dagster execution context, for what the declaration does not cover
    signal: Signal
    storage: Any  # PrismStorage
    catalog: Any  # Catalog
    profile: Any  # PrismProfile
    model: Any = None  # the declared model resource
    resources: dict = field(default_factory=dict)
    qc_events: dict[str, list] = field(default_factory=dict)  # contributed events by source output (QC signal only)
    provenance: dict | None = None  # which model / tool produced the outputs (catalog signal_runs.model)
    scratch: list[Path] = field(default_factory=list)  # work folders removed once the outputs are stored

    @property
    def partition(self) -> str:
        return self.context.partition_key

    @property
    def title_id(self) -> str:
        return self.context.partition_key

    @property
    def run_id(self) -> str:
        return self.context.run_id

    @property
    def log(self):
        return self.context.log

    @property
    def run_tags(self) -> dict:
        return dict(self.context.run.tags)

    def producer(self, code_version: str | None = None, model=None, **extra) -> dict:
        """What every artifact records about what made it, stamped here for every domain: the tool (`prism-<domain>`),
        PyAV's version, the step's code version (the signal's own unless given), its model, the profile, and extras."""
        import av

        return {"tool": f"prism-{self.signal.domain}", "pyav_version": av.__version__, "code_version": code_version or self.signal.code_version,
                "model": model, "profile": self.profile.name, **extra}

    @property
    def config(self) -> dict:
        """The profile section of the signal's domain (domain defaults merged with the profile)."""
        return self.profile.section(self.signal.domain)

    def fail(self, message: str) -> Failure:
        return Failure(description=f"{self.partition}: {message}")

    def stage_delivery(self, uri: str):
        """(store, key, local path) of a delivered file: in place for a local root, downloaded to
        scratch for S3; an unreadable delivery is a one-line Failure."""
        store, key = self.storage.open_uri(uri)
        try:
            return store, key, self.storage.stage_local(store, key)
        except (StoreError, OSError) as exc:
            raise Failure(description=f"cannot read delivery {uri}: {exc}") from None

    def workdir(self, kind: str) -> Path:
        """A fresh scratch folder for this step (`<scratch>/<kind>/<partition>/<run>`), removed after
        the outputs are stored (bundles copy their files into the artifact store)."""
        path = Path(self.storage.scratch_dir) / kind / self.partition / self.run_id[:8]
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        self.scratch.append(path)
        return path


def asset_tags(sig: Signal) -> dict[str, str]:
    return {STEP_TAG: sig.name, DOMAIN_TAG: sig.domain, PARTITIONS_TAG: sig.partitions}


def _out(sig: Signal, o: Output) -> AssetOut:
    metadata = {"prism/schema_version": o.schema_version, "prism/artifact": o.artifact, "prism/code_version": sig.code_version}
    if o.export:
        metadata["prism/export"] = o.export
    if o.links:
        metadata["prism/links"] = list(o.links)
    return AssetOut(description=o.description or sig.description, code_version=sig.code_version, kinds=set(o.kinds), is_required=o.required,
                    metadata=metadata, tags=asset_tags(sig), group_name=sig.domain)


def build_signal_asset(sig: Signal, policy: Policy, qc_sources: dict[str, Callable] | None = None):
    """The Dagster multi-asset of a signal (step name = signal name; with one output the asset key
    equals the step name). `qc_sources` (asset -> events hook) feeds a QC-collecting signal."""
    pdef = {TITLES: titles_partitions, DAILY: daily_partitions, SEASONS: seasons_partitions}[sig.partitions]
    qc_sources = dict(qc_sources or {}) if sig.collects_qc_events else {}
    specs = []
    for o in sig.outputs:
        specs += checks.specs(o.name, o.rules, pdef)
        if sig.partitions == TITLES:
            specs.append(sla_spec(o.name, pdef))
    ins = {name: AssetIn(key=name) for name in sig.inputs}
    ins.update({name: AssetIn(key=name) for name in qc_sources if name not in ins})
    deps = [AssetDep(name, partition_mapping=AllPartitionMapping()) for name in sig.deps]
    keys = set(PLATFORM_RESOURCES) | set(sig.resources) | ({sig.model} if sig.model else set())

    @multi_asset(name=sig.name, outs={o.name: _out(sig, o) for o in sig.outputs}, ins=ins, deps=deps or None, partitions_def=pdef,
                 pool=sig.pool, op_tags=policy.op_tags(sig.pool, sig.priority, sig.background), retry_policy=policy.retry_policy, check_specs=specs,
                 required_resource_keys=keys, description=sig.description, can_subset=False, config_schema=sig.config_schema)
    def _signal(context, **inputs):
        yield from run_signal(sig, policy, context, inputs, qc_sources)

    return _signal


def _normalize(sig: Signal, result) -> dict[str, Result]:
    if isinstance(result, Result) and len(sig.outputs) == 1:
        return {sig.outputs[0].name: result}
    if isinstance(result, dict) and set(result) == set(sig.output_names) and all(isinstance(r, Result) for r in result.values()):
        return result
    raise TypeError(f"signal {sig.name} must return a Result per output {sig.output_names} or Skip, got {type(result).__name__}")


def _metadata(r: Result) -> dict:
    md = checks.tidy_metadata(r.metadata)
    if r.pictures:
        md["pictures"] = pictures_markdown(r.pictures, r.pictures_title)
    if r.table is not None:
        md["preview"] = table_metadata(r.table, r.table_columns)
    return md


def run_signal(sig: Signal, policy: Policy, context, inputs: dict, qc_sources: dict):
    """The body every signal shares: track, compute, yield outputs (stored by the IO manager while
    still tracked, so a failed write is recorded as a failure), then every check and the SLA; the
    step's scratch folders are removed at the end, whatever happened."""
    res = context.resources
    scratch: list = []
    with final_attempt_names_the_cause(context):
        try:
            catalog = res.catalog.get()
            sc = SignalContext(context=context, signal=sig, storage=res.storage, catalog=catalog, profile=res.profile,
                               model=getattr(res, sig.model) if sig.model else None, resources={k: getattr(res, k) for k in sig.resources})
            scratch = sc.scratch
            # a contributor the signal also reads (QC's audio_analysis) stays an input as well
            contributed = {k: inputs[k] if k in sig.inputs else inputs.pop(k) for k in list(inputs) if k in qc_sources}
            for name, value in contributed.items():
                sc.qc_events[name] = list(qc_sources[name](value) or [])
            yield from _outputs_and_checks(sig, policy, context, inputs, sc, catalog)
        finally:
            for path in scratch:
                shutil.rmtree(path, ignore_errors=True)


def _outputs_and_checks(sig: Signal, policy: Policy, context, inputs: dict, sc: SignalContext, catalog):
    with tracked_signal_run(context, catalog, signal=sig.name, code_version=sig.code_version, per_title=sig.partitions == TITLES) as rec:
        try:
            result = sig.compute(sc, **inputs)
        except sig.errors as exc:
            raise Failure(description=f"{context.partition_key}: {one_line(exc)}") from None
        rec.model = sc.provenance
        if isinstance(result, Skip):
            rec.skipped = result.reason
            results = None
        else:
            results = _normalize(sig, result)
            for o in sig.outputs:
                r = results[o.name]
                yield DagsterOutput(r.value, output_name=o.name, metadata=_metadata(r), tags=r.tags or None)
    if results is None:
        if any(o.required for o in sig.outputs):
            raise Failure(description=f"{context.partition_key}: {sig.name} skipped but its outputs are required: {result.reason}")
        context.log.warning(f"{context.partition_key}: {result.reason}")
        label = "title" if sig.partitions == TITLES else "partition"
        for o in sig.outputs:
            yield from checks.skipped(o.name, o.rules, result.reason, context.partition_key, label)
            if sig.partitions == TITLES:
                yield from checks.skipped(o.name, [CheckRule(SLA_CHECK, "", lambda v: (True, {}))], result.reason, context.partition_key, label)
        return
    for o in sig.outputs:
        r = results[o.name]
        rules = r.rules if r.rules is not None else o.rules
        if [x.name for x in rules] != [x.name for x in o.rules]:
            raise ValueError(f"{sig.name}: run-time rules of {o.name} differ from the declared ones")
        yield from checks.evaluate(o.name, rules, r.value if r.check_value is None else r.check_value, context.partition_key,
                                   "title" if sig.partitions == TITLES else "partition")
        if sig.partitions == TITLES:
            yield sla_result(o.name, sig.name, context.partition_key, catalog, policy)
