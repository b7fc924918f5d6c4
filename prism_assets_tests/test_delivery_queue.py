"""Queue-based delivery (prism_assets/deliveries/queue.py): the delivery sensor consuming S3 event
notifications from SQS, against moto's server (S3 bucket notification -> SQS queue with a dead-letter
queue, redrive after 2 receives for speed) and, for the message parsing, without any service.

The tick must give the listing's run requests (same run key: title, file, ETag), delete a message only
on the tick after its run request, and leave poison messages (malformed body, key outside the layout,
deleted object) to the dead-letter queue with one warning line each, without blocking the good ones.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import date

import pytest

from prism_assets.core.store import S3Store
from prism_assets.deliveries.queue import (
    Poison,
    QueueCursor,
    event_keys,
    is_queue_cursor,
    poison_retry_s,
    queue_endpoint,
    queue_region,
    visibility_timeout_s,
)
from prism_assets.settings import PrismSettings

from .test_sensor import Harness, new_titles, run_titles


# -- no service ----------------------------------------------------------------------------------------
def _event(key: str, bucket: str = "media", name: str = "ObjectCreated:Put") -> str:
    return json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": name, "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1, "eTag": "x"}}}]})


@pytest.mark.unit
def test_event_keys_parse_s3_events_and_reject_poison():
    store = S3Store("s3://media/deliveries", client=None)
    assert event_keys(_event("deliveries/2024-05-01/T1/v.mp4"), store) == ["2024-05-01/T1/v.mp4"]
    assert event_keys(_event("deliveries/2024-05-01/T1/my+film%282%29.mp4"), store) == ["2024-05-01/T1/my film(2).mp4"]  # S3 URL-encodes keys
    assert event_keys(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "media"}), store) == []
    assert event_keys(_event("deliveries/2024-05-01/T1/sidecar.json"), store) == []  # read by the video's run
    assert event_keys(_event("deliveries/2024-05-01/T1/.partial.mp4"), store) == []  # hidden: the listing skips it too
    assert event_keys(_event("deliveries/2024-05-01/T1/v.mp4", name="ObjectRemoved:Delete"), store) == []
    poison = {
        "not json {": "not JSON",
        "[1, 2]": "not a JSON object",
        json.dumps({"Records": []}): "no Records",
        json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}): "malformed",
        _event("deliveries/misc/readme.txt"): "outside the delivery layout",
        _event("deliveries/2024-05-01/T1/notes.txt"): "outside the delivery layout",
        _event("deliveries/2024-13-01/T1/v.mp4"): "outside the delivery layout",
        _event("elsewhere/2024-05-01/T1/v.mp4"): "outside the delivery root",
        _event("deliveries/2024-05-01/T1/v.mp4", bucket="other"): "bucket 'other'",
    }
    for body, why in poison.items():
        with pytest.raises(Poison, match=why.replace("(", r"\(")):
            event_keys(body, store)


@pytest.mark.unit
def test_cursor_endpoint_and_timeouts():
    assert not is_queue_cursor(None) and not is_queue_cursor('{"after": null}') and not is_queue_cursor("garbage")
    c = QueueCursor(ack=[["id-1", "handle-1"]])
    assert is_queue_cursor(c.dumps()) and QueueCursor.parse(c.dumps()).ack == [["id-1", "handle-1"]]
    assert QueueCursor.parse('{"after": "2024-05-01/x", "floor": null}').ack == []  # the listing's cursor: nothing to delete
    assert queue_endpoint("https://sqs.eu-west-1.amazonaws.com/123456789012/prism-prod-delivery") is None
    assert queue_endpoint("http://127.0.0.1:5000/123456789012/q") == "http://127.0.0.1:5000"
    assert queue_region("https://sqs.eu-west-1.amazonaws.com/1/q", None) == "eu-west-1" and queue_region("https://sqs.eu-west-1.amazonaws.com/1/q", "us-east-1") == "us-east-1"
    assert visibility_timeout_s(60) == 600 and visibility_timeout_s(1) == 300 and poison_retry_s(60) == 60


@pytest.mark.unit
def test_queue_url_needs_an_s3_delivery_root(tmp_path):
    env = {"PRISM_DATA_DIR": str(tmp_path), "PRISM_DELIVERY_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/q"}
    with pytest.raises(ValueError, match="needs an s3:// PRISM_DELIVERY_ROOT"):
        PrismSettings.from_env(env)
    with pytest.raises(ValueError, match="not an SQS queue URL"):
        PrismSettings.from_env({**env, "PRISM_DELIVERY_ROOT": "s3://b/deliveries", "PRISM_DELIVERY_QUEUE_URL": "prism-dev-delivery"})
    s = PrismSettings.from_env({**env, "PRISM_DELIVERY_ROOT": "s3://b/deliveries"})
    assert s.delivery_queue_url == env["PRISM_DELIVERY_QUEUE_URL"]
    assert PrismSettings.from_env({"PRISM_DATA_DIR": str(tmp_path)}).delivery_queue_url == ""  # the embedded default lists


# -- moto server -----------------------------------------------------------------------------------------
class Queues:
    """The delivery queue and its DLQ on moto, the bucket's ObjectCreated notifications under deliveries/."""

    def __init__(self, endpoint: str, bucket: str, s3, max_receive: int = 2):
        import boto3

        self.sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
        name = f"prism-test-{uuid.uuid4().hex[:8]}"
        self.dlq = self.sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=self.dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.url = self.sqs.create_queue(QueueName=f"{name}-delivery", Attributes={
            "VisibilityTimeout": "300", "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive})})["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
            {"QueueArn": arn, "Events": ["s3:ObjectCreated:*"], "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "deliveries/"}]}}}]})

    def depth(self, url: str | None = None) -> tuple[int, int]:
        """(visible, in flight) messages of the queue (default: the delivery queue)."""
        a = self.sqs.get_queue_attributes(QueueUrl=url or self.url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])

    def dlq_bodies(self) -> list[str]:
        out = []
        while True:
            msgs = self.sqs.receive_message(QueueUrl=self.dlq, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages") or []
            if not msgs:
                return out
            out += [m["Body"] for m in msgs]


@pytest.fixture
def qh(data_dir, s3_env, monkeypatch):
    """(harness on an S3 delivery root with the queue configured, queues)."""
    endpoint, bucket, client = s3_env
    monkeypatch.setenv("PRISM_SENSOR_FIRST_LISTING_DAYS", "100000")
    monkeypatch.setenv("PRISM_SENSOR_INTERVAL_S", "1")  # poison messages come back after 1 s
    monkeypatch.setenv("PRISM_DELIVERY_ROOT", f"s3://{bucket}/deliveries")
    monkeypatch.setenv("PRISM_ARTIFACT_ROOT", f"s3://{bucket}/artifacts")
    queues = Queues(endpoint, bucket, client)
    monkeypatch.setenv("PRISM_DELIVERY_QUEUE_URL", queues.url)
    h = Harness("s3", data_dir, client=client, bucket=bucket)
    assert h.settings.delivery_queue_url == queues.url
    yield h, queues
    h.instance.dispose()


def _warnings(capfd) -> list[str]:
    """The poison warnings the sensor logged since the last call (Dagster's log handler writes to stderr)."""
    return _warnings_in(capfd.readouterr().err)


def _warnings_in(err: str) -> list[str]:
    return [line for line in err.splitlines() if " - WARNING - " in line and "delivery queue: poison" in line]


def test_queue_tick_gives_the_listing_run_request_and_deletes_the_message_next_tick(qh, monkeypatch):
    h, q = qh
    day = date.today().isoformat()
    h.put(f"{day}/QA/qa film.mp4", b"video bytes")
    h.put(f"{day}/QA/sidecar.json", b'{"title": "QA"}')  # asks for nothing: deleted in the same tick

    first = h.tick(apply=False)
    (req,) = first.run_requests
    assert new_titles(first) == ["QA"] and req.partition_key == "QA"
    assert req.tags["prism/delivery_uri"] == h.uri(f"{day}/QA/qa film.mp4")
    assert len(json.loads(first.cursor)["ack"]) == 1 and q.depth() == (0, 1)  # the video's message in flight; test event, sidecar deleted

    # the listing path asks for the same run (run key, tags, partition)
    monkeypatch.delenv("PRISM_DELIVERY_QUEUE_URL")
    h.build()
    listed = h.tick(apply=False)
    (lreq,) = listed.run_requests
    assert (lreq.run_key, lreq.tags, lreq.partition_key) == (req.run_key, req.tags, req.partition_key)
    monkeypatch.setenv("PRISM_DELIVERY_QUEUE_URL", q.url)
    h.build()

    assert h.apply(first, start_runs=False)  # the daemon records the run request (queued, not started)
    second = h.tick(first.cursor, apply=False)
    assert second.skip_reason is not None and json.loads(second.cursor)["ack"] == [] and q.depth() == (0, 0)  # deleted now

    # a duplicate notification of the same object (same content: same ETag) asks with the same run key: no second run
    h.put(f"{day}/QA/qa film.mp4", b"video bytes")
    third = h.tick(second.cursor, apply=False)
    assert [r.run_key for r in third.run_requests] == [req.run_key] and not new_titles(third)
    assert h.apply(third, start_runs=False) == []
    h.submitted.clear()
    h.apply(first)  # the run starts: its delivery is in the catalog
    h.put(f"{day}/QA/qa film.mp4", b"video bytes")
    fourth = h.tick(third.cursor, apply=False)
    assert fourth.skip_reason is not None and not fourth.run_requests and q.depth() == (0, 0)  # known delivery: deleted at once
    # new content is a new delivery (new ETag): a new run key
    h.put(f"{day}/QA/qa film.mp4", b"other video bytes")
    assert [r.partition_key for r in h.tick(fourth.cursor).run_requests] == ["QA"] and len(h.submitted) == 2  # this run and the first


def test_poison_messages_go_to_the_dlq_with_one_line_each_and_block_nothing(qh, capfd):
    h, q = qh
    day = date.today().isoformat()
    h.put(f"{day}/GONE/v.mp4")
    h.client.delete_object(Bucket=h.bucket, Key=f"deliveries/{day}/GONE/v.mp4")  # deleted after its event
    h.put("misc/readme.txt")  # under the delivery root, outside the layout
    q.sqs.send_message(QueueUrl=q.url, MessageBody="{not json")  # malformed
    h.put(f"{day}/GOOD/v.mp4")

    _warnings(capfd)
    first = h.tick()
    assert run_titles(first) == ["GOOD"] and new_titles(first) == ["GOOD"]
    lines = _warnings(capfd)
    assert len(lines) == 3, lines
    assert sum("no longer exists" in x for x in lines) == 1 and sum("outside the delivery layout" in x for x in lines) == 1 and sum("not JSON" in x for x in lines) == 1
    assert len(json.loads(first.cursor)["ack"]) == 1

    cursor, receives = first.cursor, 1
    deadline = time.time() + 30
    while q.depth() != (0, 0) and time.time() < deadline:
        time.sleep(1.2)  # the poison messages' visibility: one sensor interval
        tick = h.tick(cursor)
        cursor = tick.cursor
        assert not tick.run_requests
        lines = _warnings(capfd)
        assert len(lines) in (0, 3), lines  # one line per poison message per receive
        receives += bool(lines)
    assert q.depth() == (0, 0), "poison messages still in the delivery queue"
    assert receives == 2  # maxReceiveCount
    bodies = q.dlq_bodies()
    assert len(bodies) == 3 and "{not json" in bodies
    assert any("readme.txt" in b for b in bodies) and any("GONE" in b for b in bodies) and not any("GOOD" in b for b in bodies)
    assert h.submitted == {first.run_requests[0].run_key}


def test_an_s3_outage_is_retried_not_poison(qh, capfd, monkeypatch):
    """A HEAD that fails for another reason than 404 (S3 unavailable, throttled) is not the message's fault: no
    poison line, the message stays hidden for its full visibility timeout (then SQS hands it out again)."""
    from prism_assets.deliveries import queue as queue_mod

    h, q = qh
    day = date.today().isoformat()
    real = queue_mod.resolve_delivery

    def flaky(store, rel):
        if "/OUT/" in rel:
            raise ConnectionError("S3 unavailable")
        return real(store, rel)

    monkeypatch.setattr(queue_mod, "resolve_delivery", flaky)
    h.put(f"{day}/OUT/v.mp4")
    h.put(f"{day}/OK/v.mp4")
    capfd.readouterr()
    first = h.tick()
    err = capfd.readouterr().err
    assert run_titles(first) == ["OK"] and not _warnings_in(err) and "retried after the visibility timeout" in err
    assert q.depth() == (0, 2)  # OK's message waits for the next tick, OUT's for its visibility timeout (300 s)
    monkeypatch.setattr(queue_mod, "resolve_delivery", real)  # S3 is back; the timeout passes
    (m,) = [m for m in q.sqs.receive_message(QueueUrl=q.url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages") or [] if "OUT" in m["Body"]] or [None]
    assert m is None  # still hidden: its receive count is not used up by short retries
    second = h.tick(first.cursor)
    assert second.skip_reason is not None and q.depth() == (0, 1)
