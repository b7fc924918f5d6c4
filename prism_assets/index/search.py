"""Search over the index (any `SearchBackend`): lexical, semantic and hybrid text search over the
speech / subtitles / OCR channels, the visual channel (CLIP, only with trained weights), query by
frame, "A then B within N s", grouping and per-channel explanations.

Scores are 0-1 and comparable across channels and queries, so a `min_score` means the same thing
everywhere:
- lexical: candidates come from the backend's full-text indexes (BM25 over words with one edit per
  word allowed, and over the CJK runs' character n-grams); the score is the share of the query's
  character 2- and 3-grams found in the row's text (accent- and case-folded), so an exact phrase
  scores 1, one typo in a word ~0.75, and a 2-character Korean/Japanese query matches as a substring;
- semantic: all-MiniLM-L6-v2 cosine, rescaled so unrelated text (cosine <= `SEM_FLOOR`) scores 0;
- hybrid: `weights.lexical * lexical + weights.semantic * semantic`, the weights tuned on the dev
  split of benchmarks/search.py (`DEFAULT_WEIGHTS`).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .backend import Cond
from .features import cjk_runs, decode_image, frame_vector, match_score
from .lexical import STOP, LexicalQuery, fold, grams, lexical_score  # noqa: F401  (fold, grams, STOP: this module's API)
from .tables import TEXT_CHANNELS

MODES = ("hybrid", "lexical", "semantic")
CHANNELS = ("speech", "subtitles", "ocr", "visual")
GROUPS = ("unit", "scene", "title")
STRUCTURE_LABELS = ("intro", "recap", "opening_credits", "end_credits", "body")
SEM_FLOOR = 0.25
CANDIDATES = 30
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="prism-search")  # the channels of one query side by side (LanceDB releases the GIL)


@dataclass(frozen=True)
class Weights:
    """Defaults tuned on the dev split of benchmarks/search.py (benchmarks/results/search.json `tuned_on_dev`)."""

    lexical: float = 0.8
    semantic: float = 1.0
    min_score: float = 0.25  # hybrid: default threshold below which nothing is returned (no-answer queries)
    min_score_single: float = 0.3  # lexical-only or semantic-only modes
    frame_min_score: float = 0.225  # query by frame


DEFAULT_WEIGHTS = Weights()


@dataclass
class Query:
    text: str | None = None
    mode: str = "hybrid"
    channels: tuple[str, ...] = ("speech", "subtitles", "ocr")
    titles: tuple[str, ...] = ()
    series_id: str | None = None
    season: int | None = None
    language: str | None = None
    qc_kinds: tuple[str, ...] = ()
    provider: str | None = None  # titles of this provider (sidecar)
    episode: int | None = None
    title_language: str | None = None  # titles having this language (audio, subtitles or on-screen text)
    structure: tuple[str, ...] = ()  # only these labels
    exclude_structure: tuple[str, ...] = ()
    start_s: float | None = None
    end_s: float | None = None
    top_k: int = 10
    min_score: float | None = None
    group_by: str | None = None


@dataclass
class Hit:
    title_id: str
    channel: str
    start_s: float
    end_s: float
    score: float
    timecode: str = ""
    text: str | None = None
    language: str | None = None
    track: str | None = None
    structure: str | None = None
    scene_index: int | None = None
    unit_index: int | None = None
    row_id: str | None = None
    explanation: dict = field(default_factory=dict)
    words: list | None = field(default=None, repr=False)  # speech: the segment's timed words (to narrow the moment)
    handle: object = field(default=None, repr=False, compare=False)  # the backend's direct handle of the row (hydrate)
    sentences: int | None = field(default=None, repr=False, compare=False)  # speech: sentences in its words (None: unknown)

    @property
    def citation(self) -> str:
        return f"{self.title_id}@{self.timecode}"


def semantic_score(distance: float | None) -> float:
    if distance is None:
        return 0.0
    cos = 1.0 - float(distance)
    return max(0.0, min(1.0, (cos - SEM_FLOOR) / (1.0 - SEM_FLOOR)))


class Searcher:
    def __init__(self, backend, embedder=None, weights: Weights = DEFAULT_WEIGHTS, clip_text=None):
        self.backend = backend
        self.embedder = embedder  # TextEmbedder (query vectors); None: lexical only
        self.weights = weights
        self.clip_text = clip_text  # callable(text) -> CLIP text vector, only with trained weights

    # -- filters
    def conds(self, q: Query, table: str) -> list[Cond]:
        c = []
        titles = set(q.titles) if q.titles else None
        narrowed = []
        if q.qc_kinds:
            narrowed.append({r["title_id"] for r in self.backend.select("events", [Cond("kind", "in", list(q.qc_kinds))], ["title_id"], limit=1_000_000)})
        tconds = ([Cond("provider", "=", q.provider)] if q.provider else []) + ([Cond("languages", "contains", q.title_language.lower())] if q.title_language else [])
        if tconds:
            narrowed.append({r["title_id"] for r in self.backend.select("titles", tconds, ["title_id"], limit=1_000_000)})
        for ids in narrowed:
            titles = ids if titles is None else titles & ids
        if titles is not None:
            c.append(Cond("title_id", "in", sorted(titles) or ["\x00none"]))
        if q.episode is not None:
            c.append(Cond("episode", "=", int(q.episode)))
        if q.series_id:
            c.append(Cond("series_id", "=", q.series_id))
        if q.season is not None:
            c.append(Cond("season", "=", int(q.season)))
        if q.language and table in TEXT_CHANNELS.values():
            c.append(Cond("language", "=", q.language.lower()))
        if q.structure:
            c.append(Cond("structure", "in", list(q.structure)))
        if q.exclude_structure:
            c.append(Cond("structure", "not in", list(q.exclude_structure)))
        if q.start_s is not None:
            c.append(Cond("end_s", ">", float(q.start_s)))
        if q.end_s is not None:
            c.append(Cond("start_s", "<", float(q.end_s)))
        return c

    def visual_available(self) -> tuple[bool, str]:
        rows = self.backend.select("titles", [Cond("clip_weights_trained", "=", True)], ["title_id"], limit=1)
        if not rows:
            return False, "visual channel off: the index's CLIP vectors come from random-init weights (weights_trained: false)"
        if self.clip_text is None:
            return False, "visual channel off: this server has no CLIP text encoder loaded"
        return True, ""

    # -- text search
    def _lexical(self, channel: str, q: Query, lex: LexicalQuery) -> dict[str, dict]:
        """Candidates by words (one edit per word only where the exact words found nothing close: fuzzy expansion costs
        3-4x an exact lookup at a million rows) and by the CJK runs' character n-grams."""
        table, conds, cands = TEXT_CHANNELS[channel], self.conds(q, TEXT_CHANNELS[channel]), {}
        for r in self.backend.fts(table, q.text, conds, limit=CANDIDATES):
            cands.setdefault(r["row_id"], r)
        if any(len(w) >= 5 for w in lex.fq.split()) and not any(lex.score(r.get("text")) >= 0.9 for r in cands.values()):
            for r in self.backend.fts(table, q.text, conds, limit=CANDIDATES, fuzziness=1):
                cands.setdefault(r["row_id"], r)
        cjk = cjk_runs(q.text)
        if cjk:
            for r in self.backend.fts(table, cjk, conds, limit=CANDIDATES, column="cjk"):
                cands.setdefault(r["row_id"], r)
        return cands

    def _semantic(self, channel: str, q: Query, qvec) -> dict[str, dict]:
        table = TEXT_CHANNELS[channel]
        return {r["row_id"]: r for r in self.backend.nearest(table, "vector", qvec, self.conds(q, table), limit=CANDIDATES)}

    def _score(self, channel: str, q: Query, cands: dict[str, dict], semantic_searched: bool, lexq: LexicalQuery) -> list[Hit]:
        hits = []
        for r in cands.values():
            lex = lexq.score(r.get("text"))
            sem = semantic_score(r.get("_distance")) if "_distance" in r else (0.0 if semantic_searched else None)
            if q.mode == "hybrid" and lex >= 0.999:  # the query itself, said or shown: nothing can be surer
                score = 1.0
            elif q.mode == "lexical" or (q.mode == "hybrid" and not semantic_searched):
                score = self.weights.lexical * lex if q.mode == "hybrid" else lex
            elif q.mode == "semantic":
                score = sem or 0.0
            else:  # either kind of evidence can carry a hit; both together make it surer
                score = 1.0 - (1.0 - self.weights.lexical * lex) * (1.0 - self.weights.semantic * (sem or 0.0))
            hits.append(_hit(r, channel, score, {"channel": channel, "lexical": round(lex, 4),
                                                 "semantic": None if sem is None else round(sem, 4), "bm25": r.get("_score")}))
        return hits

    def search(self, q: Query) -> tuple[list[Hit], list[str]]:
        notes: list[str] = []
        text = (q.text or "").strip()
        if not text:
            return [], ["empty query"]
        mostly_cjk = len(cjk_runs(text).replace(" ", "")) >= 0.5 * len(text.replace(" ", ""))
        if mostly_cjk and q.mode != "lexical":
            notes.append("semantic channel off for a Korean/Japanese/Chinese query: all-MiniLM-L6-v2 is an English model")
        elif self.embedder is None and q.mode != "lexical":
            notes.append("semantic search off: no text model loaded")
        channels = [c for c in q.channels if c in TEXT_CHANNELS]
        lexq = LexicalQuery(text)  # each candidate's text scored once per search
        lexical = dict(zip(channels, _POOL.map(lambda c: self._lexical(c, q, lexq), channels))) if q.mode != "semantic" else {c: {} for c in channels}
        # hybrid: when the words already found the query as a phrase, the answer is that phrase; the vectors (a third of
        # a query's cost) are read only for queries the words do not answer outright
        exact = q.mode == "hybrid" and any(lexq.score(r.get("text")) >= 0.999 for c in channels for r in lexical[c].values())
        use_vectors = q.mode != "lexical" and self.embedder is not None and not mostly_cjk and not exact
        if use_vectors:
            qvec = self.embedder.embed([text])[0]
            semantic = dict(zip(channels, _POOL.map(lambda c: self._semantic(c, q, qvec), channels)))
            for c in channels:
                for rid, r in semantic[c].items():
                    lexical[c].setdefault(rid, {}).update(r)
        hits = [h for c in channels for h in self._score(c, q, lexical[c], use_vectors, lexq)]
        if "visual" in q.channels:
            ok, why = self.visual_available()
            if ok:
                vec = self.clip_text(text)
                for r in self.backend.nearest("units", "clip", vec, self.conds(q, "units") + [Cond("weights_trained", "=", True)], limit=CANDIDATES):
                    s = semantic_score(r.get("_distance"))
                    hits.append(_hit(r, "visual", s, {"channel": "visual", "clip": round(s, 4)}))
            else:
                notes.append(why)
        return self.finish(hits, q), notes

    def finish(self, hits: list[Hit], q: Query) -> list[Hit]:
        threshold = (self.weights.min_score if q.mode == "hybrid" else self.weights.min_score_single) if q.min_score is None else q.min_score
        hits = [h for h in hits if h.score >= threshold]
        hits.sort(key=lambda h: (-h.score, h.title_id, h.start_s))
        hits = _dedupe(hits)
        top = hits[: max(q.top_k, 10)]
        self.hydrate(top)
        for h in top:
            if h.words and q.text:
                narrow(h, q.text)
        hits = top + hits[len(top):]
        if q.group_by:
            hits = self.group(hits, q.group_by)
        return hits[: q.top_k]

    def hydrate(self, hits: list[Hit]) -> None:
        """The final hits' other columns (timecode, language, track, structure, scene, speech word timings), read once
        per table (by the candidates' handles, else by row_id)."""
        by_table: dict[str, list[Hit]] = {}
        for h in hits:
            table = TEXT_CHANNELS.get(h.channel) or ("units" if h.channel == "visual" else None)
            if table and h.row_id:
                by_table.setdefault(table, []).append(h)
        for table, group in by_table.items():
            cols = ["row_id", "timecode", "structure", "scene_index"] + (["language", "track"] if table != "units" else ["unit_index"])
            if table != "units" and all(h.timecode for h in group):  # candidates read with their packed `hit` fields
                cols = ["row_id"]
                group = [h for h in group if h.sentences is None or h.sentences >= 2]  # word timings only where narrow() can use them
            cols += ["detail"] if table == "speech" else []
            if not group:
                continue
            if cols == ["row_id"]:
                continue
            rows = self.backend.fetch(table, [(h.row_id, h.handle) for h in group], cols)
            for h in group:
                r = rows.get(h.row_id)
                if r is None:
                    continue
                h.timecode, h.structure, h.scene_index = r.get("timecode", h.timecode) or "", r.get("structure", h.structure), r.get("scene_index", h.scene_index)
                h.language, h.track = r.get("language", h.language), r.get("track", h.track)
                h.unit_index = r.get("unit_index", h.unit_index)
                h.words = _words(r, "speech") if table == "speech" else None

    def group(self, hits: list[Hit], by: str) -> list[Hit]:
        """One hit per unit / scene / title (the best), with the others as `explanation.also`."""
        out: dict[tuple, Hit] = {}
        for h in hits:
            if by == "title":
                key = (h.title_id,)
            elif by == "scene":
                key = (h.title_id, h.scene_index if h.scene_index is not None else f"t{h.start_s:.0f}")
            else:
                if h.unit_index is None:
                    h.unit_index = self.unit_at(h.title_id, (h.start_s + h.end_s) / 2)
                key = (h.title_id, h.unit_index)
            if key in out:
                out[key].explanation.setdefault("also", []).append({"channel": h.channel, "start_s": h.start_s, "score": round(h.score, 4)})
            else:
                out[key] = h
        return list(out.values())

    def unit_at(self, title_id: str, t: float) -> int | None:
        rows = self.backend.select("units", [Cond("title_id", "=", title_id), Cond("start_s", "<=", t), Cond("end_s", ">", t)], ["unit_index"], limit=1)
        return rows[0]["unit_index"] if rows else None

    # -- composite queries
    def then(self, a: Query, b_text: str, within_s: float) -> list[Hit]:
        """Moments where A is followed by B (same title, B starting within `within_s` after A ends)."""
        wide = Query(**{**a.__dict__, "top_k": 200, "group_by": None})
        hits_a, _ = self.search(wide)
        hits_b, _ = self.search(Query(**{**wide.__dict__, "text": b_text}))
        out = []
        for ha in hits_a:
            for hb in hits_b:
                gap = hb.start_s - ha.end_s
                if hb.title_id == ha.title_id and -1.0 <= gap <= within_s and hb.row_id != ha.row_id:
                    score = (ha.score + hb.score) / 2
                    out.append(Hit(ha.title_id, "sequence", ha.start_s, max(ha.end_s, hb.end_s), score, ha.timecode, f"{ha.text} … {hb.text}",
                                   ha.language, ha.track, ha.structure, ha.scene_index, ha.unit_index, ha.row_id,
                                   {"a": ha.explanation | {"start_s": ha.start_s}, "b": hb.explanation | {"start_s": hb.start_s},
                                    "gap_s": round(gap, 3)}))
        out.sort(key=lambda h: -h.score)
        return _dedupe(out)[: a.top_k]

    def by_frame(self, image: bytes, q: Query) -> list[Hit]:
        """The shots (units) a picture comes from: colour layout + dHash nearest neighbours."""
        vec = frame_vector(decode_image(image))
        rows = self.backend.nearest("frames", "frame_vec", vec, self.conds(q, "frames"), limit=50)
        best: dict[tuple, dict] = {}
        for r in rows:
            key = (r["title_id"], r["unit_index"])
            if key not in best or r["_distance"] < best[key]["_distance"]:
                best[key] = r
        hits = []
        for (title_id, unit_index), r in sorted(best.items(), key=lambda kv: kv[1]["_distance"]):
            unit = self.backend.select("units", [Cond("title_id", "=", title_id), Cond("unit_index", "=", int(unit_index))], limit=1)
            if not unit:
                continue
            u = unit[0]
            score = match_score(float(r["_distance"]) ** 0.5 if r["_distance"] > 0 else 0.0)
            h = _hit(u, "frame", score, {"channel": "frame", "distance": round(float(r["_distance"]) ** 0.5, 4), "matched_frame": r["frame"],
                                         "matched_t_s": r["t_s"], "dhash": r["dhash"], "method": "colour layout + dHash"})
            hits.append(h)
        threshold = 0.0 if q.min_score is None else q.min_score
        return [h for h in hits if h.score >= threshold][: q.top_k]


def _words(r: dict, channel: str) -> list | None:
    if channel != "speech" or not r.get("detail"):
        return None
    try:
        return json.loads(r["detail"]).get("words") or None
    except (ValueError, AttributeError):
        return None


def narrow(hit: Hit, query: str) -> None:
    """A speech hit whose segment holds several sentences (the recogniser joined them): its moment becomes the
    sentence that matches the query best (its first to last word), so the hit names the line that was said."""
    words = [w for w in hit.words or [] if w.get("start") is not None and w.get("end") is not None]
    sentences, current = [], []
    for w in words:
        current.append(w)
        if str(w["word"]).rstrip().endswith((".", "!", "?", "。", "！", "？")):
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    if len(sentences) < 2:
        return
    scored = [(lexical_score(query, " ".join(str(w["word"]) for w in sent)), i) for i, sent in enumerate(sentences)]
    best, i = max(scored)
    if best >= 0.5:
        hit.explanation["segment"] = [round(hit.start_s, 3), round(hit.end_s, 3)]
        hit.start_s, hit.end_s = float(sentences[i][0]["start"]), float(sentences[i][-1]["end"])


def _hit(r: dict, channel: str, score: float, explanation: dict) -> Hit:
    return Hit(words=_words(r, channel), title_id=r["title_id"], channel=channel, start_s=float(r["start_s"]), end_s=float(r["end_s"]), score=float(score),
               timecode=r.get("timecode") or "", text=r.get("text"), language=r.get("language"), track=r.get("track"),
               structure=r.get("structure"), scene_index=r.get("scene_index"), unit_index=r.get("unit_index"), row_id=r.get("row_id"),
               explanation=explanation, handle=r.get("_handle"), sentences=r.get("sentences"))


def _dedupe(hits: list[Hit]) -> list[Hit]:
    """Drop a hit overlapping a better one of the same title and channel with the same text."""
    kept: list[Hit] = []
    for h in hits:
        if any(k.title_id == h.title_id and k.channel == h.channel and k.text == h.text and k.start_s < h.end_s and h.start_s < k.end_s for k in kept):
            continue
        kept.append(h)
    return kept
