"""A generated long title: many distinct segments (lavfi pictures, cuts, dissolves, fades, signs, espeak-ng speech in
several voices, end credits), rendered in parallel and concatenated; cached under .prism/bench_media/feature/.

    PYTHONPATH=. .venv/bin/python -m benchmarks.feature_media --minutes 120 [--size 1920x1080] [--fps 24] [--jobs N]

`make_feature(seconds, size, fps, seed)` returns the path of the MP4 (H.264 + AAC stereo 48 kHz); its truth (shots,
transitions, signs, speech lines, credits start) is written beside it as `<name>.truth.json`. The file name carries a
hash of every parameter and the generator's version, so a changed parameter renders a new file and an unchanged one is
reused. Segments (~60 s each) are rendered by `jobs` ffmpeg processes at once (one thread each) and joined with the
concat demuxer (stream copy); a rendered segment is kept until the whole title exists, so an interrupted run resumes.

Each content segment: shots of 2.5-9 s from a pinned random choice of lavfi sources (testsrc2, mandelbrot, life,
cellauto, gradients, sierpinski, scrolling rgb/yuv test patterns and colour spectra, moving boxes, snow), each with its
own parameters, hue, a handheld-like drifting crop on some and film grain on some, rendered at a quarter of the size
and scaled up (the expensive sources stay cheap at 1080p); joined by hard cuts (~70 %), dissolves (~15 %, 0.5-1.2 s) and
fades through black (~15 %); signs (a text on a plate) on ~30 % of the shots and name captions on some; speech on ~90 %
of the segments (2-3 speakers of 8 espeak-ng voices alternating, sentences drawn from a combinatorial grammar: about
15,000 distinct), over a quiet noise bed. The last segment: end credits rolling over black with music.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from prism_assets_tests.support.localization_media import SR, _wav, bed, speak
from prism_assets_tests.support.text_media import FONT, NAMES, ROLES, _melody

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".prism" / "bench_media" / "feature"
VERSION = 2
SEGMENT_S = 60.0
MAX_KBPS_1080P = 6000
VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-029", "en-us+f3", "en-gb+f2", "en-gb-x-rp+m3", "en-us+m7"]
KINDS = ["testsrc2", "mandelbrot", "life", "cellauto", "gradients", "sierpinski", "rgbtestsrc", "yuvtestsrc", "colorspectrum", "box",
         "gradients", "testsrc2", "mandelbrot", "box", "snow"]
SUBJ = ["The old captain", "My sister", "The night nurse", "A tired mechanic", "Our new neighbour", "The station master", "Professor Hale",
        "The young pilot", "That quiet farmer", "The hotel clerk", "The detective", "Your cousin from the coast", "The baker", "A stranger"]
VERB = ["found", "lost", "painted", "repaired", "sold", "forgot", "carried", "hid", "borrowed", "photographed", "delivered", "opened"]
OBJ = ["a silver key", "the blue suitcase", "an old map of the harbour", "seven letters", "the broken radio", "a basket of apples",
       "the last train ticket", "a wooden boat", "the red umbrella", "a box of photographs", "the mayor's bicycle", "a jar of honey"]
PLACE = ["near the bridge", "behind the bakery", "before the storm", "after midnight", "at the north station", "on the frozen lake",
         "in the empty theatre", "during the festival", "under the old clock", "by the lighthouse"]
LINES = ["Where were you last night?", "I told you to wait here until the rain stopped.", "Nobody believes a word he says anymore.",
         "We have less than an hour before the ferry leaves.", "Can you hear that noise coming from the cellar?",
         "Put the lamp on the table and sit down.", "I think the radio is still broken.", "Tell me again what happened at the market.",
         "Please close the window, it is getting cold.", "The letter never arrived, and nobody knows why."]
SIGNS = ["{} Street", "Hotel {}", "Platform {}", "{} Bakery", "EXIT", "Open 24 hours", "{} Pharmacy", "Harbour Road", "No Parking",
         "Welcome to {}", "Museum of {}", "{} Station", "Cinema {}", "Gate {}"]
WORDS = ["Linden", "Marlow", "Aurora", "Kestrel", "Granite", "Willow", "Northgate", "Bellamy", "Oakridge", "Seaview", "Juniper", "Halden"]


def sentence(rng) -> str:
    if rng.random() < 0.2:
        return str(rng.choice(LINES))
    return f"{rng.choice(SUBJ)} {rng.choice(VERB)} {rng.choice(OBJ)} {rng.choice(PLACE)}."


def _run(cmd: list[str], timeout: float = 3600) -> None:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({p.returncode}): {p.stderr[-1500:]}")


def _hex(rng) -> str:
    return f"0x{int(rng.integers(0, 1 << 24)):06x}"


def _text(tmp: Path, name: str, text: str) -> str:
    p = tmp / name
    p.write_text(text, encoding="utf-8")
    return str(p)


def _source(kind: str, rng, gw: int, gh: int, fps: int) -> str:
    """A lavfi source at the generation size (quarter size; cellular ones coarser) with its own parameters."""
    seed = int(rng.integers(1, 1 << 30))
    hue = f",hue=h={int(rng.integers(0, 360))}:s={rng.uniform(0.6, 1.4):.2f}"
    if kind in ("life", "cellauto"):
        base = f"{kind}=s={gw // 2}x{gh // 2}:r={fps}"
        if kind == "life":
            src = base + f":seed={seed}:ratio={rng.uniform(0.1, 0.4):.2f}:mold=8:life_color={_hex(rng)}:death_color={_hex(rng)}:mold_color={_hex(rng)}"
        else:
            src = base + f":rule={rng.choice([18, 30, 90, 110, 150])}:seed={seed}:random_fill_ratio=0.5:scroll=1"
        return src + f",scale={gw}:{gh}:flags=neighbor" + (hue if kind == "cellauto" else "")
    base = f"s={gw}x{gh}:r={fps}"
    if kind == "mandelbrot":
        return f"mandelbrot={base}:start_scale={rng.uniform(1.5, 4):.2f}:start_x={rng.uniform(-1.2, -0.3):.3f}:bailout={rng.uniform(8, 12):.1f}" + hue
    if kind == "gradients":
        return (f"gradients={base}:c0={_hex(rng)}:c1={_hex(rng)}:c2={_hex(rng)}:nb_colors={int(rng.integers(2, 4))}:seed={seed}"
                f":speed={rng.uniform(0.01, 0.05):.3f}:type={rng.choice(['linear', 'radial', 'circular', 'spiral'])}")
    if kind == "sierpinski":
        return f"sierpinski={base}:seed={seed}:jump={int(rng.integers(30, 120))}:type={rng.choice(['carpet', 'triangle'])}" + hue
    if kind in ("rgbtestsrc", "yuvtestsrc"):
        return f"{kind}={base},scroll={'v' if kind == 'rgbtestsrc' else 'h'}={rng.uniform(0.002, 0.008):.4f}" + hue
    if kind == "colorspectrum":
        return f"colorspectrum={base}:type={rng.choice(['black', 'white', 'all'])},scroll=h={rng.uniform(0.002, 0.008):.4f}" + hue
    if kind == "box":
        boxes = "".join(f",drawbox=x='t*{v:.0f}-floor(t*{v:.0f}/{gw})*{gw}':y={int(rng.integers(0, gh - s))}:w={s}:h={s}:color={_hex(rng)}:t=fill"
                        for v, s in ((rng.uniform(15, 60), gh // 3), (rng.uniform(10, 50), gh // 5), (rng.uniform(20, 70), gh // 4)))
        return f"color={base}:c={_hex(rng)}" + boxes
    if kind == "snow":
        return f"color={base}:c={_hex(rng)},noise=alls={int(rng.integers(15, 30))}:allf=t+u"
    return f"testsrc2={base}" + hue  # testsrc2


def _plan_segment(k: int, seconds: float, fps: int, size: tuple[int, int], rng, first: bool) -> dict:
    """Shots, transitions, signs and speech of content segment k (every random choice pinned by rng)."""
    n_total = int(round(seconds * fps))
    shots, t = [], 0
    while t < n_total:
        n = int(rng.uniform(2.5, 9.0) * fps)
        if n_total - (t + n) < int(2.0 * fps):
            n = n_total - t
        shots.append({"frames": n, "kind": str(rng.choice(KINDS))})
        t += n
    for j, s in enumerate(shots):
        s["grain"] = bool(rng.random() < 0.45)
        s["drift"] = bool(rng.random() < 0.4)
        s["sign"] = (SIGNS[int(rng.integers(len(SIGNS)))].format(rng.choice(WORDS)) if rng.random() < 0.3 else None)
        if first and j == 0:
            s["sign"] = "THE " + " ".join(str(w).upper() for w in rng.choice(WORDS, 2, replace=False))
        s["caption"] = (f"{rng.choice(NAMES)}  -  {rng.choice(['Harbour Master', 'Witness', 'Engineer', 'Archivist', 'Pilot'])}"
                        if s["sign"] is None and rng.random() < 0.12 else None)
        if j + 1 < len(shots):
            r = rng.random()
            s["next"] = ("cut", 0) if r < 0.7 else (str(rng.choice(["dissolve", "fade"])), int(rng.uniform(0.5, 1.2) * fps)) if r < 0.85 \
                else ("fadeblack", int(1.0 * fps))
            shots[j + 1]["pad"] = s["next"][1]  # an overlap of d frames: the next shot is d frames longer, the segment keeps its length
    lines = []
    if rng.random() < 0.9:
        speakers = list(rng.choice(VOICES, int(rng.integers(2, 4)), replace=False))
        t_s = float(rng.uniform(0.3, 2.0))
        i = 0
        while t_s < seconds - 4.0:
            lines.append({"start_s": round(t_s, 3), "text": sentence(rng), "voice": str(speakers[i % len(speakers)]), "speed": int(rng.integers(130, 175))})
            t_s += 3.0 + float(rng.uniform(0.4, 2.5))  # re-placed after synthesis from the real length
            i += 1
    return {"index": k, "seconds": n_total / fps, "frames": n_total, "shots": shots, "lines": lines, "fade_in": bool(rng.random() < 0.2),
            "fade_out": bool(rng.random() < 0.2), "bed_seed": int(rng.integers(1, 1 << 30)), "src_seed": int(rng.integers(1, 1 << 30))}


def _render_content(plan: dict, fps: int, size: tuple[int, int], out: Path, tmp: Path, preset: str, crf: int) -> dict:
    W, H = size
    gw, gh = (W // 4) // 2 * 2, (H // 4) // 2 * 2
    rng = np.random.default_rng(plan["src_seed"])
    parts, truth_shots, truth_trans, signs = [], [], [], []
    fs = max(16, H // 20)
    cur = 0  # frames in the chain so far
    chain = None
    for j, s in enumerate(plan["shots"]):
        pad = s.get("pad", 0)
        n = s["frames"] + pad
        src = _source(s["kind"], rng, gw, gh, fps)
        post = ""
        if s["drift"]:
            f1, f2 = rng.uniform(0.2, 0.9, 2)
            post += f",crop=iw*0.84:ih*0.84:x='(iw-ow)/2*(1+0.8*sin(t*{f1:.2f}))':y='(ih-oh)/2*(1+0.8*sin(t*{f2:.2f}+1))'"
        if s["grain"]:
            post += f",noise=alls={int(rng.integers(4, 10))}:allf=t"
        post += f",scale={W}:{H}:flags=bicubic,format=yuv420p,setsar=1"
        if s["sign"]:
            y = int(rng.integers(H // 10, H - H // 4))
            fg, bg = [("white", "black@0.8"), ("black", "white@0.85"), ("yellow", "0x1d3557@0.9"), ("white", "0x8b0000@0.85")][int(rng.integers(4))]
            post += (f",drawtext=fontfile={FONT}:textfile={_text(tmp, 's%d_%d.txt' % (plan['index'], j), s['sign'])}:fontsize={int(fs * rng.uniform(1.4, 2.4))}"
                     f":fontcolor={fg}:box=1:boxcolor={bg}"
                     f":boxborderw={fs // 2}:x=(w-text_w)/2:y={y}")
            signs.append({"text": s["sign"], "shot": j})
        if s["caption"]:
            post += (f",drawtext=fontfile={FONT}:textfile={_text(tmp, 'c%d_%d.txt' % (plan['index'], j), s['caption'])}:fontsize={fs}:fontcolor=white"
                     f":box=1:boxcolor=black@0.6:boxborderw={fs // 3}:x=w/12:y=h-h/6")
            signs.append({"text": s["caption"], "shot": j})
        if j == 0 and plan["fade_in"]:
            post += f",fade=t=in:d={0.8:.1f}"
        if j + 1 == len(plan["shots"]) and plan["fade_out"]:
            post += f",fade=t=out:st={(n / fps) - 0.8:.3f}:d=0.8"
        parts.append(f"{src}{post},trim=end_frame={n},setpts=PTS-STARTPTS,settb=1/{fps}[v{j}]")
        truth_shots.append({"kind": s["kind"], "grain": s["grain"], "drift": s["drift"], "sign": s["sign"], "caption": s["caption"]})
        if chain is None:
            chain, cur = f"[v{j}]", n
            truth_shots[-1]["start_f"] = 0
            continue
        how, d = plan["shots"][j - 1]["next"]
        label = f"[c{j}]"
        if how == "cut":
            parts.append(f"{chain}[v{j}]concat=n=2:v=1:a=0,settb=1/{fps}{label}")
            truth_shots[-1]["start_f"] = cur
            truth_trans.append({"kind": "cut", "frame": cur})
            cur += n
        else:
            parts.append(f"{chain}[v{j}]xfade=transition={how}:duration={d / fps:.4f}:offset={(cur - d) / fps:.4f},settb=1/{fps}{label}")
            truth_shots[-1]["start_f"] = cur - d
            truth_trans.append({"kind": how, "start_f": cur - d, "end_f": cur})
            cur += n - d
        chain = label
    graph = ";".join(parts) + f";{chain}null[v]"
    _render(graph, plan["frames"], fps, _segment_audio(plan, tmp), out, preset, crf, size)
    return {"shots": truth_shots, "transitions": truth_trans, "signs": signs}


def _segment_audio(plan: dict, tmp: Path) -> Path:
    n = int(round(plan["seconds"] * SR))
    rng = np.random.default_rng(plan["bed_seed"])
    audio = rng.normal(0, 2e-4, n) + np.pad(bed(plan["seconds"], seed=plan["bed_seed"], level=0.03), (0, n))[:n]
    t_next = 0.0
    kept = []
    for i, ln in enumerate(plan["lines"]):
        sig = speak(ln["text"], ln["voice"], tmp / f"sp{plan['index']}_{i}.wav", ln["speed"])
        start = max(ln["start_s"], t_next)
        a = int(start * SR)
        if a + len(sig) > n - SR:
            break
        audio[a:a + len(sig)] += 0.7 * sig
        kept.append({**ln, "start_s": round(start, 3), "end_s": round(start + len(sig) / SR, 3)})
        t_next = start + len(sig) / SR + float(rng.uniform(0.4, 2.5))
    plan["lines"] = kept
    return _wav(tmp / f"a{plan['index']}.wav", audio)


def _render(graph: str, frames: int, fps: int, wav: Path, out: Path, preset: str, crf: int, size: tuple[int, int]) -> None:
    part = out.with_suffix(".part.mp4")
    cap = int(MAX_KBPS_1080P * size[0] * size[1] / (1920 * 1080))  # a bitrate cap: grain and cellular pictures stay a few GB over 2 h
    _run(["ffmpeg", "-v", "error", "-y", "-filter_complex_threads", "1", "-filter_complex", graph, "-i", str(wav), "-map", "[v]", "-map", "0:a",
          "-frames:v", str(frames), "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-maxrate", f"{cap}k", "-bufsize", f"{2 * cap}k",
          "-pix_fmt", "yuv420p", "-threads", "1",
          "-c:a", "aac", "-b:a", "128k", "-ar", str(SR), "-ac", "2", "-t", f"{frames / fps:.4f}", str(part)])
    part.rename(out)


def _render_credits(k: int, seconds: float, fps: int, size: tuple[int, int], seed: int, out: Path, tmp: Path, preset: str, crf: int) -> dict:
    W, H = size
    rng = np.random.default_rng(seed)
    fs = max(14, H // 24)
    lines = []
    for i in range(int(seconds * 1.2)):
        lines += [str(ROLES[i % len(ROLES)]), str(rng.choice(NAMES)), ""]
    text = "\n".join(lines)
    height = len(lines) * fs * 1.5
    speed = (H + height) / seconds
    frames = int(round(seconds * fps))
    graph = (f"color=c=black:s={W}x{H}:r={fps},format=yuv420p,setsar=1,drawtext=fontfile={FONT}:textfile={_text(tmp, f'credits{k}.txt', text)}"
             f":fontsize={fs}:fontcolor=white:line_spacing={fs // 2}:x=(w-text_w)/2:y=h-t*{speed:.2f},trim=end_frame={frames}[v]")
    n = int(round(seconds * SR))
    wav = _wav(tmp / f"a{k}.wav", np.pad(_melody(seconds, rng), (0, n))[:n] + rng.normal(0, 2e-4, n))
    _render(graph, frames, fps, wav, out, preset, crf, size)
    return {"credit_lines": len([x for x in lines if x]), "speed_px_s": round(speed, 1)}


def _key(seconds: float, size: tuple[int, int], fps: int, seed: int, preset: str, crf: int) -> str:
    params = {"v": VERSION, "seconds": seconds, "size": list(size), "fps": fps, "seed": seed, "preset": preset, "crf": crf, "segment_s": SEGMENT_S}
    return hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]


def make_feature(seconds: float = 7200.0, size: tuple[int, int] = (1920, 1080), fps: int = 24, seed: int = 0, *, preset: str = "veryfast",
                 crf: int = 23, jobs: int | None = None, cache: Path = CACHE, log=print) -> Path:
    """The cached title (rendered when missing); its truth beside it as <stem>.truth.json."""
    name = f"feature_{int(seconds)}s_{size[0]}x{size[1]}_{fps}_{_key(seconds, size, fps, seed, preset, crf)}"
    out = cache / f"{name}.mp4"
    if out.exists() and out.with_suffix(".truth.json").exists():
        return out
    parts = cache / f"{name}.parts"
    parts.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    credits_s = float(min(120.0, max(12.0, round(seconds * 0.05))))
    body = seconds - credits_s
    n_seg = max(1, int(round(body / SEGMENT_S)))
    lens = [body / n_seg] * n_seg
    plans = [_plan_segment(k, L, fps, size, rng, k == 0) for k, L in enumerate(lens)]
    credits_seed = int(rng.integers(1, 1 << 30))
    jobs = jobs or os.cpu_count() or 1
    t0 = time.monotonic()
    truths: dict[int, dict] = {}
    tmp = Path(tempfile.mkdtemp(prefix="feature_media_"))

    def one(k: int) -> dict:
        seg = parts / f"seg{k:04d}.mp4"
        meta = parts / f"seg{k:04d}.json"
        if seg.exists() and meta.exists():
            return json.loads(meta.read_text())
        if k < n_seg:
            t = _render_content(plans[k], fps, size, seg, tmp, preset, crf)
            t.update(start_s=round(sum(lens[:k]), 3), seconds=plans[k]["seconds"], lines=plans[k]["lines"])
        else:
            t = _render_credits(k, credits_s, fps, size, credits_seed, seg, tmp, preset, crf)
            t.update(start_s=round(body, 3), seconds=credits_s, credits=True)
        meta.write_text(json.dumps(t))
        return t

    total = n_seg + 1
    log(f"[feature_media] {out.name}: {total} segments ({seconds / 60:.1f} min {size[0]}x{size[1]}@{fps}, {preset} crf {crf}), {jobs} at once", flush=True)
    with ThreadPoolExecutor(jobs) as pool:
        futs = {pool.submit(one, k): k for k in range(total)}
        for i, f in enumerate(as_completed(futs), 1):
            truths[futs[f]] = f.result()
            el = time.monotonic() - t0
            log(f"[feature_media] {i}/{total} segments, {el:.0f} s elapsed, ETA {el / i * (total - i):.0f} s", flush=True)
    lst = parts / "list.txt"
    lst.write_text("".join(f"file '{parts / ('seg%04d.mp4' % k)}'\n" for k in range(total)))
    part = out.with_suffix(".part.mp4")
    _run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(lst), "-c", "copy", str(part)])
    part.rename(out)
    segs = [truths[k] for k in range(total)]
    truth = {"version": VERSION, "seconds": seconds, "size": list(size), "fps": fps, "seed": seed, "preset": preset, "crf": crf,
             "credits_start_s": round(body, 3), "segments": segs,
             "counts": {"segments": total, "shots": sum(len(s.get("shots", [])) for s in segs),
                        "dissolves_fades": sum(1 for s in segs for x in s.get("transitions", []) if x["kind"] != "cut"),
                        "signs": sum(len(s.get("signs", [])) for s in segs), "speech_lines": sum(len(s.get("lines", [])) for s in segs),
                        "speech_s": round(sum(x["end_s"] - x["start_s"] for s in segs for x in s.get("lines", [])), 1)},
             "render_s": round(time.monotonic() - t0, 1), "bytes": out.stat().st_size}
    out.with_suffix(".truth.json").write_text(json.dumps(truth, indent=1))
    shutil.rmtree(parts, ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"[feature_media] wrote {out} ({truth['bytes'] / 1e6:.0f} MB) in {truth['render_s']} s: {truth['counts']}", flush=True)
    return out


def parse_size(s: str) -> tuple[int, int]:
    w, h = s.lower().split("x")
    return int(w), int(h)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.feature_media", description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=120.0)
    ap.add_argument("--size", type=parse_size, default=(1920, 1080))
    ap.add_argument("--fps", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--jobs", type=int, default=None)
    args = ap.parse_args(argv)
    print(make_feature(args.minutes * 60, args.size, args.fps, args.seed, preset=args.preset, jobs=args.jobs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
