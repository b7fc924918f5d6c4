"""Score predicted shot boundaries against exact ground truth.

A *boundary* is the first frame (0-based, decode order) of every shot after the first. Ground truth is
a dict in the format of ``shared/media/qc_composite.gt.json`` (``hard_cuts`` + typed ``events``) or of
``shared/media/big_buck_bunny_0_30.gt.json`` (``hard_cuts`` + ``gradual``); see
``prism_assets_tests/support/visual_media.py`` for generated ones.

Rules (strict on purpose):

* every hard cut -- ``gt["hard_cuts"]`` and events of type ``hard_cut`` / ``hard_cut_to_black`` (the
  union, de-duplicated by frame) -- is matched by one predicted boundary within ``±tol`` frames;
* every gradual transition -- events of type ``dissolve``, ``fade_in``, ``fade_out``,
  ``fade_in_from_black``, ``fade_out_to_black``, ``wipe`` and the entries of ``gt["gradual"]`` (de-duplicated
  by ``(first, last)``) -- is matched by one predicted boundary inside ``[first - tol, last + tol]``;
* matching is one-to-one and greedy, nearest first: all admissible (gt item, prediction) pairs are sorted
  by distance (``|p - frame|`` for a cut; 0 inside a gradual's ``[first, last]``, else the distance to the
  range; ties broken by the distance to the gradual's centre, then by frame), and taken in that order when
  neither side is used yet. So a second boundary inside the same dissolve is a false positive;
* every predicted boundary left unmatched is a false positive. There are NO exemptions: a boundary at
  the start or at the end+1 of a ``black`` segment counts only if it matches a gt cut or gradual
  transition (for qc_composite the cut to black at 288 and the fade-in 336-359 are such items; a second
  boundary at, say, 336 next to one at 340 is a false positive). Freezes, title overlays, camera motion
  and near-static content are never boundaries, so predictions there are false positives;
* predictions are de-duplicated (a boundary list is a set of shot starts) and otherwise taken as given:
  a prediction at frame 0 or past the end is simply unmatched, i.e. a false positive.

``precision = tp / (tp + fp)`` and ``recall = tp / (tp + fn)``, each 1.0 when its denominator is 0;
``f1`` is their harmonic mean (0.0 when both are 0).
"""

from __future__ import annotations

import json
from pathlib import Path

CUT_TYPES = ("hard_cut", "hard_cut_to_black")
GRADUAL_TYPES = ("dissolve", "fade_in", "fade_out", "fade_in_from_black", "fade_out_to_black", "wipe")


def load_gt(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def gt_items(gt: dict) -> list[dict]:
    """The boundary items of `gt`: ``{"kind": "cut", "type", "frame"}`` or
    ``{"kind": "gradual", "type", "first", "last"}``, sorted by position."""
    cuts: dict[int, str] = {int(f): "hard_cut" for f in gt.get("hard_cuts", [])}
    grads: dict[tuple[int, int], str] = {}
    for e in gt.get("events", []):
        t = e.get("type")
        if t in CUT_TYPES:
            f = int(e["frame"])
            if cuts.get(f, "hard_cut") == "hard_cut":
                cuts[f] = t
        elif t in GRADUAL_TYPES:
            grads.setdefault((int(e["first"]), int(e["last"])), t)
    for e in gt.get("gradual", []):
        grads.setdefault((int(e["first"]), int(e["last"])), e.get("type", "gradual"))
    items = [dict(kind="cut", type=t, frame=f) for f, t in cuts.items()]
    items += [dict(kind="gradual", type=t, first=a, last=b) for (a, b), t in grads.items()]
    items.sort(key=lambda it: (it.get("frame", it.get("first")), it["kind"]))
    return items


def _distance(item: dict, p: int) -> float:
    if item["kind"] == "cut":
        return abs(p - item["frame"])
    if item["first"] <= p <= item["last"]:
        return 0
    return item["first"] - p if p < item["first"] else p - item["last"]


def score_boundaries(pred_boundaries: list[int], gt: dict, tol: int = 1) -> dict:
    """Score predicted boundaries (first frame of each shot after the first) against `gt`.

    Returns ``{tp, fp, fn, precision, recall, f1, matched, false_positives, missed}`` plus ``n_gt``,
    ``n_pred``, ``tol`` and a per-kind (``cut`` / ``gradual``) breakdown. See the module docstring for
    the rules.
    """
    preds = sorted({int(p) for p in pred_boundaries})
    items = gt_items(gt)
    pairs = []
    for i, it in enumerate(items):
        for p in preds:
            d = _distance(it, p)
            if d <= tol:
                centre = abs(p - it["frame"]) if it["kind"] == "cut" else abs(p - (it["first"] + it["last"]) / 2)
                pairs.append((d, centre, p, i))
    pairs.sort()
    used_gt: dict[int, tuple[int, float]] = {}
    used_pred: set[int] = set()
    for d, _, p, i in pairs:
        if i in used_gt or p in used_pred:
            continue
        used_gt[i] = (p, d)
        used_pred.add(p)

    matched = []
    for i, it in enumerate(items):
        if i in used_gt:
            p, d = used_gt[i]
            m = dict(gt=it, pred=p, distance=d)
            if it["kind"] == "cut":
                m["offset"] = p - it["frame"]
            matched.append(m)
    missed = [it for i, it in enumerate(items) if i not in used_gt]
    false_positives = [p for p in preds if p not in used_pred]

    tp, fp, fn = len(matched), len(false_positives), len(missed)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    by_kind = {}
    for kind in ("cut", "gradual"):
        n = sum(1 for it in items if it["kind"] == kind)
        k_tp = sum(1 for m in matched if m["gt"]["kind"] == kind)
        by_kind[kind] = dict(n=n, tp=k_tp, fn=n - k_tp, recall=k_tp / n if n else 1.0)
    return dict(tp=tp, fp=fp, fn=fn, precision=precision, recall=recall, f1=f1, matched=matched,
                false_positives=false_positives, missed=missed, n_gt=len(items), n_pred=len(preds), tol=tol,
                by_kind=by_kind)


def shots_to_boundaries(shots_df) -> list[int]:
    """Boundaries from a shots table: the sorted ``start_frame`` values, the first shot skipped."""
    starts = sorted({int(s) for s in shots_df["start_frame"]})
    return starts[1:]


def summary(score: dict) -> str:
    """One line: P/R/F1 with counts, missed items and false positives."""
    def fmt(it):
        return f"{it['type']}@{it['frame']}" if it["kind"] == "cut" else f"{it['type']}@{it['first']}-{it['last']}"
    return (f"P={score['precision']:.3f} R={score['recall']:.3f} F1={score['f1']:.3f} "
            f"(tp={score['tp']} fp={score['fp']} fn={score['fn']}; missed: "
            f"{', '.join(fmt(it) for it in score['missed']) or '-'}; fp at: {score['false_positives'] or '-'})")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="score boundaries (JSON list or {'boundaries': [...]}) against a gt")
    ap.add_argument("gt", type=Path)
    ap.add_argument("pred", type=Path)
    ap.add_argument("--tol", type=int, default=1)
    a = ap.parse_args()
    pred = json.loads(a.pred.read_text())
    if isinstance(pred, dict):
        pred = pred["boundaries"]
    s = score_boundaries(pred, load_gt(a.gt), tol=a.tol)
    print(summary(s))
