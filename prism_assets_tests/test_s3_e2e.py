"""Production-shaped run: deliveries and artifacts on S3 (moto's server on loopback), a title
found by the sensor and materialized, its artifact read back through the S3 API."""

import json
from datetime import date

from dagster import DagsterInstance, build_sensor_context

from prism_assets.cli.common import qc_gate_only
from prism_assets.core.artifacts import ArtifactStore
from prism_assets.definitions import build_definitions, build_resources
from prism_assets.settings import PrismSettings


def test_sensor_to_artifact_on_s3(data_dir, s3_env, media, monkeypatch):
    endpoint, bucket, client = s3_env
    monkeypatch.setenv("PRISM_DELIVERY_ROOT", f"s3://{bucket}/deliveries")
    monkeypatch.setenv("PRISM_ARTIFACT_ROOT", f"s3://{bucket}/artifacts")
    settings = PrismSettings.from_env()
    day = date.today().isoformat()  # the sensor's first listing launches nothing older than a few days
    client.upload_file(str(media / "qc_composite.mp4"), bucket, f"deliveries/{day}/qc_s3/qc_s3.mp4")
    client.put_object(Bucket=bucket, Key=f"deliveries/{day}/qc_s3/sidecar.json", Body=json.dumps({"title": "QC on S3", "expected_languages": ["en"]}))
    defs = build_definitions(settings)
    resources = build_resources(settings)
    instance = DagsterInstance.ephemeral()
    with build_sensor_context(instance=instance, definitions=defs, sensor_name="delivery_sensor", resources=resources) as ctx:
        tick = defs.get_sensor_def("delivery_sensor")(ctx)
    (req,) = tick.run_requests
    assert req.tags["prism/delivery_uri"] == f"s3://{bucket}/deliveries/{day}/qc_s3/qc_s3.mp4"
    instance.add_dynamic_partitions("titles", ["qc_s3"])
    res = defs.resolve_job_def("process_title").execute_in_process(partition_key="qc_s3", instance=instance, tags=req.tags, raise_on_error=False)
    assert qc_gate_only(res)  # the composite fails QC on purpose: everything ran, the run ends failed at release only
    key = "artifacts/titles/qc_s3/source_video.json"
    title = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert title["frame_count"] == 744 and title["title_name"] == "QC on S3" and title["source_uri"].startswith("s3://")
    assert resources["storage"].artifacts().read(ArtifactStore.base_key("source_video", "qc_s3"))["fps"] == 24.0
    mat = res.asset_materializations_for_node("source_video")[0]
    assert mat.metadata["artifact_uri"].value == f"s3://{bucket}/{key}"
