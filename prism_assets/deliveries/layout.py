"""The delivery layout: `<delivery_root>/<YYYY-MM-DD>/<title_id>/<video>[+ sidecar .json]`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date

from ..partitions import SERIES_ID_RE

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".mxf", ".webm", ".m4v", ".ts", ".avi"})
TITLE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SIDECAR_NAMES = ("sidecar.json", "title.json", "metadata.json")


class DeliveryError(ValueError):
    pass


@dataclass(frozen=True)
class FoundDelivery:
    key: str  # object key of the video, relative to the delivery root
    delivery_date: date
    title_id: str
    filename: str
    size: int
    etag: str

    @property
    def folder(self) -> str:
        return self.key.rsplit("/", 1)[0]


def validate_title_id(title_id: str) -> str:
    if not TITLE_ID_RE.fullmatch(title_id or ""):
        raise DeliveryError(
            f"invalid title id {title_id!r}: use 1-128 characters from letters, digits, '.', '_' and '-', starting with a letter or digit"
        )
    return title_id


def parse_date(text: str) -> date:
    if not DATE_RE.fullmatch(text or ""):
        raise DeliveryError(f"invalid date {text!r}: expected YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise DeliveryError(f"invalid date {text!r}: {exc}") from None


def not_in_future(day: date, what: str = "date") -> date:
    """A delivery date must not be after today (UTC): nothing can have been delivered yet; one line otherwise."""
    from datetime import datetime, timezone

    today = datetime.now(timezone.utc).date()
    if day > today:
        raise DeliveryError(f"{what} {day.isoformat()} is in the future (today is {today.isoformat()} UTC): nothing is delivered on it yet")
    return day


def parse_video_key(key: str) -> tuple[date, str, str] | None:
    """(date, title_id, filename) for a video key in the layout; None for anything else."""
    parts = key.split("/")
    if len(parts) != 3:
        return None
    day, title_id, filename = parts
    dot = filename.rfind(".")
    if dot <= 0 or filename[dot:].lower() not in VIDEO_EXTENSIONS:
        return None
    if not DATE_RE.fullmatch(day) or not TITLE_ID_RE.fullmatch(title_id):
        return None
    try:
        return date.fromisoformat(day), title_id, filename
    except ValueError:
        return None


MAX_SIDECAR_BYTES = 64 * 1024  # a sidecar is a few fields; a larger file is not one
MAX_SIDECAR_DEPTH = 16
TEXT_LIMITS = {"title": 512, "name": 512}  # cut to this many characters (the catalog's column), with a warning
PROVIDER_MAX = 128  # a longer provider is dropped, not cut (a cut name could select the wrong QC profile)
MAX_LANGUAGES, LANGUAGE_MAX = 32, 35  # BCP 47 tags are at most 35 characters


def _depth(value) -> int:
    """Nesting depth of a parsed JSON value, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return deepest


def parse_sidecar(data: bytes, where: str) -> tuple[dict, list[str]]:
    """Sidecar JSON: {title|name, provider, expected_languages: [..], original_language, series_id, season, episode} (all optional), and one-line
    warnings for what was cut or dropped. A sidecar that cannot be used at all (not JSON, not an
    object, larger than 64 KiB, nested deeper than 16 levels, wrong types) raises DeliveryError."""
    if len(data) > MAX_SIDECAR_BYTES:
        raise DeliveryError(f"sidecar {where} is larger than {MAX_SIDECAR_BYTES // 1024} KiB: ignored")
    try:
        side = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DeliveryError(f"sidecar {where} is not valid JSON: {exc}") from None
    except RecursionError:
        raise DeliveryError(f"sidecar {where} nests deeper than {MAX_SIDECAR_DEPTH} levels: ignored") from None
    if not isinstance(side, dict):
        raise DeliveryError(f"sidecar {where} must be a JSON object")
    if _depth(side) > MAX_SIDECAR_DEPTH:
        raise DeliveryError(f"sidecar {where} nests deeper than {MAX_SIDECAR_DEPTH} levels: ignored")
    langs = side.get("expected_languages")
    if langs is not None and not (isinstance(langs, list) and all(isinstance(x, str) for x in langs)):
        raise DeliveryError(f"sidecar {where}: expected_languages must be a list of language codes")
    for field in ("title", "name", "provider", "original_language"):
        if side.get(field) is not None and not isinstance(side[field], str):
            raise DeliveryError(f"sidecar {where}: {field} must be a string")
    warnings = []
    for field, limit in TEXT_LIMITS.items():
        if side.get(field) and len(side[field]) > limit:
            warnings.append(f"sidecar {where}: {field} is {len(side[field])} characters, cut to {limit}")
            side[field] = side[field][:limit]
    if side.get("provider") and len(side["provider"]) > PROVIDER_MAX:
        warnings.append(f"sidecar {where}: provider is {len(side['provider'])} characters (at most {PROVIDER_MAX}): ignored")
        side.pop("provider")
    if side.get("original_language") and len(side["original_language"]) > LANGUAGE_MAX:
        warnings.append(f"sidecar {where}: original_language is {len(side['original_language'])} characters (at most {LANGUAGE_MAX}): ignored")
        side.pop("original_language")
    if langs and (len(langs) > MAX_LANGUAGES or any(len(x) > LANGUAGE_MAX for x in langs)):
        warnings.append(f"sidecar {where}: expected_languages needs at most {MAX_LANGUAGES} codes of at most {LANGUAGE_MAX} characters: ignored")
        side.pop("expected_languages")
    warnings += _series_fields(side, where)
    return side, warnings


def _series_fields(side: dict, where: str) -> list[str]:
    """`series_id` (letters, digits, `_`, `-`; at most 64), `season` (0-999) and `episode` (0-9999) go together:
    any of them invalid drops all three with one warning (the rest of the sidecar stays)."""

    keys = ("series_id", "season", "episode")
    if not any(side.get(k) is not None for k in keys):
        return []
    sid, season, episode = (side.get(k) for k in keys)
    ok = (isinstance(sid, str) and SERIES_ID_RE.fullmatch(sid) is not None
          and isinstance(season, int) and not isinstance(season, bool) and 0 <= season <= 999
          and (episode is None or (isinstance(episode, int) and not isinstance(episode, bool) and 0 <= episode <= 9999)))
    if ok:
        return []
    for k in keys:
        side.pop(k, None)
    return [f"sidecar {where}: series_id (letters, digits, _ or -, at most 64), season (0-999) and episode (0-9999) are needed together: ignored"]


def sidecar_candidates(video_key: str) -> list[str]:
    """Keys where a video's sidecar may be: `<stem>.json`, then sidecar.json/title.json/metadata.json."""
    folder, _, filename = video_key.rpartition("/")
    prefix = f"{folder}/" if folder else ""
    stem = filename.rsplit(".", 1)[0]
    return [f"{prefix}{stem}.json"] + [f"{prefix}{n}" for n in SIDECAR_NAMES]
