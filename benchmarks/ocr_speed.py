"""On-screen text OCR: the previous path against the current one, side by side in one run, on generated media.

    PYTHONPATH=. .venv/bin/python -m benchmarks.ocr_speed [--reps 2] [--no-variants] [--out FILE]

Writes `benchmarks/results/ocr_speed.json`.

Media (frames as the pipeline hands them to OCR: JPEGs, longest side 640 px):

- ``title-ko`` / ``title-ja`` (prism_assets_tests/support/text_media.py, seeds 0 and 1): a slate card, opening name cards
  over a moving mandelbrot, burned-in subtitle lines over testsrc2 / gradients / mandelbrot (one Korean or Japanese),
  rolling end credits on black (title-ko only). Frames at 2/s, scored by the prefilter and chosen by
  ``select_frames`` (<= 1 a second) as the text asset does; truth per frame from the title's construction (the rolling
  lines from their drawtext position and speed, a line counted while it is wholly in the picture).
- ``overlays``: 60 frames of real footage (Big Buck Bunny, ../shared/media; generated noise texture when absent), one a
  second, under a channel bug on every frame, two lower thirds (name and role on a dark bar, one Japanese), a white on
  green station sign and a Korean sign on a blue panel, each held for 8-16 frames, drawn with PIL.

Paths (``OcrConfig``): ``old`` = ``engine="cli", crop=False, reuse=False, batch=1``: the previous path (the whole
frame, one ``tesseract`` process per frame, psm 11); ``new`` = the defaults (text blocks, reuse, the kept engine: tesserocr
worker processes where installed, else the command line in batches). With variants: each step alone (``engine_only``: the kept engine on
whole frames; ``crop_no_reuse``), the command-line engine in batches (``new_cli``: where tesserocr is not installed),
tesserocr in this process (``new_inproc``) and the page segmentation mode of the blocks (``crop_psm6``, ``crop_psm11``).

Recorded per media and path: wall and CPU seconds (this process and its children, the live tesserocr workers included;
min over ``--reps``, runs interleaved; the engine's start, paid once per process by a kept engine, apart as engine_start_s),
frames, blocks, reads, reads saved by reuse, fraction of the frames' pixels read, character accuracy (1 - CER of the
best-matching line read in that frame, per visible truth line, micro-averaged), lines read (difflib ratio >= 0.8) and
false lines (read lines matching no truth line of the frame, counters of digits and punctuation aside).
"""

from __future__ import annotations

import argparse
import difflib
import io
import json
import os
import platform
import resource
import shutil
import sys
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO.parent / "shared" / "media"
WORK = REPO / ".prism" / "bench_media" / "ocr"
OUT = REPO / "benchmarks" / "results" / "ocr_speed.json"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
FONT_CJK = "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"

PATHS = {"old": dict(engine="cli", crop=False, reuse=False, batch=1), "new": {}}
VARIANTS = {"engine_only": dict(crop=False, reuse=False), "crop_no_reuse": dict(reuse=False), "new_cli": dict(engine="cli"),
            "new_inproc": dict(engine="inproc"), "crop_psm6": dict(crop_psm=6), "crop_psm11": dict(crop_psm=11)}


def norm(s: str) -> str:
    return " ".join(str(s).casefold().split())


def cer(truth: str, got: str) -> float:
    a, b = norm(truth), norm(got)
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1] / max(1, len(a))


def ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, norm(a), norm(b)).ratio()


# ---------------------------------------------------------------------------------------------- media


def title_visible(truth: dict, t: float) -> list[str]:
    """Truth lines wholly on screen at t (0.1 s away from a line's start and end)."""
    out = list(truth["slate"]["lines"]) if t < truth["slate"]["end_s"] - 0.1 else []
    out += [c["text"] for c in (truth["opening"] or {}).get("cards", []) if c["start_s"] + 0.1 < t < c["end_s"] - 0.1]
    out += [s["text"] for s in truth["subtitles"] if s["start_s"] + 0.1 < t < s["end_s"] - 0.1]
    ec, H = truth["end_credits"], truth["size"][1]  # noqa: N806
    if ec and t > ec["start_s"] + 0.1:
        for k, line in enumerate(ec["lines"]):
            i = k if k < 5 else k + 1  # text_media leaves one empty row between CAST and CREW
            y = H * 0.80 + i * 38 - (t - ec["start_s"]) * ec["speed_px_s"]
            if 2 <= y <= H - 32:
                out.append(line)
    return out


def titles() -> dict:
    from prism_assets.structure import ocr as O
    from prism_assets_tests.support.text_media import extract_frames, make_text_title

    out = {}
    for name, seed, credits, cjk in (("title-ko", 0, True, "ko"), ("title-ja", 1, False, "ja")):
        video = WORK / f"{name}.mp4"
        truth_p = video.with_suffix(".truth.json")
        truth = json.loads(truth_p.read_text()) if video.exists() and truth_p.exists() else make_text_title(video, seed, credits=credits, cjk=cjk)
        fps = truth["fps"]
        frames = extract_frames(video, list(range(0, int(truth["duration_s"] * fps), fps // 2)), fps)
        index = pd.DataFrame({"frame": [f for f, _, _ in frames], "t_s": [t for _, t, _ in frames],
                              "score": [O.text_likelihood(j) for _, _, j in frames]})
        chosen = set(O.select_frames(index, O.OcrConfig()).frame.astype(int))
        sel = [f for f in frames if f[0] in chosen]
        out[name] = {"frames": sel, "truth": {f: title_visible(truth, t) for f, t, _ in sel}, "languages": ("eng", {"ko": "kor", "ja": "jpn"}[cjk]),
                     "candidates": len(frames)}
    return out


def _backgrounds(n: int) -> list[np.ndarray]:
    bbb = MEDIA / "big_buck_bunny_0_30.webm"
    if bbb.exists():
        from prism_assets_tests.support.text_media import extract_frames

        frames = extract_frames(bbb, [int(k * 24 * 30 / n) for k in range(n)], 24)
        return [np.asarray(Image.open(io.BytesIO(j)).convert("RGB")) for _, _, j in frames]
    rng = np.random.default_rng(7)  # no footage: a moving blurred-noise texture
    base = np.asarray(Image.fromarray((rng.random((120, 220, 3)) * 255).astype(np.uint8)).resize((760, 420), Image.BICUBIC))
    return [base[k % 60:k % 60 + 360, (2 * k) % 120:(2 * k) % 120 + 640].copy() for k in range(n)]


def _panel(im: Image.Image, box: tuple[int, int, int, int], fill, lines: list[tuple[str, str, int]]) -> None:
    over = Image.new("RGBA", im.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(over)
    d.rectangle(box, fill=fill)
    y = box[1] + 8
    for text, font, size in lines:
        f = ImageFont.truetype(font, size)
        d.text((box[0] + 12, y), text, font=f, fill=(255, 255, 255, 255))
        y += int(size * 1.35)
    im.alpha_composite(over)


OVERLAYS = [  # (first, last frame, panel box, fill RGBA, [(text, font, px)])
    (0, 59, (500, 14, 626, 44), (0, 0, 0, 0), [("PRISM ONE", FONT, 16)]),
    (4, 15, (40, 262, 380, 336), (10, 10, 10, 170), [("MARA LINDQVIST", FONT, 24), ("Harbour Master", FONT, 18)]),
    (18, 33, (360, 70, 610, 150), (20, 110, 60, 255), [("PLATFORM 4", FONT, 28), ("Central Station", FONT, 20)]),
    (36, 45, (40, 272, 330, 322), (10, 10, 10, 170), [("東京タワーの夜景", FONT_CJK, 26)]),
    (48, 57, (380, 60, 600, 116), (30, 70, 160, 255), [("서울역 출구", FONT_CJK, 28)]),
]


def overlays(n: int = 60) -> dict:
    frames, truth = [], {}
    for k, bg in enumerate(_backgrounds(n)):
        im = Image.fromarray(bg).convert("RGBA")
        want = []
        for first, last, box, fill, lines in OVERLAYS:
            if first <= k <= last:
                _panel(im, box, fill, lines)
                want += [t for t, _, _ in lines]
        buf = io.BytesIO()
        im.convert("RGB").save(buf, format="JPEG", quality=90)
        frames.append((k, float(k), buf.getvalue()))
        truth[k] = want
    return {"overlays": {"frames": frames, "truth": truth, "languages": ("eng", "kor", "jpn"), "candidates": n}}


# ---------------------------------------------------------------------------------------------- scoring


def score(df: pd.DataFrame, truth: dict[int, list[str]]) -> dict:
    by_frame = {f: g["text"].tolist() for f, g in df.groupby("frame")} if len(df) else {}
    accs, hits, false = [], 0, 0
    for f, want in truth.items():
        got = by_frame.get(f, [])
        for w in want:
            best = max(got, key=lambda g: ratio(g, w), default="")
            accs.append(max(0.0, 1.0 - cer(w, best)))
            hits += ratio(best, w) >= 0.8
        false += sum(1 for g in got if max((ratio(g, w) for w in want), default=0.0) < 0.5 and not all(c in "0123456789:;.,- " for c in g))
    return {"truth_lines": len(accs), "char_sum": float(np.sum(accs)), "char_accuracy": round(float(np.mean(accs)), 4) if accs else None,
            "lines_read": int(hits), "false_lines": int(false)}


def _live_children_cpu() -> float:
    """CPU seconds of this process's live children (the kept tesserocr workers: RUSAGE_CHILDREN counts only ended ones)."""
    tck, me, tot = os.sysconf("SC_CLK_TCK"), os.getpid(), 0.0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                st = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            f = st[st.rindex(")") + 2:].split()
            if int(f[1]) == me:
                tot += (int(f[11]) + int(f[12])) / tck
    return tot


def cpu_s() -> float:
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime + _live_children_cpu()


def start_engine(cfg, frames) -> float:
    """Seconds to load the engine (a kept engine pays it once per process; timed apart): a read on `workers` threads."""
    from prism_assets.structure import ocr as O

    t0 = time.perf_counter()
    O.ocr_frames(frames[: max(2, cfg.n_workers())], replace(cfg, reuse=False))
    return time.perf_counter() - t0


def run_path(cfg, frames) -> tuple[pd.DataFrame, float, float]:
    from prism_assets.structure import ocr as O

    t0, c0 = time.perf_counter(), cpu_s()
    df, warnings = O.ocr_frames(frames, cfg)
    if warnings:
        print(f"  warnings: {warnings[:3]}", file=sys.stderr)
    return df, time.perf_counter() - t0, cpu_s() - c0


def main(argv: list[str] | None = None) -> int:
    from prism_assets.structure import ocr as O
    from prism_assets.structure import ocr_engine as E

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--no-variants", action="store_true")
    args = ap.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    paths = dict(PATHS) if args.no_variants else {**PATHS, **VARIANTS}
    t_all = time.monotonic()
    media = {**titles(), **overlays()}
    load0 = os.getloadavg()
    results: dict = {m: {} for m in media}
    for rep in range(args.reps):
        for m, spec in media.items():
            for p, over in paths.items():
                cfg = replace(O.OcrConfig(languages=spec["languages"]), **over)
                r = results[m].setdefault(p, {"wall_s": [], "cpu_s": []})
                if rep == 0:
                    r["engine_start_s"] = round(start_engine(cfg, spec["frames"]), 2)
                df, wall, cpu = run_path(cfg, spec["frames"])
                r["wall_s"].append(round(wall, 2))
                r["cpu_s"].append(round(cpu, 2))
                if rep == 0:
                    r.update({"engine": O.engine_info(cfg)["api"], **df.attrs["ocr_read"], **score(df, spec["truth"])})
                print(json.dumps({"rep": rep, "media": m, "path": p, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                                  "reads": r["reads"], "char_accuracy": r["char_accuracy"]}), flush=True)
    summary = {}
    for p in paths:
        rows = [results[m][p] for m in media]
        n_lines = sum(r["truth_lines"] for r in rows)
        summary[p] = {"wall_s": round(sum(min(r["wall_s"]) for r in rows), 2), "cpu_s": round(sum(min(r["cpu_s"]) for r in rows), 2),
                      "frames": sum(r["frames"] for r in rows), "reads": sum(r["reads"] for r in rows),
                      "reads_saved_by_reuse": sum(r["reused_blocks"] for r in rows),
                      "char_accuracy": round(sum(r["char_sum"] for r in rows) / n_lines, 4), "lines_read": f"{sum(r['lines_read'] for r in rows)}/{n_lines}",
                      "false_lines": sum(r["false_lines"] for r in rows)}
    for s in summary.values():
        s["cpu_per_frame_s"] = round(s["cpu_s"] / s["frames"], 3)
        s["speedup_wall_vs_old"] = round(summary["old"]["wall_s"] / s["wall_s"], 2) if s["wall_s"] else None
        s["speedup_cpu_vs_old"] = round(summary["old"]["cpu_s"] / s["cpu_s"], 2) if s["cpu_s"] else None
    tv = E.tesserocr_version()
    exe = shutil.which("tesseract")
    doc = {"generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg_start": [round(x, 2) for x in load0],
                       "loadavg_end": [round(x, 2) for x in os.getloadavg()], "shared": "2 cores shared with other work"},
           "engines": {"cli": E.cli_langs(exe)[1] if exe else None, "tesserocr": list(tv) if tv else None,
                       "auto": E.resolve("auto", exe), "tessdata": E.tessdata_dir(exe)},
           "method": __doc__.split("\n\n", 3)[3].strip(), "reps": args.reps,
           "defaults": {k: v for k, v in asdict(O.OcrConfig()).items() if k in ("engine", "crop", "reuse", "reuse_gap_s", "batch", "psm", "crop_psm",
                                                                                 "workers", "timeout_s")},
           "paths": paths, "media": {m: {"frames": len(s["frames"]), "candidates": s["candidates"], "languages": list(s["languages"]),
                                        "truth_lines": results[m]["old"]["truth_lines"]} for m, s in media.items()},
           "summary": summary, "results": results, "seconds": round(time.monotonic() - t_all, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, ensure_ascii=False, default=str) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
