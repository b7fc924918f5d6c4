"""Pictures and table previews in the Dagster UI, bounded in size.

Dagster 1.13 has no image metadata type; its markdown renderer (react-markdown + rehype-sanitize)
explicitly allows `data:` image sources, so pictures travel as small inline JPEG thumbnails in a
`MetadataValue.md`. Every materialization event carries its metadata in the event log, so both
the number of pictures and the bytes are capped (`MAX_PICTURES`, `MAX_MARKDOWN_BYTES`): a title
with 2,000 keyframes shows a spread of 8, not 2,000. Tables become `MetadataValue.table` (rows
capped at `MAX_ROWS`, long strings cut).
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

import pandas as pd
from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

MAX_PICTURES = 8
THUMB_WIDTH = 160
MAX_MARKDOWN_BYTES = 96_000
MAX_ROWS = 20
MAX_CELL_CHARS = 160


@dataclass(frozen=True)
class Picture:
    caption: str
    jpeg: bytes
    width: int = THUMB_WIDTH  # shown this wide at most (a plot is wider than a frame thumbnail)


def thumbnail_jpeg(jpeg: bytes, width: int = THUMB_WIDTH, quality: int = 70) -> bytes:
    """A small JPEG of a JPEG (aspect kept; never upscaled)."""
    from PIL import Image

    img = Image.open(io.BytesIO(jpeg)).convert("RGB")
    if img.width > width:
        img = img.resize((width, max(1, round(img.height * width / img.width))), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def spread(items: list, n: int = MAX_PICTURES) -> list:
    """At most n items spread evenly over the list (first and last included)."""
    if len(items) <= n:
        return list(items)
    step = (len(items) - 1) / (n - 1)
    return [items[round(i * step)] for i in range(n)]


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("[", "\\[").replace("]", "\\]").replace("\n", " ")


def pictures_markdown(pictures: list[Picture], title: str | None = None) -> MetadataValue:
    """A markdown table of inline thumbnails with captions, within MAX_MARKDOWN_BYTES."""
    head = f"**{_escape(title)}**\n\n" if title else ""
    lines = ["| picture | caption |", "|---|---|"]
    size = len(head) + 40
    shown = 0
    for p in pictures[:MAX_PICTURES]:
        uri = "data:image/jpeg;base64," + base64.b64encode(thumbnail_jpeg(p.jpeg, p.width)).decode()
        line = f"| ![{_escape(p.caption)}]({uri}) | {_escape(p.caption)} |"
        if size + len(line) > MAX_MARKDOWN_BYTES:
            break
        lines.append(line)
        size += len(line) + 1
        shown += 1
    if not shown:
        return MetadataValue.md(head + "_no pictures_")
    more = len(pictures) - shown
    tail = f"\n\n_{more} more not shown_" if more > 0 else ""
    return MetadataValue.md(head + "\n".join(lines) + tail)


def _cell(v):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return None
    if isinstance(v, (bool, int, float, str)):
        return v[:MAX_CELL_CHARS] if isinstance(v, str) else v
    if hasattr(v, "item"):  # numpy scalar
        return _cell(v.item())
    return str(v)[:MAX_CELL_CHARS]


def table_metadata(df: pd.DataFrame, columns: list[str] | None = None, max_rows: int = MAX_ROWS) -> MetadataValue:
    """The first `max_rows` rows of `df` (chosen columns) as a table the UI renders."""
    cols = [c for c in (columns or list(df.columns)) if c in df.columns]
    types = {}
    for c in cols:
        kind = df[c].dtype.kind
        types[c] = "bool" if kind == "b" else "int" if kind in "iu" else "float" if kind == "f" else "string"
    schema = TableSchema(columns=[TableColumn(name=c, type=types[c]) for c in cols])
    records = []
    for row in df[cols].head(max_rows).itertuples(index=False):
        values = {c: _cell(v) for c, v in zip(cols, row)}
        records.append(TableRecord(values))  # None shows as an empty cell
    return MetadataValue.table(records=records, schema=schema)
