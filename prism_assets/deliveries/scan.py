"""Listing deliveries: paginated, resumable scans of the delivery root in key order.

The sensor's cursor is `{"after": <last key listed>, "floor": <YYYY-MM-DD>}`. A tick lists at
most `max_keys` keys after `after` (S3 `StartAfter`; the local store prunes whole folders), so
a tick's cost is bounded whatever the backlog. When a scan reaches the end of the listing, the
next one restarts at `floor` = newest delivery date seen minus the lookback window, which picks
up titles that arrive late into a recent date folder. Deliveries already in the catalog with
the same ETag are skipped, so a rescan requests nothing twice.

A delivery is only in the catalog once its run has recorded it, so the cursor also keeps `requested`:
short digests of the run keys requested but not yet in the catalog. A rescan does not request those
again (at 300 queued titles, re-requesting them made every tick cost the daemon ~12 s of run-key
checks); a digest leaves the set when the catalog knows the delivery, and the oldest go beyond
`MAX_REQUESTED` (Dagster's run keys still keep those from launching twice).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, timedelta

from ..core.store import ObjectStore
from .layout import FoundDelivery, parse_video_key


@dataclass
class ScanCursor:
    after: str | None = None
    floor: str | None = None
    newest: str | None = None  # newest delivery date seen so far
    since: str | None = None  # during the first full listing only: deliveries dated before this are old (not launched)
    requested: list[str] = field(default_factory=list)  # digests of run keys requested, not yet in the catalog (oldest first)

    @classmethod
    def parse(cls, text: str | None) -> "ScanCursor":
        if not text:
            return cls()
        data = json.loads(text)
        return cls(after=data.get("after"), floor=data.get("floor"), newest=data.get("newest"), since=data.get("since"),
                   requested=list(data.get("requested") or []))

    def dumps(self) -> str:
        return json.dumps({"after": self.after, "floor": self.floor, "newest": self.newest, "since": self.since,
                           "requested": self.requested}, sort_keys=True)


MAX_REQUESTED = 20_000  # ~400 KB of cursor at most


def run_key_digest(run_key: str) -> str:
    return hashlib.sha1(run_key.encode()).hexdigest()[:16]


def track_requested(cursor: ScanCursor, known: list[str], new: list[str]) -> None:
    """Digests of run keys the catalog now knows leave `cursor.requested`; those just requested join it."""
    gone = set(known)
    kept = [d for d in cursor.requested if d not in gone]
    have = set(kept)
    kept += [d for d in new if d not in have]
    cursor.requested = kept[-MAX_REQUESTED:]


@dataclass
class ScanPage:
    deliveries: list[FoundDelivery]
    cursor: ScanCursor
    keys_listed: int
    exhausted: bool
    ignored: list[str] = field(default_factory=list)  # keys that are not videos in the layout


def scan_page(store: ObjectStore, cursor: ScanCursor, max_keys: int, lookback_days: int) -> ScanPage:
    start_after = cursor.after
    if start_after is None and cursor.floor:
        start_after = cursor.floor  # "YYYY-MM-DD" sorts before "YYYY-MM-DD/..."
    found: list[FoundDelivery] = []
    ignored: list[str] = []
    listed = 0
    last_key = start_after
    newest = cursor.newest
    for info in store.list("", start_after=start_after, limit=max_keys):
        listed += 1
        last_key = info.key
        parsed = parse_video_key(info.key)
        if parsed is None:
            if not info.key.endswith(".json"):
                ignored.append(info.key)
            continue
        day, title_id, filename = parsed
        found.append(FoundDelivery(info.key, day, title_id, filename, info.size, info.etag))
        if newest is None or day.isoformat() > newest:
            newest = day.isoformat()
    exhausted = listed < max_keys
    if exhausted:
        floor = None
        if newest:
            floor = (date.fromisoformat(newest) - timedelta(days=lookback_days)).isoformat()
        next_cursor = ScanCursor(after=None, floor=floor, newest=newest, requested=list(cursor.requested))  # the first listing is over: `since` no longer applies
    else:
        next_cursor = ScanCursor(after=last_key, floor=cursor.floor, newest=newest, since=cursor.since, requested=list(cursor.requested))
    # one delivery per title folder: the first video in key order wins, others are reported
    by_folder: dict[str, FoundDelivery] = {}
    for d in found:
        if d.folder in by_folder:
            ignored.append(d.key)
        else:
            by_folder[d.folder] = d
    return ScanPage(list(by_folder.values()), next_cursor, listed, exhausted, ignored)


def scan_dates(store: ObjectStore, start: date, end: date) -> list[FoundDelivery]:
    """Every delivery in the date folders start..end inclusive (for manifests and backfills)."""
    out: list[FoundDelivery] = []
    for day in store.list_dirs(""):
        if len(day) != 10 or not (start.isoformat() <= day <= end.isoformat()):
            continue
        seen: set[str] = set()
        for info in store.list(day):
            parsed = parse_video_key(info.key)
            if parsed is None:
                continue
            d = FoundDelivery(info.key, parsed[0], parsed[1], parsed[2], info.size, info.etag)
            if d.folder not in seen:
                seen.add(d.folder)
                out.append(d)
    return out
