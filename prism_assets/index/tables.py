"""The index's tables: Arrow schemas, one place (docs/schema.md "Index" is tested against these).

INDEX_SCHEMA_VERSION versions the tables' shape; a change that needs a rebuild bumps the major.
"""

from __future__ import annotations

import pyarrow as pa

from .features import FRAME_DIM

INDEX_SCHEMA_VERSION = "1.1"  # 1.1: `hit` on the text tables (added to older tables in place, filled as titles are written)
TEXT_DIM = 384  # all-MiniLM-L6-v2

TABLES = ("units", "frames", "speech", "subtitles", "ocr", "events", "titles")
FTS_TABLES = ("speech", "subtitles", "ocr")
TEXT_CHANNELS = {"speech": "speech", "subtitles": "subtitles", "ocr": "ocr"}  # channel -> table

_common = [
    ("row_id", pa.string(), "`<title_id>:<table>:<n>`, stable for the same content"),
    ("title_id", pa.string(), "the title"),
    ("series_id", pa.string(), "the series (episodes), else null"),
    ("season", pa.int32(), "season number (episodes), else null"),
    ("episode", pa.int32(), "episode number (episodes), else null"),
    ("index_version", pa.string(), "the Dagster run that wrote the row"),
]
_timed = [
    ("start_s", pa.float64(), "start, seconds from the title's start"),
    ("end_s", pa.float64(), "end, seconds"),
    ("timecode", pa.string(), "SMPTE timecode of the start (HH:MM:SS:FF; ';' drop-frame)"),
    ("structure", pa.string(), "intro | recap | opening_credits | end_credits | body, at the row's middle"),
    ("scene_index", pa.int32(), "the scene holding the row's middle"),
]

COLUMNS: dict[str, list[tuple[str, pa.DataType, str]]] = {
    "titles": [
        ("title_id", pa.string(), "the title"),
        ("name", pa.string(), "sidecar title"),
        ("provider", pa.string(), "sidecar provider"),
        ("series_id", pa.string(), "series (episodes)"),
        ("season", pa.int32(), "season"),
        ("episode", pa.int32(), "episode"),
        ("delivery_date", pa.string(), "YYYY-MM-DD"),
        ("duration_s", pa.float64(), "picture duration"),
        ("fps", pa.float64(), "frame rate"),
        ("width", pa.int32(), "width"),
        ("height", pa.int32(), "height"),
        ("languages", pa.list_(pa.string()), "every language of the title (decided audio languages, subtitle languages, OCR languages)"),
        ("audio_languages", pa.list_(pa.string()), "decided audio languages (no guess)"),
        ("subtitle_languages", pa.list_(pa.string()), "subtitle track languages"),
        ("qc_verdict", pa.string(), "pass | warn | fail"),
        ("qc_reasons", pa.list_(pa.string()), "one line per reason"),
        ("poster", pa.string(), "best poster image (bundle file name)"),
        ("summary", pa.string(), "JSON: structure, counts, models (`title_summary`)"),
        ("text_model", pa.string(), "the text embedding model and its checksum prefix"),
        ("clip_model", pa.string(), "the CLIP model of the unit vectors"),
        ("clip_weights_trained", pa.bool_(), "false: CLIP is random-init, the visual channel is off"),
        ("index_version", pa.string(), "the run that wrote the title's rows"),
        ("indexed_at", pa.string(), "UTC ISO time of that write"),
    ],
    "units": _common + _timed + [
        ("unit_index", pa.int32(), "0.. in time order"),
        ("shot_index", pa.int32(), "the shot (a long shot gives several <= 10 s units)"),
        ("start_frame", pa.int32(), "first frame (0-based)"),
        ("end_frame", pa.int32(), "last frame (inclusive)"),
        ("keyframe", pa.string(), "the shot's keyframe image (keyframes bundle file), or null"),
        ("keyframe_t_s", pa.float64(), "the keyframe's time"),
        ("clip_model", pa.string(), "CLIP model/weights"),
        ("weights_trained", pa.bool_(), "CLIP weights are trained (else the vector has no meaning)"),
    ],
    "frames": _common + [
        ("unit_index", pa.int32(), "the unit the frame lies in"),
        ("frame", pa.int32(), "frame number"),
        ("t_s", pa.float64(), "time"),
        ("dhash", pa.string(), "64-bit difference hash (hex)"),
    ],
    "speech": _common + _timed + [
        ("text", pa.string(), "the segment's text"),
        ("cjk", pa.string(), "the Korean/Japanese/Chinese runs of the text (character n-gram index)"),
        ("language", pa.string(), "ISO 639-1"),
        ("track", pa.string(), "audio track number"),
        ("detail", pa.string(), "JSON: words [{word, start, end, score}]"),
        ("hit", pa.string(), "JSON of the hit fields (row_id, title_id, start_s, end_s, timecode, structure, scene_index, language, track): one read per search candidate"),
    ],
    "subtitles": _common + _timed + [
        ("text", pa.string(), "the cue's text"),
        ("cjk", pa.string(), "the Korean/Japanese/Chinese runs of the text (character n-gram index)"),
        ("language", pa.string(), "ISO 639-1 (region kept)"),
        ("track", pa.string(), "subtitle track label (`en`, `en.forced`, ...)"),
        ("detail", pa.string(), "JSON: source, style, forced"),
        ("hit", pa.string(), "JSON of the hit fields (row_id, title_id, start_s, end_s, timecode, structure, scene_index, language, track): one read per search candidate"),
    ],
    "ocr": _common + _timed + [
        ("text", pa.string(), "the text line (one row per text group: the same text persisting)"),
        ("cjk", pa.string(), "the Korean/Japanese/Chinese runs of the text (character n-gram index)"),
        ("language", pa.string(), "ISO 639-1 by script"),
        ("track", pa.string(), "null"),
        ("detail", pa.string(), "JSON: box {x, y, w, h}, confidence, flags (burned_in_subtitle, slate, rolling)"),
        ("hit", pa.string(), "JSON of the hit fields (row_id, title_id, start_s, end_s, timecode, structure, scene_index, language, track): one read per search candidate"),
    ],
    "events": _common + _timed + [
        ("kind", pa.string(), "QC / localization / structure event kind"),
        ("severity", pa.string(), "info | warn | fail"),
        ("source", pa.string(), "qc | localization | structure"),
        ("track", pa.string(), "audio track / subtitle track, or null"),
        ("detail", pa.string(), "one line"),
        ("metrics", pa.string(), "JSON numbers behind it"),
        ("delivery_date", pa.string(), "the title's delivery date"),
        ("verdict", pa.string(), "the title's QC verdict"),
    ],
}


def schema_for(name: str, clip_dim: int | None = None) -> pa.Schema:
    fields = [pa.field(c, t) for c, t, _ in COLUMNS[name]]
    if name in FTS_TABLES:
        fields.append(pa.field("vector", pa.list_(pa.float32(), TEXT_DIM)))
    if name == "units":
        fields.append(pa.field("clip", pa.list_(pa.float32(), int(clip_dim or 512))))
    if name == "frames":
        fields.append(pa.field("frame_vec", pa.list_(pa.float32(), FRAME_DIM)))
    md = {b"prism/index_schema_version": INDEX_SCHEMA_VERSION.encode()}
    return pa.schema(fields, metadata=md)
