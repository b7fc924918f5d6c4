"""Runtime settings of a Prism deployment, read from the environment in ONE place.

Everything has an embedded default for one machine (local folders under the project's
`.prism/` data dir, a SQLite catalog). Production sets the same variables to S3 URIs and a
MariaDB URL (see docs/deploy.md and deploy/). Nothing else in the code location reads the
environment while the Definitions are built: `build_definitions(settings)` is driven by this
object only (tests pass their own).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from .domains import DOMAINS

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The checkout holding workspace.yaml, or the current directory for an installed package."""
    env = os.environ.get("PRISM_PROJECT_ROOT")
    if env:
        return Path(env).resolve()
    candidate = PACKAGE_DIR.parent
    if (candidate / "workspace.yaml").exists():
        return candidate
    return Path.cwd().resolve()


def default_data_dir() -> Path:
    return Path(os.environ.get("PRISM_DATA_DIR") or project_root() / ".prism").resolve()


PROFILES = ("dev", "prod")


def profile_yaml(name: str) -> dict:
    """A profile's YAML as written (prism_assets/profiles/<name>.yaml); read by PrismProfile and by the API, which
    imports no Dagster."""
    import yaml

    path = PACKAGE_DIR / "profiles" / f"{name}.yaml"
    if not path.exists():
        raise ValueError(f"unknown profile {name!r}: no {path.name}")
    return yaml.safe_load(path.read_text()) or {}
EXECUTORS = ("inprocess", "threads", "multiprocess", "celery", "ecs")


def _number(env, name: str, default, kind=int):
    """`env[name]` as `kind` (int or float); unset or empty: `default`; anything else: one-line error."""
    raw = env.get(name)
    try:
        return kind(raw) if raw not in (None, "") else kind(default)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not {'an integer' if kind is int else 'a number'}") from None


def _catalog_from_parts(env) -> str | None:
    """The catalog URL from PRISM_CATALOG_HOST/_PORT/_USER/_DB and PRISM_CATALOG_PASSWORD (the ECS tasks of deploy/infra:
    the password is injected from the rotated Secrets Manager secret, so it cannot live in a stored URL)."""
    host = (env.get("PRISM_CATALOG_HOST") or "").strip()
    if not host:
        return None
    from urllib.parse import quote

    user, db = env.get("PRISM_CATALOG_USER") or "prism", env.get("PRISM_CATALOG_DB") or "prism"
    port = _number(env, "PRISM_CATALOG_PORT", 3306)
    password = env.get("PRISM_CATALOG_PASSWORD") or ""
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    return f"mysql+pymysql://{auth}@{host}:{port}/{quote(db, safe='')}?charset=utf8mb4"


def _list(raw: str | None) -> tuple[str, ...]:
    """A comma-separated environment value as a tuple (blanks dropped)."""
    return tuple(x.strip() for x in (raw or "").split(",") if x.strip())



# -- model sources and offline use (core/models.py): every model override of the environment is read here ----------------
# PRISM_MODEL_<FAMILY> sets a family's source (`package:<dist>`, `path:<dir or file>`, `hub:<id>[@revision]`, or a bare
# path / hub name; empty: none), PRISM_MODEL_<FAMILY>_<KEY> one of its other settings. The older variables below are
# aliases and keep working; the new name and an alias set to different values is an error, not a guess.
MODEL_FAMILIES = ("whisper", "whisper_language", "whisper_align", "clip", "text", "diarization", "vad")
MODEL_ENV_ALIASES: dict[tuple[str, str], tuple[str, ...]] = {
    ("whisper", "source"): ("PRISM_WHISPER_MODEL",),
    ("whisper_language", "source"): ("PRISM_WHISPER_LANGUAGE_MODEL",),
    ("whisper_align", "source"): ("PRISM_WHISPER_ALIGN_MODEL",),
    ("clip", "source"): ("PRISM_CLIP_PRETRAINED",),
    ("clip", "model"): ("PRISM_CLIP_MODEL",),
    ("clip", "random_init"): ("PRISM_CLIP_RANDOM_INIT",),
    ("clip", "engine"): ("PRISM_CLIP_ENGINE",),
    ("clip", "onnx_dir"): ("PRISM_CLIP_ONNX_DIR",),
    ("text", "source"): ("PRISM_TEXT_MODEL",),
    ("diarization", "source"): ("PRISM_DIARIZATION_MODEL",),
}
OFFLINE_VARS = ("PRISM_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")  # the first is ours; the others Hugging Face's
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_flag(name: str, value: str) -> bool:
    """A yes/no environment value (1/true/yes/on, 0/false/no/off/empty); anything else: one-line error."""
    v = value.strip().lower()
    if v in _TRUE or v in _FALSE:
        return v in _TRUE
    raise ValueError(f"{name}={value!r}: expected 1/true or 0/false")


def model_env_name(family: str, key: str = "source") -> str:
    """The variable of a model setting: PRISM_MODEL_<FAMILY> for its source, PRISM_MODEL_<FAMILY>_<KEY> otherwise."""
    if family not in MODEL_FAMILIES:
        raise ValueError(f"unknown model family {family!r}: expected one of {', '.join(MODEL_FAMILIES)}")
    return f"PRISM_MODEL_{family.upper()}" + ("" if key == "source" else f"_{key.upper()}")


def model_override(family: str, key: str = "source", env=None) -> tuple[str, str] | None:
    """(variable, value) overriding a model setting, or None when no variable sets it. An empty value is an override too
    (the setting switched off). PRISM_MODEL_<FAMILY>[_<KEY>] and an older alias set to different values: one-line error."""
    env = os.environ if env is None else env
    names = (model_env_name(family, key), *MODEL_ENV_ALIASES.get((family, key), ()))
    found = [(n, env[n]) for n in names if n in env]
    if len({v.strip() for _, v in found}) > 1:
        raise ValueError("conflicting model overrides: " + ", ".join(f"{n}={v!r}" for n, v in found) + f"; set only {names[0]}")
    return (found[0][0], found[0][1].strip()) if found else None


def models_offline(env=None) -> tuple[bool, str | None]:
    """(offline, the variable that says so): PRISM_OFFLINE, else HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE. Offline, a hub
    source is served from the local Hugging Face cache only. PRISM_OFFLINE=0 with HF_HUB_OFFLINE=1 is a contradiction
    (huggingface_hub would refuse the download anyway): one-line error."""
    env = os.environ if env is None else env
    flags = {n: env_flag(n, env[n]) for n in OFFLINE_VARS if n in env}
    if "PRISM_OFFLINE" in flags:
        hf_on = [n for n in OFFLINE_VARS[1:] if flags.get(n)]
        if not flags["PRISM_OFFLINE"] and hf_on:
            raise ValueError(f"PRISM_OFFLINE=0 contradicts {hf_on[0]}=1: unset one of them")
        return flags["PRISM_OFFLINE"], "PRISM_OFFLINE"
    on = [n for n, v in flags.items() if v]
    return (True, on[0]) if on else (False, None)


def models_dir(env=None) -> Path:
    """Where Prism writes model files it builds (the assembled Whisper base, the checksum cache):
    `$PRISM_DATA_DIR/models`, else `~/.cache/prism/models`."""
    env = os.environ if env is None else env
    d = env.get("PRISM_DATA_DIR")
    return (Path(d) / "models") if d else Path.home() / ".cache" / "prism" / "models"

# -- CPU sharing while a run's steps overlap (core/cpu_share.py): read when a run starts, not with the Definitions ------
# PRISM_OMP_WAIT_POLICY: how the idle OpenMP threads of CTranslate2 (Whisper) and torch wait, set as OMP_WAIT_POLICY by
# the threads executor before a step loads them (both wheels bundle GNU libgomp, which reads it once, when it loads).
# `passive` (default): they sleep at once, so the cores go to the run's other steps; `active`: they spin; `library`:
# left to libgomp (spin ~300,000 rounds, then sleep). An OMP_WAIT_POLICY already in the environment wins.
# PRISM_BACKGROUND_NICE: the niceness (0-19) added to the subprocesses of steps off a title's critical path (the proxy's
# ffmpeg, the OCR's tesseract processes), so that the critical path (audio_pass -> transcript) gets the cores first;
# 0: none. Default 10.
OMP_WAIT_POLICIES = ("passive", "active", "library")


def omp_wait_policy(env=None) -> str:
    """PRISM_OMP_WAIT_POLICY (passive | active | library; unset or empty: passive); anything else: one-line error."""
    env = os.environ if env is None else env
    raw = (env.get("PRISM_OMP_WAIT_POLICY") or "passive").strip().lower()
    if raw not in OMP_WAIT_POLICIES:
        raise ValueError(f"PRISM_OMP_WAIT_POLICY={raw!r}: choose one of {', '.join(OMP_WAIT_POLICIES)}")
    return raw


def background_nice(env=None) -> int:
    """PRISM_BACKGROUND_NICE (0-19; unset or empty: 10); anything else: one-line error."""
    env = os.environ if env is None else env
    n = _number(env, "PRISM_BACKGROUND_NICE", 10)
    if not 0 <= n <= 19:
        raise ValueError(f"PRISM_BACKGROUND_NICE={n}: expected 0 (none) to 19")
    return n


@dataclass(frozen=True)
class PrismSettings:
    data_dir: Path
    delivery_root: str
    artifact_root: str
    catalog_url: str
    profile: str = "dev"
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    # queue-based delivery (production): the SQS queue fed by the delivery bucket's S3 event notifications; unset: the
    # delivery sensor lists the delivery root (deliveries/queue.py)
    delivery_queue_url: str = ""
    sensor_max_keys_per_tick: int = 20_000
    sensor_lookback_days: int = 3
    sensor_interval_s: int = 60
    sensor_first_listing_days: int = 3  # on a sensor's first listing, deliveries older than this are not launched
    # asset-level freshness (the platform's heartbeat: no title at all materialized in the window)
    freshness_warn_hours: float = 12.0
    freshness_fail_hours: float = 24.0
    # per-title SLA: every per-title output within this long of the title's delivery (core/sla.py)
    title_sla_warn_hours: float = 2.0
    title_sla_fail_hours: float = 6.0
    title_sla_lookback_days: int = 7
    title_sla_interval_s: int = 300
    # steps: retries of unexpected (transient) errors, the per-title job's executor, routing tags
    step_retries: int = 3
    step_retry_delay_s: int = 10
    # a title or season run still going after this long is failed by run monitoring (tag dagster/max_runtime): a
    # run whose worker is alive but waits on a step that will never come back (a lost Celery task, a worker on
    # other code) ends instead of holding its pool slots for ever
    run_max_runtime_s: int = 4 * 3600
    executor: str = "threads"
    # steps of one run at once (threads / multiprocess executors); 0: the machine's cores
    run_steps: int = 0
    celery_queue_prefix: str = ""
    ecs_gpu_capacity_provider: str = "prism-gpu"
    # signal domains in the code location (prism_assets/domains.py), plus PRISM_EXTRA_DOMAINS
    domains: tuple[str, ...] = DOMAINS
    # serving (prism_assets/index, prism_assets/serving): the cross-title index and the HTTP API / viewer
    index_uri: str = ""  # LanceDB: a local folder (default <data_dir>/index) or s3://bucket/prefix
    api_keys: tuple[str, ...] = field(default=(), repr=False)  # never printed; read-scope API keys; empty: the API is open (dev), `prism serve` says so
    api_keys_secret: str | None = None  # AWS Secrets Manager id holding the keys (production), read by the API at start
    api_cors_origins: tuple[str, ...] = ()
    # a serving process holds the search candidates' columns of index tables up to this many rows in memory (~290 bytes
    # a row per process, twice that while a newer version is loaded; index/resident.py); 0: never
    serve_resident_rows: int = 1_000_000
    api_public_url: str = "http://127.0.0.1:8080"  # where the viewer is reached (links from the Dagster UI)
    dagster_public_url: str = "http://127.0.0.1:3000"  # where the Dagster UI is reached (links from the viewer's day pages)
    # CloudWatch custom metrics (core/metrics.py): the namespace (deploy/infra: "Prism"); empty: no metrics sensor
    metrics_namespace: str = ""
    metrics_environment: str = "dev"  # their dimension Environment=<env> (PRISM_ENV)
    # settings on top of the profile YAML (section -> values), e.g. {"qc": {"gate": "block"}} in a test
    profile_overrides: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, env=None, **overrides) -> "PrismSettings":
        env = os.environ if env is None else env
        data_dir = Path(overrides.pop("data_dir", None) or env.get("PRISM_DATA_DIR") or default_data_dir()).resolve()
        extra_domains = tuple(d.strip() for d in env.get("PRISM_EXTRA_DOMAINS", "").split(",") if d.strip())
        values = dict(
            data_dir=data_dir,
            delivery_root=env.get("PRISM_DELIVERY_ROOT") or str(data_dir / "deliveries"),
            artifact_root=env.get("PRISM_ARTIFACT_ROOT") or str(data_dir / "artifacts"),
            catalog_url=env.get("PRISM_CATALOG_URL") or _catalog_from_parts(env) or f"sqlite:///{data_dir / 'catalog.db'}",
            profile=env.get("PRISM_PROFILE", "dev"),
            s3_endpoint_url=env.get("PRISM_S3_ENDPOINT_URL") or None,
            s3_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            delivery_queue_url=(env.get("PRISM_DELIVERY_QUEUE_URL") or "").strip(),
            sensor_max_keys_per_tick=_number(env, "PRISM_SENSOR_MAX_KEYS_PER_TICK", 20_000),
            sensor_lookback_days=_number(env, "PRISM_SENSOR_LOOKBACK_DAYS", 3),
            sensor_interval_s=_number(env, "PRISM_SENSOR_INTERVAL_S", 60),
            sensor_first_listing_days=_number(env, "PRISM_SENSOR_FIRST_LISTING_DAYS", 3),
            freshness_warn_hours=_number(env, "PRISM_FRESHNESS_WARN_HOURS", 12, float),
            freshness_fail_hours=_number(env, "PRISM_FRESHNESS_FAIL_HOURS", 24, float),
            title_sla_warn_hours=_number(env, "PRISM_TITLE_SLA_WARN_HOURS", 2, float),
            title_sla_fail_hours=_number(env, "PRISM_TITLE_SLA_FAIL_HOURS", 6, float),
            title_sla_lookback_days=_number(env, "PRISM_TITLE_SLA_LOOKBACK_DAYS", 7),
            title_sla_interval_s=_number(env, "PRISM_TITLE_SLA_INTERVAL_S", 300),
            step_retries=_number(env, "PRISM_STEP_RETRIES", 3),
            step_retry_delay_s=_number(env, "PRISM_STEP_RETRY_DELAY_S", 10),
            run_max_runtime_s=_number(env, "PRISM_RUN_MAX_RUNTIME_S", 4 * 3600),
            executor=env.get("PRISM_EXECUTOR") or "threads",
            run_steps=_number(env, "PRISM_RUN_STEPS", 0),
            celery_queue_prefix=env.get("PRISM_CELERY_QUEUE_PREFIX", ""),
            ecs_gpu_capacity_provider=env.get("PRISM_ECS_GPU_CAPACITY_PROVIDER") or "prism-gpu",
            domains=tuple(dict.fromkeys(DOMAINS + extra_domains)),
            index_uri=env.get("PRISM_INDEX_URI") or str(data_dir / "index"),
            api_keys=_list(env.get("PRISM_API_KEYS")),
            api_keys_secret=env.get("PRISM_API_KEYS_SECRET") or None,
            api_cors_origins=_list(env.get("PRISM_API_CORS_ORIGINS")),
            serve_resident_rows=_number(env, "PRISM_SERVE_RESIDENT_ROWS", 1_000_000),
            api_public_url=(env.get("PRISM_API_PUBLIC_URL") or "http://127.0.0.1:8080").rstrip("/"),
            dagster_public_url=(env.get("PRISM_DAGSTER_PUBLIC_URL") or "http://127.0.0.1:3000").rstrip("/"),
            metrics_namespace=(env.get("PRISM_METRICS_NAMESPACE") or "").strip(),
            metrics_environment=(env.get("PRISM_ENV") or "").strip() or "dev",
        )
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    @property
    def index_location(self) -> str:
        """The LanceDB index: PRISM_INDEX_URI, or `<data_dir>/index`."""
        return self.index_uri or str(Path(self.data_dir) / "index")

    @property
    def scratch_dir(self) -> Path:
        """Local scratch: staged S3 sources, step work folders (removed after each step or dead run)."""
        return Path(self.data_dir) / "scratch"

    def validate(self) -> None:
        if any(len(k) < 16 for k in self.api_keys):
            raise ValueError("PRISM_API_KEYS: every key must have at least 16 characters")
        if self.run_max_runtime_s <= 0:
            raise ValueError(f"PRISM_RUN_MAX_RUNTIME_S must be > 0, got {self.run_max_runtime_s}")
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}: choose one of {', '.join(PROFILES)}")
        if self.executor not in EXECUTORS:
            raise ValueError(f"unknown PRISM_EXECUTOR {self.executor!r}: choose one of {', '.join(EXECUTORS)}")
        if self.serve_resident_rows < 0:
            raise ValueError(f"PRISM_SERVE_RESIDENT_ROWS={self.serve_resident_rows}: expected 0 (none) or a number of rows")
        if self.run_steps < 0:
            raise ValueError(f"PRISM_RUN_STEPS={self.run_steps}: expected 0 (the machine's cores) or a positive number of steps")
        if self.delivery_queue_url:
            if not self.delivery_queue_url.startswith(("https://", "http://")):
                raise ValueError(f"PRISM_DELIVERY_QUEUE_URL={self.delivery_queue_url!r} is not an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)")
            if not self.delivery_root.startswith("s3://"):
                raise ValueError("PRISM_DELIVERY_QUEUE_URL needs an s3:// PRISM_DELIVERY_ROOT: the queue carries that bucket's S3 event notifications")
        if not 0 < self.title_sla_warn_hours <= self.title_sla_fail_hours:
            raise ValueError(f"title SLA windows must satisfy 0 < warn ({self.title_sla_warn_hours} h) <= fail ({self.title_sla_fail_hours} h)")

    def with_(self, **changes) -> "PrismSettings":
        """A copy with some fields changed (validated)."""
        s = replace(self, **changes)
        s.validate()
        return s


def redact_url(url: str) -> str:
    """A database / broker URL without its password (for logs and console output)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy parses: hide everything between :// and @
        import re

        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
