"""Scenes: shots grouped into scenes from what Prism already has per title.

Inputs: shots.parquet (boundaries, transitions, black shots), per-shot pictures (keyframes and 1-fps
samples) for a colour/layout look, shot CLIP embeddings (only when their weights are trained), and
the original audio track's segments (speech | music | silence) and VAD speech regions.

Method (overlapping links, after Rasheed & Shah 2005 / Hanjalic et al. 1999 "logical story units"):

1. Look. `shot_colour_features`: per picture an HSV joint histogram (12 soft hue bins x 2
   saturation x 3 value bins for chromatic pixels, 4 value bins for grey ones; sums to 1) and a
   4 x 4 layout of mean Y/Cb/Cr (0-1), averaged over the shot's pictures. `look_similarity` =
   `hist_weight` x histogram intersection + (1 - `hist_weight`) x (1 - mean layout difference /
   0.25), in 0-1. With trained embeddings the look is blended with the CLIP cosine mapped from
   [`embedding_lo`, `embedding_hi`] to [0, 1] (weight `embedding_weight`).
2. Links. Black shots (`is_black`) and shots without pictures are left out of the linking. Two
   content shots at most `window_shots` content shots and `window_s` seconds apart are linked when
   their similarity is >= `link_sim`. For every gap between consecutive content shots, `cross` is
   the best similarity of any pair within the window that straddles the gap. A B A B keeps links
   across every cut, so shot / reverse-shot stays one scene; the visual evidence for a boundary is
   1 at cross <= `change_sim`, 0 at cross >= `link_sim`, linear between.
3. Evidence per gap: score = w_visual x visual + w_black x (1 for a black shot in the gap, 0.8
   for a fade out/in without one, 0.3 for a dissolve) + w_silence x min(1, silence / silence_full_s)
   (a silence segment touching the gap within 0.5 s) - w_speech x (1 when a VAD speech region runs
   across the gap, `speech_segment_factor` when only a speech segment (pauses < 1.2 s bridged) does)
   - w_music x (1 when a music segment runs across). A gap is a boundary at score >= `threshold`.
   With the defaults: a look change alone is a boundary (0.7); a look change under continuing
   speech is not (0.25): the veto; black, or a fade, alone is (0.6); silence alone is not (0.3).
4. Minimum length: while a scene has fewer than `min_scene_shots` content shots and lasts less than
   `min_scene_s`, its weaker boundary is removed (an isolated insert or cutaway joins its neighbour).
5. Black shots belong to the scene before them (the fade-out ends a scene; the next scene starts at
   its first picture); black at the title's start belongs to the first scene. Scenes tile the title.
6. Keyframe: the content shot whose look is closest to the scene's mean look (among shots that have
   keyframes), its best-`score` keyframe.

Evidence for the defaults: tests/support/scene_media.py titles (locations with their own grade,
2-3 angles each, A B A C B shot patterns, cuts / black / fades between scenes, voices and music per
scene), seeds 1-12: look similarity of shot pairs up to 6 shots apart was >= 0.53 inside a scene
(5th percentile 0.53-0.82 per title) and <= 0.24 across scenes, so `link_sim` 0.55 / `change_sim`
0.35 sit in that gap (window 6 > the longest run of shots without a repeated angle). The first
tuning run (seed 2) missed a scene change where dialogue ran up to the cut on both sides: the
pause-bridged speech segment spanned it (0.7 - 0.45 x 0.5 = 0.475 < 0.5); a segment only says
that speech resumed within 1.2 s, hence `speech_segment_factor` 0.3. With the defaults, boundary
F1 within one shot was 1.0 on seeds 1-12 (seeds 7-12 held out from the tuning). The embedding
defaults (weight 0.6; cosine 0.70 -> 0, 0.90 -> 1) follow the usual CLIP ViT-B-32 range for same /
different settings and were NOT validated here (tests only have random-init weights).

Those titles separate by look alone (F1 1.0 also without any audio). With neighbouring grades only
12 degrees of hue apart (`hue_step=12`, seeds 1-6) F1 was 0.86, 0.86, 1.0, 1.0, 0.67, 0.86 (mean
0.87; precision 1.0): every miss a plain cut between look-alike scenes with no silence (music on
both sides, or speech resuming within 1.2 s); black and fades were all found.

Limits: scenes are told apart by look and sound only: two scenes in the same location (or the same
grade) joined by a plain cut with no audio change are one scene; one location whose look changes
strongly (lights off, a wide and an extreme close-up of a differently coloured object) can split;
a scene change under continuing speech (J/L-cut, voice-over) is vetoed unless black or a fade marks
it; a scene shorter than `min_scene_shots` shots and `min_scene_s` is merged into a neighbour;
random-init embeddings carry no meaning and must not be passed (`usable_embeddings` gates them);
music continuity is from segment kinds only (a change of music under a cut is not seen).
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from prism_assets.core.config import known_settings

N_HUE, N_SAT, N_VAL, N_GREY = 12, 2, 3, 4
N_HIST = N_HUE * N_SAT * N_VAL + N_GREY
LAYOUT_SCALE = 0.25  # mean layout difference at which the layout similarity reaches 0
COLUMNS = ["scene_index", "start_shot", "end_shot", "n_shots", "shots", "start_s", "end_s", "boundary_in", "boundary_score",
           "keyframe_shot", "keyframe_frame", "keyframe_t_s"]


@dataclass(frozen=True)
class SceneParams:
    window_shots: int = 6  # a shot links to content shots at most this many content shots back
    window_s: float = 60.0  # ... and at most this many seconds back (end of the earlier to start of the later)
    link_sim: float = 0.55  # similarity at which two shots share a look (a link; no visual evidence across it)
    change_sim: float = 0.35  # best similarity across a gap at or below which the visual evidence is full
    hist_weight: float = 0.75  # histogram vs 4x4 layout in the look similarity
    embedding_weight: float = 0.6  # share of trained CLIP embeddings in the similarity (when given)
    embedding_lo: float = 0.70  # CLIP cosine mapped to similarity 0
    embedding_hi: float = 0.90  # CLIP cosine mapped to similarity 1
    w_visual: float = 0.7
    w_black: float = 0.6
    w_silence: float = 0.3
    silence_full_s: float = 1.0  # silence this long at a gap is full evidence
    w_speech: float = 0.45  # speech running across a gap (a veto of weak boundaries)
    speech_segment_factor: float = 0.3  # only a speech segment (pauses bridged), no VAD region, runs across
    speech_guard_s: float = 0.25  # speech must run this far past both sides of the gap
    w_music: float = 0.1
    threshold: float = 0.5
    min_scene_shots: int = 2
    min_scene_s: float = 8.0

    @classmethod
    def from_config(cls, cfg: dict | None) -> "SceneParams":
        return cls(**known_settings(cls, cfg, "scene settings"))

    def as_dict(self) -> dict:
        return asdict(self)


def _picture_descriptor(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (160, 160))
        im = im.convert("RGB")
        im.thumbnail((96, 96))
        if im.width < 4 or im.height < 4:  # a tiny picture (1x1 video): pixels repeated, so each 4 x 4 layout cell has one
            im = im.resize((max(4, im.width), max(4, im.height)), Image.NEAREST)
        hsv = np.asarray(im.convert("HSV"), dtype=np.float32) / 255.0
        ycc = np.asarray(im.convert("YCbCr"), dtype=np.float32) / 255.0
    h, s, v = hsv[..., 0].ravel(), hsv[..., 1].ravel(), hsv[..., 2].ravel()
    chroma = (s >= 0.15) & (v >= 0.15)
    hist = np.zeros(N_HIST, np.float64)
    grey = np.minimum((v[~chroma] * N_GREY).astype(int), N_GREY - 1)
    np.add.at(hist, N_HUE * N_SAT * N_VAL + grey, 1.0)
    hf = h[chroma] * N_HUE - 0.5  # soft hue: each pixel split between its two nearest (circular) bins
    h0 = np.floor(hf).astype(int)
    w1 = hf - h0
    sb = np.minimum((s[chroma] * N_SAT).astype(int), N_SAT - 1)
    vb = np.minimum((v[chroma] * N_VAL).astype(int), N_VAL - 1)
    for hb, w in ((h0 % N_HUE, 1 - w1), ((h0 + 1) % N_HUE, w1)):
        np.add.at(hist, (hb * N_SAT + sb) * N_VAL + vb, w)
    hist /= max(hist.sum(), 1e-9)
    rows = np.array_split(np.arange(ycc.shape[0]), 4)
    cols = np.array_split(np.arange(ycc.shape[1]), 4)
    layout = np.array([ycc[r][:, c].reshape(-1, 3).mean(axis=0) for r in rows for c in cols]).ravel()
    return np.concatenate([hist, layout])


def shot_colour_features(pictures: list[tuple[int, bytes]]) -> dict[int, np.ndarray]:
    """Per shot_index the mean look descriptor of its JPEG pictures (N_HIST histogram bins, then a
    4 x 4 x (Y, Cb, Cr) layout). A picture that does not decode is skipped."""
    acc: dict[int, list[np.ndarray]] = {}
    for shot, data in pictures:
        try:
            acc.setdefault(int(shot), []).append(_picture_descriptor(data))
        except (OSError, ValueError):
            continue
    return {k: np.mean(v, axis=0) for k, v in acc.items() if v}


def look_similarity(a: np.ndarray, b: np.ndarray, hist_weight: float = 0.75) -> float:
    """0-1: histogram intersection blended with the layout agreement."""
    hist = float(np.minimum(a[:N_HIST], b[:N_HIST]).sum())
    layout = max(0.0, 1.0 - float(np.abs(a[N_HIST:] - b[N_HIST:]).mean()) / LAYOUT_SCALE)
    return hist_weight * hist + (1 - hist_weight) * layout


def usable_embeddings(shot_embeddings: pd.DataFrame | None, model_info: dict | None) -> dict[int, np.ndarray] | None:
    """shot_embeddings.parquet rows as {shot_index: unit vector}, or None unless the producer's model
    says `weights_trained` (random-init embeddings have no meaning)."""
    if shot_embeddings is None or not (model_info or {}).get("weights_trained", False) or shot_embeddings.empty:
        return None
    out = {}
    for shot, emb in zip(shot_embeddings["shot_index"], shot_embeddings["embedding"]):
        v = np.asarray(emb, dtype=np.float64)
        n = np.linalg.norm(v)
        if n > 0:
            out[int(shot)] = v / n
    return out or None


def _similarity(i: int, j: int, colour: dict, embeddings: dict | None, p: SceneParams) -> float:
    sim = look_similarity(colour[i], colour[j], p.hist_weight)
    if embeddings is not None and i in embeddings and j in embeddings:
        cos = float(np.dot(embeddings[i], embeddings[j]))
        e = min(1.0, max(0.0, (cos - p.embedding_lo) / (p.embedding_hi - p.embedding_lo)))
        sim = (1 - p.embedding_weight) * sim + p.embedding_weight * e
    return sim


def _spans(intervals, a: float, b: float, guard: float) -> bool:
    return any(s < a - guard and e > b + guard for s, e in intervals)


def boundary_evidence(shots: pd.DataFrame, colour: dict[int, np.ndarray], embeddings: dict[int, np.ndarray] | None, segments: list[dict],
                      speech: list[tuple[float, float]], params: SceneParams) -> pd.DataFrame:
    """One row per gap between consecutive content shots (not black, with a look): the shots either
    side, the gap's time span, every piece of evidence, the score and whether it is a boundary."""
    p = params
    sh = shots.sort_values("shot_index").reset_index(drop=True)
    black = sh["is_black"].astype(bool).to_numpy() if "is_black" in sh else np.zeros(len(sh), bool)
    content = [k for k in range(len(sh)) if not black[k] and int(sh.at[k, "shot_index"]) in colour]
    idx = [int(sh.at[k, "shot_index"]) for k in content]
    sims: dict[tuple[int, int], float] = {}
    for a in range(len(content)):
        for b in range(a + 1, min(len(content), a + p.window_shots + 1)):
            if float(sh.at[content[b], "start_s"]) - float(sh.at[content[a], "end_s"]) <= p.window_s:
                sims[(a, b)] = _similarity(idx[a], idx[b], colour, embeddings, p)
    silences = [(float(s["start_s"]), float(s["end_s"])) for s in segments if s.get("kind") == "silence"]
    speech_segs = [(float(s["start_s"]), float(s["end_s"])) for s in segments if s.get("kind") == "speech"]
    music_segs = [(float(s["start_s"]), float(s["end_s"])) for s in segments if s.get("kind") == "music"]
    rows = []
    for g in range(len(content) - 1):
        left, right = content[g], content[g + 1]
        t0, t1 = float(sh.at[left, "end_s"]), float(sh.at[right, "start_s"])
        crossing = [(s, a, b) for (a, b), s in sims.items() if a <= g < b]
        cross, ca, cb = max(crossing) if crossing else (0.0, g, g + 1)
        visual = min(1.0, max(0.0, (p.link_sim - cross) / (p.link_sim - p.change_sim)))
        between = sh.iloc[left + 1:right]
        black_s = float((between["end_s"] - between["start_s"]).sum()) if len(between) else 0.0
        t_out, t_in = str(sh.at[left, "transition_out"]) if "transition_out" in sh else "", str(sh.at[right, "transition_in"]) if "transition_in" in sh else ""
        if black_s > 0:
            blk, blk_txt = 1.0, f"black {black_s:.1f} s"
        elif "fade_out" in (t_out, t_in) or "fade_in" in (t_out, t_in):
            blk, blk_txt = 0.8, "fade"
        elif "dissolve" in (t_out, t_in):
            blk, blk_txt = 0.3, "dissolve"
        else:
            blk, blk_txt = 0.0, ""
        sil_s = max([e - s for s, e in silences if s <= t1 + 0.5 and e >= t0 - 0.5] or [0.0])
        sil = min(1.0, sil_s / p.silence_full_s)
        if _spans(speech, t0, t1, p.speech_guard_s):
            sp = 1.0
        elif _spans(speech_segs, t0, t1, p.speech_guard_s):
            sp = p.speech_segment_factor
        else:
            sp = 0.0
        mu = 1.0 if _spans(music_segs, t0, t1, p.speech_guard_s) else 0.0
        score = p.w_visual * visual + p.w_black * blk + p.w_silence * sil - p.w_speech * sp - p.w_music * mu
        parts = []
        if visual > 0:
            n_back = g - max(0, g - p.window_shots + 1) + 1
            parts.append(f"look change {visual:.2f}, best match across {cross:.2f} (shots {idx[ca]}/{idx[cb]}) over the previous {n_back} shots")
        if blk_txt:
            parts.append(blk_txt)
        if sil > 0:
            parts.append(f"silence {sil_s:.1f} s")
        text = " + ".join(parts) if parts else f"shared look {cross:.2f}"
        if sp:
            text += "; speech continues across" if sp == 1.0 else "; speech segment continues across"
        if mu:
            text += "; music continues across"
        rows.append({"left_shot": idx[g], "right_shot": idx[g + 1], "gap_start_s": t0, "gap_end_s": t1, "cross_sim": cross, "visual": visual,
                     "black_s": black_s, "black": blk, "silence_s": sil_s, "speech": sp, "music": mu, "score": score,
                     "boundary": score >= p.threshold, "evidence": text})
    cols = ["left_shot", "right_shot", "gap_start_s", "gap_end_s", "cross_sim", "visual", "black_s", "black", "silence_s", "speech", "music",
            "score", "boundary", "evidence"]
    return pd.DataFrame(rows, columns=cols)


def _merge_short(gaps: pd.DataFrame, content_times: dict[int, tuple[float, float]], order: list[int], p: SceneParams) -> list[int]:
    """Gap rows that stay boundaries after short scenes are merged (the weaker side goes first)."""
    kept = [g for g in range(len(gaps)) if gaps.at[g, "boundary"]]
    while kept:
        starts = [0] + [g + 1 for g in kept]  # positions in `order` where scenes start
        ends = [g for g in kept] + [len(order) - 1]
        short = []
        for k, (a, b) in enumerate(zip(starts, ends)):
            dur = content_times[order[b]][1] - content_times[order[a]][0]
            if b - a + 1 < p.min_scene_shots and dur < p.min_scene_s:
                short.append((b - a + 1, dur, k))
        if not short:
            break
        _, _, k = min(short)
        # the boundary before (k-1) or after (k) the scene: the weaker goes; on a tie, the one towards the shorter neighbour
        sides = [i for i in (k - 1, k) if 0 <= i < len(kept)]
        size = {k - 1: (ends[k - 1] - starts[k - 1]) if k > 0 else 0, k: (ends[k + 1] - starts[k + 1]) if k + 1 < len(starts) else 0}
        kept.pop(min(sides, key=lambda i: (round(float(gaps.at[kept[i], "score"]), 3), size[i])))
    return kept


def group_scenes(shots: pd.DataFrame, colour: dict[int, np.ndarray], embeddings: dict[int, np.ndarray] | None, segments: list[dict],
                 speech: list[tuple[float, float]], params: SceneParams, keyframes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Scenes tiling the title's shots (see the module docstring); columns `COLUMNS`."""
    if shots is None or shots.empty:
        return pd.DataFrame(columns=COLUMNS)
    sh = shots.sort_values("shot_index").reset_index(drop=True)
    gaps = boundary_evidence(sh, colour, embeddings, segments or [], speech or [], params)
    all_idx = [int(x) for x in sh["shot_index"]]
    times = {int(r.shot_index): (float(r.start_s), float(r.end_s)) for r in sh.itertuples()}
    order = [int(x) for x in gaps["left_shot"]] + ([int(gaps["right_shot"].iloc[-1])] if len(gaps) else [])
    if not order:  # no gaps: at most one content shot
        black = sh["is_black"].astype(bool) if "is_black" in sh else pd.Series(False, index=sh.index)
        order = [int(s) for s, b in zip(sh["shot_index"], black) if not b and int(s) in colour][:1]
    kept = _merge_short(gaps, times, order, params) if len(gaps) else []
    starts = {int(gaps.at[g, "right_shot"]): g for g in kept}
    scenes: list[list[int]] = [[]]
    for s in all_idx:
        if s in starts and scenes[-1]:
            scenes.append([])
        scenes[-1].append(s)
    rows = []
    for k, members in enumerate(scenes):
        g = starts.get(members[0]) if k else None
        look = [s for s in members if s in colour and s in order]
        rows.append({"scene_index": k, "start_shot": members[0], "end_shot": members[-1], "n_shots": len(members), "shots": members,
                     "start_s": times[members[0]][0], "end_s": times[members[-1]][1],
                     "boundary_in": "start" if g is None else str(gaps.at[g, "evidence"]),
                     "boundary_score": 1.0 if g is None else float(min(1.0, max(0.0, gaps.at[g, "score"]))),
                     **_keyframe(look, colour, params, keyframes)})
    out = pd.DataFrame(rows, columns=COLUMNS)
    out["keyframe_shot"] = out["keyframe_shot"].astype("Int64")
    out["keyframe_frame"] = out["keyframe_frame"].astype("Int64")
    out["keyframe_t_s"] = out["keyframe_t_s"].astype("float64")
    return out


def _keyframe(look: list[int], colour: dict, p: SceneParams, keyframes: pd.DataFrame | None) -> dict:
    none = {"keyframe_shot": None, "keyframe_frame": None, "keyframe_t_s": np.nan}
    if not look:
        return none
    mean = np.mean([colour[s] for s in look], axis=0)
    ranked = sorted(look, key=lambda s: -look_similarity(colour[s], mean, p.hist_weight))
    if keyframes is None or keyframes.empty:
        return {**none, "keyframe_shot": ranked[0]}
    for s in ranked:
        rows = keyframes[keyframes["shot_index"] == s]
        if len(rows):
            best = rows.sort_values("score", ascending=False).iloc[0]
            return {"keyframe_shot": s, "keyframe_frame": int(best["frame"]), "keyframe_t_s": float(best["t_s"])}
    return {**none, "keyframe_shot": ranked[0]}


def scene_accuracy(found: pd.DataFrame, truth_boundaries_shot: list[int], n_shots: int, tolerance_shots: int = 1) -> dict:
    """Precision / recall / F1 of scene starts (the title's start excluded), each truth start matched
    at most once to a found start within `tolerance_shots` shots."""
    f = sorted({int(s) for s in (found["start_shot"] if len(found) else [])} - {0})
    t = sorted({int(s) for s in truth_boundaries_shot if 0 < int(s) < n_shots})
    used: set[int] = set()
    matched = 0
    for b in t:
        cands = [x for x in f if abs(x - b) <= tolerance_shots and x not in used]
        if cands:
            used.add(min(cands, key=lambda x: abs(x - b)))
            matched += 1
    precision = matched / len(f) if f else 1.0
    recall = matched / len(t) if t else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "matched": matched, "found": len(f), "truth": len(t),
            "spurious": [x for x in f if x not in used], "missed": [b for b in t if not any(abs(x - b) <= tolerance_shots for x in used)]}
