"""The code location as Dagster sees it: every asset checked (per partition), fresh, pooled and routed
by the one policy; the domains register themselves; the build is driven by its settings only."""

import pytest
from dagster import DynamicPartitionsDefinition, TimeWindowPartitionsDefinition

from prism_assets.core.policy import PARTITIONS_TAG, STEP_TAG
from prism_assets.core.routing import CPU_TAG, DEVICE_TAG, QUEUE_TAG
from prism_assets.core.sla import SLA_CHECK
from prism_assets.definitions import build_definitions, per_title_assets
from prism_assets.settings import PrismSettings

POOLS = {"source_video": "decode", "visual_pass": "decode", "embeddings": "gpu", "posters": "gpu", "transcript": "gpu",
         "audio_pass": "decode", "shots": None, "keyframes": None, "shot_embeddings": None, "audio_analysis": None, "qc": None,
         "subtitles": None, "localization": None, "speaker_turns": "gpu", "text": None, "scenes": None, "structure": None, "fingerprint": None, "release": None,
         "proxy": "decode", "search_index": "index"}
BACKGROUND_STEPS = {"proxy"}  # niced, nothing on the critical path waits for it: beside the run's step slots


def test_every_asset_checked_partitioned_fresh_and_versioned(settings):
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"source_video", "delivery_manifest", "qc_report", "embeddings", "shot_embeddings"} <= keys
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        ad = graph.assets_def_for_key(key)
        assert node.freshness_policy is not None, f"{key} has no freshness policy"
        assert node.code_version, f"{key} has no code_version"
        specs = [s for s in ad.check_specs if s.asset_key == key]
        assert specs, f"{key} has no asset checks"
        for spec in specs:  # every evaluation is stored for its title / day: the UI's Checks tab names it
            assert spec.partitions_def == node.partitions_def, f"{key}.{spec.name} is not partitioned like its asset"
        if node.tags[PARTITIONS_TAG] == "titles":
            assert isinstance(node.partitions_def, DynamicPartitionsDefinition) and node.partitions_def.name == "titles"
            assert SLA_CHECK in {s.name for s in specs}, f"{key} has no per-title SLA check"
            assert type(node.freshness_policy).__name__ == "TimeWindowFreshnessPolicy"
        elif node.tags[PARTITIONS_TAG] == "seasons":  # spans titles: one dynamic partition per season of a series
            assert isinstance(node.partitions_def, DynamicPartitionsDefinition) and node.partitions_def.name == "seasons"
            assert type(node.freshness_policy).__name__ == "TimeWindowFreshnessPolicy"
        else:
            assert isinstance(node.partitions_def, TimeWindowPartitionsDefinition)
            assert type(node.freshness_policy).__name__ == "CronFreshnessPolicy"


def test_steps_pools_routing_and_retries_from_one_policy(settings):
    defs = build_definitions(settings)
    nodes = {n.name: n for n in defs.resolve_job_def("process_title").graph.node_defs}
    assert set(nodes) == set(POOLS), "declare the new step's pool in POOLS"
    for name, node in nodes.items():
        assert node.pool == POOLS[name], f"{name} runs in pool {node.pool}, expected {POOLS[name]}"
        assert node.tags[DEVICE_TAG] == ("gpu" if POOLS[name] == "gpu" else "cpu")
        assert node.tags[QUEUE_TAG] == ("gpu" if POOLS[name] == "gpu" else "cpu")
        assert node.retry_policy is not None and node.retry_policy.max_retries == settings.step_retries, name
        assert node.tags[CPU_TAG] == ("background" if name in BACKGROUND_STEPS else "foreground"), name
    # single-output steps are named after their asset, so the step is found by the asset's name
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        ad = graph.assets_def_for_key(key)
        assert node.tags[STEP_TAG] == ad.op.name
        if len(ad.keys) == 1:
            assert ad.op.name == key.to_user_string()


def test_process_job_is_every_per_title_asset(settings):
    defs = build_definitions(settings)
    job = defs.resolve_job_def("process_title")
    assert job.partitions_def.name == "titles"
    in_job = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    graph = defs.resolve_asset_graph()
    per_title = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).tags[PARTITIONS_TAG] == "titles"}
    assert in_job == per_title
    assert defs.get_sensor_def("delivery_sensor") and defs.get_sensor_def("manifest_fanout_sensor") and defs.get_sensor_def("title_sla_sensor")
    assert defs.get_schedule_def("daily_batch_schedule") and defs.get_schedule_def("daily_qc_report_schedule")
    season = defs.resolve_job_def("season_structure_job")
    assert season.partitions_def.name == "seasons" and {k.to_user_string() for k in season.asset_layer.executable_asset_keys} == {"season_structure"}
    assert defs.get_sensor_def("season_sensor").job_name == "season_structure_job"


def test_build_is_driven_by_its_settings(settings):
    """No decorator reads the environment: two settings objects give two different code locations."""
    a = build_definitions(settings.with_(step_retries=1, celery_queue_prefix="a-", title_sla_warn_hours=1, title_sla_fail_hours=2))
    b = build_definitions(settings.with_(step_retries=5, celery_queue_prefix="b-", profile="prod"))
    na = {n.name: n for n in a.resolve_job_def("process_title").graph.node_defs}
    nb = {n.name: n for n in b.resolve_job_def("process_title").graph.node_defs}
    assert na["embeddings"].retry_policy.max_retries == 1 and nb["embeddings"].retry_policy.max_retries == 5
    assert na["embeddings"].tags[QUEUE_TAG] == "a-gpu" and nb["embeddings"].tags[QUEUE_TAG] == "b-gpu"
    assert a.resolve_implicit_global_asset_job_def().resource_defs["profile"].config_schema  # resources are built
    only_ingest = build_definitions(settings.with_(domains=("prism_assets.deliveries", "prism_assets.ingest")))
    assert {k.to_user_string() for k in only_ingest.resolve_asset_graph().get_all_asset_keys()} == {"delivery_manifest", "source_video"}
    assert per_title_assets([]) == []


def test_module_level_defs_is_the_single_entry():
    import prism_assets.definitions as d

    assert d.defs.resolve_job_def("process_title") is not None


def test_unknown_profile_and_executor_are_rejected(monkeypatch, data_dir):
    monkeypatch.setenv("PRISM_PROFILE", "staging")
    with pytest.raises(ValueError, match="unknown profile"):
        PrismSettings.from_env()
    monkeypatch.setenv("PRISM_PROFILE", "dev")
    monkeypatch.setenv("PRISM_EXECUTOR", "k8s")
    with pytest.raises(ValueError, match="unknown PRISM_EXECUTOR"):
        PrismSettings.from_env()


def test_unknown_domain_is_one_line(settings):
    from prism_assets.core.domain import DomainError

    with pytest.raises(DomainError, match="cannot be imported"):
        build_definitions(settings.with_(domains=("prism_assets.nonexistent",)))
    with pytest.raises(DomainError, match="has no DOMAIN"):
        build_definitions(settings.with_(domains=("prism_assets.core",)))


def test_docs_tables_are_generated_from_the_definitions():
    """docs/architecture.md and docs/schema.md hold the tables `make docs` writes from the code."""
    from prism_assets.docgen import stale

    from .conftest import REPO

    assert stale(REPO / "docs") == [], "docs out of date: run `make docs`"


def test_modules_stay_small_and_domains_use_public_interfaces():
    """No module over 500 lines; no `_private` name imported from another folder of the package."""
    import ast

    from .conftest import REPO

    root = REPO / "prism_assets"
    too_long, private = [], []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if "migrations" in rel.parts:
            continue
        text = path.read_text()
        if text.count("\n") > 500:
            too_long.append(f"{rel}: {text.count(chr(10))} lines")
        pkg = rel.parent.parts
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = list(pkg[: len(pkg) - (node.level - 1)]) if node.level > 1 else list(pkg)
                    target = base + (node.module.split(".") if node.module else [])
                else:
                    if not node.module.startswith("prism_assets"):
                        continue
                    target = node.module.split(".")[1:]
                for alias in node.names:
                    # the importing module's folder vs the folder of what it imports from
                    target_dir = tuple(target[:-1]) if (root.joinpath(*target).with_suffix(".py")).exists() else tuple(target)
                    if alias.name.startswith("_") and not alias.name.startswith("__") and target_dir != pkg:
                        private.append(f"{rel}: {alias.name} from {'.'.join(target)}")
    assert not too_long, too_long
    assert not private, private


def test_benchmarks_and_deploy_import_what_exists():
    """Every `from prism_assets... import name` in benchmarks/ and deploy/ (often inside functions,
    which no test runs) names something that exists."""
    import ast
    import importlib

    from .conftest import REPO

    broken = []
    for path in [*(REPO / "benchmarks").rglob("*.py"), *(REPO / "deploy").rglob("*.py")]:
        if {"node_modules", "cdk.out"} & set(path.parts):  # the npm-installed CDK CLI's templates, synth output
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("prism_assets") and not node.level:
                module = importlib.import_module(node.module)
                broken += [f"{path.relative_to(REPO)}: {node.module}.{a.name}" for a in node.names if not hasattr(module, a.name)
                           and importlib.util.find_spec(f"{node.module}.{a.name}") is None]
    assert not broken, broken


def test_every_asset_carries_its_group_description(settings):
    """Dagster 1.13 has no group descriptions: each asset shows its group's (its domain's) as metadata."""
    from prism_assets.core.domain import load_domains
    from prism_assets.definitions import GROUP_METADATA

    about = {d.name: d.description for d in load_domains(settings.domains)}
    graph = build_definitions(settings).resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.metadata.get(GROUP_METADATA) == f"{node.group_name}: {about[node.group_name]}", key


def test_runs_have_a_max_runtime_run_monitoring_enforces(settings):
    """A run whose worker is alive but waits for ever (a lost Celery task, a worker on other code) is failed by
    run monitoring after `run_max_runtime_s`: title and season runs carry dagster/max_runtime, wherever they are
    launched from (the tag is on the job: UI, backfills, sensors, CLI)."""
    from pathlib import Path

    import yaml

    defs = build_definitions(settings.with_(run_max_runtime_s=5400))
    for job in ("process_title", "season_structure_job"):
        assert defs.resolve_job_def(job).tags["dagster/max_runtime"] == "5400", job
    root = Path(__file__).resolve().parents[1]
    for cfg in ("dagster.yaml", "deploy/dagster.yaml"):
        assert yaml.safe_load((root / cfg).read_text())["run_monitoring"]["enabled"] is True, cfg
    with pytest.raises(ValueError, match="PRISM_RUN_MAX_RUNTIME_S"):
        PrismSettings.from_env(env={"PRISM_RUN_MAX_RUNTIME_S": "0"})


def test_catalog_url_from_the_parts_the_ecs_tasks_get():
    """deploy/infra gives the tasks PRISM_CATALOG_HOST/_PORT/_USER/_DB and the rotated password on its own."""
    from prism_assets.settings import PrismSettings

    env = {"PRISM_CATALOG_HOST": "db.internal", "PRISM_CATALOG_PORT": "3307", "PRISM_CATALOG_USER": "prism", "PRISM_CATALOG_DB": "catalog",
           "PRISM_CATALOG_PASSWORD": "p@ss/w:rd"}
    s = PrismSettings.from_env(env=env)
    assert s.catalog_url == "mysql+pymysql://prism:p%40ss%2Fw%3Ard@db.internal:3307/catalog?charset=utf8mb4"
    assert PrismSettings.from_env(env={**env, "PRISM_CATALOG_URL": "sqlite:///x.db"}).catalog_url == "sqlite:///x.db"
    assert PrismSettings.from_env(env={}).catalog_url.startswith("sqlite:///")
    from sqlalchemy.engine import make_url

    u = make_url(s.catalog_url)
    assert (u.password, u.host, u.port, u.database) == ("p@ss/w:rd", "db.internal", 3307, "catalog")


def test_a_catalog_password_from_its_own_variable_is_never_copied_into_the_definitions(monkeypatch, tmp_path):
    from dagster import EnvVar

    from prism_assets.definitions import platform_resources
    from prism_assets.resources import PrismProfile
    from prism_assets.settings import PrismSettings

    env = {"PRISM_CATALOG_HOST": "db.internal", "PRISM_CATALOG_PASSWORD": "s3cret-rotated", "PRISM_DATA_DIR": str(tmp_path)}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("PRISM_CATALOG_URL", raising=False)
    settings = PrismSettings.from_env()
    cat = platform_resources(settings, PrismProfile(name="dev"), for_definitions=True)["catalog"]
    assert "s3cret" not in cat.url and cat.url.startswith("mysql+pymysql://prism@db.internal:3306/")
    assert isinstance(cat.password, EnvVar) and cat.password.env_var_name == "PRISM_CATALOG_PASSWORD"


@pytest.mark.integration
def test_catalog_resource_joins_url_and_password_on_mariadb():
    from sqlalchemy.engine import URL, make_url

    from prism_assets.resources import CatalogResource

    from .conftest import scratch_mariadb

    with scratch_mariadb(password="Rotated-pw_123") as url:
        u = make_url(url)
        bare = URL.create(u.drivername, username=u.username, host=u.host, port=u.port, database=u.database, query=u.query)
        cat = CatalogResource(url=bare.render_as_string(hide_password=False), password="Rotated-pw_123").get()
        assert cat.qc_result("nothing") is None  # connected and migrated with the joined password
