"""Queue-based delivery: the delivery sensor consuming S3 event notifications from SQS (production).

With `PRISM_DELIVERY_QUEUE_URL` set (deploy/infra wires the delivery bucket's `s3:ObjectCreated:*`
notifications under `deliveries/` into the queue `prism-<env>-delivery`, dead-letter queue after 5
receives), a sensor tick receives the queue's messages instead of listing the delivery root:

- each message is an S3 event (one or more records): the key (URL-decoded) must be under the delivery
  root's prefix and in the delivery layout `<date>/<title>/<video>`; the object is HEADed for its size
  and ETag, the folder's first video in key order is the delivery (the listing's rule), and the run
  request is the listing's: same run key (title, file, ETag), same tags, the title added as a partition.
  A delivery the catalog already knows with this ETag asks for nothing (as the listing).
- at-least-once, idempotent: a message is deleted only after its run request was recorded. A tick
  cannot know that (the daemon records the run requests after the tick returns), so the tick keeps the
  receipt handles of the messages behind its run requests in the cursor and deletes them at the start
  of the NEXT tick, when the previous result (run requests and cursor, stored together) is recorded. A
  lost tick result loses nothing: the messages come back after their visibility timeout (set on
  receive, longer than a tick interval) and ask again with the same run keys, which Dagster launches once.
- messages that ask for nothing (S3's `s3:TestEvent`, sidecar `.json` files, a video the catalog
  already has, a second video in a title folder) are deleted in the same tick.
- poison messages (body not JSON / not an S3 event, a key outside the delivery root or its layout, a
  deleted object, another bucket's event) are NOT deleted: one warning line each
  (`context.log.warning`), their visibility shortened to about one sensor interval, and SQS moves them
  to the dead-letter queue after the queue's maxReceiveCount receives (the DLQ depth alarm of
  deploy/infra/prism_infra/ops.py fires). They never block the batch: the other messages of the tick
  are processed as usual. An error reading S3 other than a 404 is not poison: the message stays hidden
  for its full visibility timeout and is retried (a short S3 outage does not use up its receives).

The listing (deliveries/scan.py) stays the embedded default (no queue URL); with the queue, the daily
schedule's `delivery_manifest` lists yesterday's date folder and its fan-out runs any title never
attempted for its current delivery: the nightly reconciliation for anything the queue missed.

The cursor in queue mode is `{"mode": "queue", "ack": [[message id, receipt handle], ...]}`.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import unquote_plus, urlsplit

from ..core.store import S3Store
from .layout import DATE_RE, TITLE_ID_RE, FoundDelivery, parse_video_key

RECEIVE_BATCH = 10  # SQS maximum per ReceiveMessage
MAX_MESSAGES_PER_TICK = 300  # bounds a tick's time and the cursor's size (a receipt handle is ~0.5-1 KB)
RECEIVE_BUDGET_S = 15.0  # stop receiving after this long (each message costs a HEAD and a folder listing; ticks time out at 60 s)
RECEIVE_WAIT_S = 1  # long poll of each receive: asks every SQS server, an empty queue costs one second per tick
MIN_VISIBILITY_S = 300  # a received message stays hidden at least this long (until the next tick deletes it)
MAX_VISIBILITY_S = 12 * 3600  # SQS maximum

_CLIENTS: dict[tuple, object] = {}
_CLIENTS_LOCK = threading.Lock()


class Poison(Exception):
    """A message that can never become a run request (left to go to the dead-letter queue)."""


class Transient(Exception):
    """S3 could not be read for a message (retried after the visibility timeout, not counted as poison)."""


# -- cursor -------------------------------------------------------------------------------------------
@dataclass
class QueueCursor:
    ack: list[list[str]] = field(default_factory=list)  # [message id, receipt handle] to delete at the next tick

    @classmethod
    def parse(cls, text: str | None) -> "QueueCursor":
        if not is_queue_cursor(text):
            return cls()  # none yet, or the listing's cursor (the setting was just turned on)
        data = json.loads(text)
        return cls(ack=[[str(m), str(h)] for m, h in data.get("ack") or []])

    def dumps(self) -> str:
        return json.dumps({"mode": "queue", "ack": self.ack}, sort_keys=True)


def is_queue_cursor(text: str | None) -> bool:
    if not text:
        return False
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return False
    return isinstance(data, dict) and data.get("mode") == "queue"


# -- client ---------------------------------------------------------------------------------------------
def queue_endpoint(queue_url: str) -> str | None:
    """The SQS endpoint of a queue URL: None (botocore's regional endpoint) for AWS's own host names, the
    URL's origin otherwise (moto, LocalStack, ElasticMQ serve the queue where its URL says)."""
    parts = urlsplit(queue_url)
    host = (parts.hostname or "").lower()
    if host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn"):
        return None
    return f"{parts.scheme}://{parts.netloc}"


def queue_region(queue_url: str, default: str | None) -> str:
    """The deployment's region (AWS_REGION), else the one in `sqs.<region>.amazonaws.com`, else us-east-1."""
    if default:
        return default
    host = (urlsplit(queue_url).hostname or "").split(".")
    if len(host) >= 4 and host[0] == "sqs":
        return host[1]
    return "us-east-1"


def sqs_client(settings):
    """A boto3 SQS client for the delivery queue (credentials from the default chain: the task role),
    with bounded waits; one per process and settings (clients are thread-safe)."""
    import os

    endpoint, region = queue_endpoint(settings.delivery_queue_url), queue_region(settings.delivery_queue_url, settings.s3_region)
    key = (os.getpid(), endpoint, region, *(os.environ.get(v) for v in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")))
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(connect_timeout=5, read_timeout=RECEIVE_WAIT_S + 20, retries={"max_attempts": 3, "mode": "standard"})
            client = _CLIENTS[key] = boto3.session.Session().client("sqs", region_name=region, endpoint_url=endpoint, config=config)
    return client


def visibility_timeout_s(sensor_interval_s: int) -> int:
    """How long a received message stays hidden: several tick intervals, so the next tick deletes it
    before SQS hands it out again (a redelivery would only cost a run-key check)."""
    return max(MIN_VISIBILITY_S, min(MAX_VISIBILITY_S, 10 * sensor_interval_s))


def poison_retry_s(sensor_interval_s: int) -> int:
    """A poison message comes back after about one tick interval (maxReceiveCount receives to the DLQ)."""
    return max(1, min(MAX_VISIBILITY_S, sensor_interval_s))


# -- messages -------------------------------------------------------------------------------------------
def event_keys(body: str, store: S3Store) -> list[str]:
    """The keys (relative to the delivery root) of the ObjectCreated records of one S3 event message;
    [] for a message asking for nothing (S3's test event, other event types, sidecars, hidden files).
    Raises Poison for anything that can never be a delivery."""
    try:
        event = json.loads(body)
    except (json.JSONDecodeError, TypeError):
        raise Poison("body is not JSON") from None
    if not isinstance(event, dict):
        raise Poison("body is not an S3 event (not a JSON object)")
    if event.get("Event") == "s3:TestEvent":
        return []
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        raise Poison("not an S3 event (no Records)")
    keys: list[str] = []
    for rec in records:
        try:
            name, bucket, raw_key = rec["eventName"], rec["s3"]["bucket"]["name"], rec["s3"]["object"]["key"]
        except (KeyError, TypeError):
            raise Poison("malformed S3 event record (eventName, s3.bucket.name, s3.object.key)") from None
        if not all(isinstance(x, str) for x in (name, bucket, raw_key)):
            raise Poison("malformed S3 event record (fields are not strings)")
        if not name.startswith("ObjectCreated"):
            continue
        if bucket != store.bucket:
            raise Poison(f"event for bucket {bucket!r}, the delivery root is {store.uri}")
        key = unquote_plus(raw_key)
        root = f"{store.prefix}/" if store.prefix else ""
        if not key.startswith(root) or key == root:
            raise Poison(f"s3://{bucket}/{key} is outside the delivery root {store.uri}")
        rel = key[len(root):]
        base = rel.rsplit("/", 1)[-1]
        if base.startswith("."):
            continue  # hidden files: the listing skips them too
        if parse_video_key(rel) is not None:
            keys.append(rel)
        elif rel.endswith(".json") and _in_title_folder(rel):
            continue  # a sidecar: read by its video's run
        else:
            raise Poison(f"{rel!r} is outside the delivery layout <YYYY-MM-DD>/<title_id>/<video>")
    return keys


def _in_title_folder(rel: str) -> bool:
    parts = rel.split("/")
    return len(parts) == 3 and bool(DATE_RE.fullmatch(parts[0])) and bool(TITLE_ID_RE.fullmatch(parts[1]))


def _not_found(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


def resolve_delivery(store: S3Store, rel: str) -> FoundDelivery | None:
    """The delivery an event's video is: HEAD for its size and ETag (a deleted object is Poison), then the
    listing's rule of one delivery per title folder (the first video in key order): None when another
    video of the folder is the delivery."""
    try:
        head = store.client.head_object(Bucket=store.bucket, Key=store._full(rel))
    except Exception as exc:  # botocore ClientError
        if _not_found(exc):
            raise Poison(f"{store.uri_for(rel)} no longer exists (deleted after its event)") from None
        raise
    day, title_id, filename = parse_video_key(rel)
    folder = rel.rsplit("/", 1)[0]
    first = next((info.key for info in store.list(folder) if parse_video_key(info.key) is not None), rel)
    if first < rel:
        return None  # an earlier video of the folder is the delivery (its own event asks for it)
    return FoundDelivery(rel, day, title_id, filename, int(head["ContentLength"]), str(head["ETag"]).strip('"'))


@dataclass
class Received:
    message_id: str
    receipt: str
    body: str
    receive_count: str = "?"


def receive(client, queue_url: str, visibility_s: int, limit: int = MAX_MESSAGES_PER_TICK) -> list[Received]:
    out: list[Received] = []
    seen: set[str] = set()
    t0 = time.monotonic()
    while len(out) < limit and time.monotonic() - t0 < RECEIVE_BUDGET_S:
        resp = client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=min(RECEIVE_BATCH, limit - len(out)), WaitTimeSeconds=RECEIVE_WAIT_S,
                                      VisibilityTimeout=visibility_s, AttributeNames=["ApproximateReceiveCount"])
        batch = resp.get("Messages") or []
        if not batch:
            break
        for m in batch:
            if m["MessageId"] in seen:
                continue
            seen.add(m["MessageId"])
            out.append(Received(m["MessageId"], m["ReceiptHandle"], m.get("Body") or "", (m.get("Attributes") or {}).get("ApproximateReceiveCount", "?")))
    return out


def delete(client, queue_url: str, entries: list[list[str]]) -> tuple[int, list[str]]:
    """Delete messages by receipt handle, 10 per call: (deleted, failures as 'id: reason'). A stale receipt
    handle (the message was received again meanwhile) fails harmlessly: the copy asks with the same run key."""
    done, failed = 0, []
    for i in range(0, len(entries), 10):
        chunk = entries[i : i + 10]
        resp = client.delete_message_batch(QueueUrl=queue_url, Entries=[{"Id": str(n), "ReceiptHandle": h} for n, (_, h) in enumerate(chunk)])
        done += len(resp.get("Successful") or [])
        failed += [f"{chunk[int(f['Id'])][0]}: {f.get('Code')}" for f in resp.get("Failed") or []]
    return done, failed


def retry_soon(client, queue_url: str, entries: list[Received], seconds: int) -> None:
    for i in range(0, len(entries), 10):
        chunk = entries[i : i + 10]
        client.change_message_visibility_batch(QueueUrl=queue_url, Entries=[{"Id": str(n), "ReceiptHandle": m.receipt, "VisibilityTimeout": seconds}
                                                                            for n, m in enumerate(chunk)])


# -- the tick -------------------------------------------------------------------------------------------
def queue_tick(context, storage, catalog, settings, client=None):
    """One tick of the delivery sensor in queue mode (see the module docstring); returns a SensorResult."""
    from dagster import SensorResult, SkipReason

    from ..partitions import titles_partitions
    from .registry import changed_deliveries, delivery_run_key, new_titles, title_run_request

    t0 = time.monotonic()
    store = storage.deliveries()
    if not isinstance(store, S3Store):
        raise ValueError(f"PRISM_DELIVERY_QUEUE_URL needs an s3:// delivery root, not {settings.delivery_root}")
    client = client or sqs_client(settings)
    url = settings.delivery_queue_url
    cursor = QueueCursor.parse(context.cursor)
    acked, ack_failed = delete(client, url, cursor.ack)  # the previous tick's run requests are recorded by now
    if ack_failed:
        context.log.info(f"{len(ack_failed)} message(s) of the previous tick were not deleted (received again meanwhile; their run keys dedupe): {ack_failed[:3]}")

    messages = receive(client, url, visibility_timeout_s(settings.sensor_interval_s))
    wanted: dict[str, list[str]] = {}  # message id -> keys
    left: list[Received] = []
    for m in messages:
        try:
            wanted[m.message_id] = event_keys(m.body, store)
        except Poison as exc:
            left.append(m)
            context.log.warning(f"delivery queue: poison message {m.message_id} (receive {m.receive_count}) left for the dead-letter queue: {exc}")
    deliveries: dict[str, FoundDelivery | None] = {}
    for m in messages:
        for rel in wanted.get(m.message_id, []):
            if rel in deliveries:
                continue
            try:
                deliveries[rel] = resolve_delivery(store, rel)
            except Poison as exc:
                deliveries[rel] = exc  # type: ignore[assignment]
            except Exception as exc:  # noqa: BLE001 - S3 unavailable, throttled, denied: not the message's fault
                deliveries[rel] = Transient(f"cannot read {store.uri_for(rel)} ({type(exc).__name__}: {exc})")  # type: ignore[assignment]
    later = 0
    for m in messages:
        failures = [d for rel in wanted.get(m.message_id, []) if isinstance(d := deliveries[rel], (Poison, Transient))]
        if not failures:
            continue
        wanted.pop(m.message_id)
        poison = next((f for f in failures if isinstance(f, Poison)), None)
        if poison is not None:
            left.append(m)
            context.log.warning(f"delivery queue: poison message {m.message_id} (receive {m.receive_count}) left for the dead-letter queue: {poison}")
        else:  # kept hidden for the full visibility timeout: a short outage does not use up its receives
            later += 1
            context.log.warning(f"delivery queue: message {m.message_id} (receive {m.receive_count}) retried after the visibility timeout: {failures[0]}")

    found = list({d.key: d for d in deliveries.values() if isinstance(d, FoundDelivery)}.values())
    changed = changed_deliveries(store, catalog.get(), found)
    keys = {d.key: delivery_run_key(d) for d in changed}
    run_requests = [title_run_request(d, store.uri_for(d.key), keys[d.key]) for d in changed]
    added = new_titles(context.instance, (d.title_id for d in changed))

    ack_next, ack_now = [], []
    for m in messages:
        if m.message_id not in wanted:
            continue
        (ack_next if any(rel in keys for rel in wanted[m.message_id]) else ack_now).append([m.message_id, m.receipt])
    deleted_now, _ = delete(client, url, ack_now)
    if left:
        retry_soon(client, url, left, poison_retry_s(settings.sensor_interval_s))
    next_cursor = QueueCursor(ack=ack_next)
    context.log.info(
        f"delivery queue: deleted {acked} message(s) of the previous tick; received {len(messages)}: {len(run_requests)} run request(s), "
        f"{len(added)} new title(s), {deleted_now} asking for nothing deleted, {len(left)} poison left, {later} retried later; {time.monotonic() - t0:.2f}s"
    )
    if not run_requests and not added:
        return SensorResult(skip_reason=SkipReason(f"no new deliveries ({len(messages)} queue message(s))"), cursor=next_cursor.dumps())
    return SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[titles_partitions.build_add_request(added)] if added else [],
        cursor=next_cursor.dumps(),
    )
