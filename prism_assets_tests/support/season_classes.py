"""Generated media for the failure classes of the season/structure matcher (issue 27 item 5), exact truth by construction.

``make_class_season(dir, seed, specs)`` writes one MP4 + sidecar per episode spec (320x180, 25 fps, H.264 + AAC 48 kHz,
as ``season_media.py``), laid out from these pieces:

* ``intro``: the season's title clip (moving gradient + "SERIES TITLE") over the first ``intro_s`` of the theme
  (``season_media._jingle``: a seeded synthetic tune, the same samples in every episode);
* ``credits`` (``credits_s``): rolling white names on black over the theme from its start (``credits_theme``, the
  reuse of the opening music that real series do) or over the episode's own melody; it ends the episode unless
  ``post_s`` adds a short tag scene after it;
* ``cold`` / ``body``: shots of 3.5-7 s of slowly moving pictures (gradients, moving boxes, a test card with a hue),
  each with espeak-ng pseudo-word dialogue over its own noise bed (``season_media._shot_audio``);
* ``recap``: excerpts, picture and sound frame-exact, of body shots of earlier episodes: ``{"from": [1, 2, ...]}``
  (per piece: 1 = the previous episode, 2 = the one before), ``piece_s`` (per piece), ``where`` ("start": before
  the cold open; "before_intro": after the cold open; "after_intro") and ``narration`` (the excerpts' sound at
  -12 dB under a narrator: espeak-ng reading a seeded sentence over the whole recap, as "previously on" recaps are
  re-mixed).

Truth per episode: ``intro`` / ``recap`` (``season_media.evaluate`` format: ``from_episode`` = the episode giving
most of the recap, ``from_episodes`` all of them, ``pieces``) / ``end_credits`` {start_s, end_s, theme}.

``make_dark_credits_title(path, seed)``: a 640x360 title [bright shots with dialogue][a night scene: near-black sky
with sparse stars and a few rows of city lights, slowly drifting, music, no speech][hard cut][end credits: names
rolling up on black over the same music]. Truth: ``end_credits.start_s`` (the cut) and ``audio_segments``.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np

from .season_media import AR, FONT, FPS, SPF, H, W, _ff, _jingle, _label, _render, _sentence, _shot_audio, _speech, _write_wav

NAMES = ["MARA LINDQVIST", "TOMAS REYES", "INGRID OKAFOR", "FELIX MOREAU", "HANA KOWALSKI", "OSCAR DELGADO", "LENA FISCHER",
         "RAVI CHANDRAN", "NORA BAKKER", "JULIAN WEISS", "CLARA NOVAK", "SAMUEL ORTIZ"]


def _source(rng: random.Random, tag: str, w: int = W, h: int = H) -> str:
    """A moving picture like camera footage (0.5 s apart: 1-10 of 64 dHash bits; 1 s apart: 5-20): blocks crossing a
    plain background, a Mandelbrot zoom, or a three-colour gradient drifting."""
    s = f"s={w}x{h}:r={FPS}"
    kind = rng.choice(["boxes", "mandelbrot", "gradients"])
    c = [f"#{rng.randrange(1 << 24):06x}" for _ in range(4)]
    if kind == "boxes":  # overlay evaluates its position every frame (drawbox does not)
        u = rng.randrange(1 << 30)
        vx, vy = rng.choice([-1, 1]) * rng.randrange(18, 31), rng.choice([-1, 1]) * rng.randrange(8, 16)
        src = (f"color=c={c[0]}:{s}[bg{u}];color=c={c[1]}:s={w // 3}x{h // 2}:r={FPS}[a{u}];color=c={c[2]}:s={w // 4}x{h // 3}:r={FPS}[b{u}];"
               f"[bg{u}][a{u}]overlay=x='{rng.randrange(w // 2)}+{vx}*t':y={rng.randrange(h // 2)}:shortest=1[o{u}];"
               f"[o{u}][b{u}]overlay=x={rng.randrange(w // 2)}:y='{rng.randrange(h // 2)}+{vy}*t':shortest=1")
    elif kind == "mandelbrot":
        # a close view of a seeded point of the set's edge (a wide view shows the whole set: every such shot alike)
        a = rng.uniform(0, 2 * np.pi)
        x, y = -0.25 + 0.5 * np.cos(a) - 0.25 * np.cos(2 * a), 0.5 * np.sin(a) - 0.25 * np.sin(2 * a)  # the main cardioid's edge
        src = f"mandelbrot={s}:start_x={x:.5f}:start_y={y:.5f}:start_scale={rng.uniform(0.03, 0.3):.3f}:maxiter=200"
    else:
        src = f"gradients={s}:seed={rng.randrange(1, 10**6)}:speed=0.02:nb_colors=3:c0={c[0]}:c1={c[1]}:c2={c[2]}"
    return f"{src},{_label(tag)}"


def _roll(n: int, lines: list[str], size: int, speed: float, w: int = W, h: int = H, start_y: float = 1.0) -> str:
    """Black picture of n frames with ``lines`` rolling up from the bottom at ``speed`` px/s."""
    draw = ",".join(f"drawtext=fontfile={FONT}:text='{t}':fontsize={size}:fontcolor=white:x=(w-tw)/2:y='{h * start_y + i * size * 1.8:.0f}-t*{speed}'"
                    for i, t in enumerate(lines))
    return f"color=c=black:s={w}x{h}:r={FPS},trim=end_frame={n},{draw}"


def _narrated(src: np.ndarray, rng: random.Random, tmp: Path) -> np.ndarray:
    """The excerpts' sound 12 dB down under a narrator who talks over all of it."""
    voice = np.zeros(0)
    while len(voice) < len(src):
        voice = np.concatenate([voice, _speech(_sentence(rng), rng.randrange(1 << 30), tmp), np.zeros(AR // 8)])
    return 0.25 * src + 0.7 * voice[: len(src)]


def make_class_season(dir: Path, seed: int, specs: list[dict], series_id: str | None = None, season: int = 1, intro_s: float = 8.0) -> dict:
    """Episodes laid out by ``specs`` (module doc); returns {"series_id", "season", "seed", "intro_s", "episodes": [...]}."""
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    tmp = dir / f".work_{seed}"
    tmp.mkdir(exist_ok=True)
    rng = random.Random(seed)
    series_id = series_id or f"classes{seed}"
    intro_f = int(round(intro_s * FPS))
    intro_v = tmp / "intro.nut"
    _render(f"gradients=s={W}x{H}:r={FPS}:seed={seed}:speed=0.03:nb_colors=2:c0=#{rng.randrange(1 << 24):06x}:c1=#{rng.randrange(1 << 24):06x},"
            f"{_label('SERIES TITLE', 32, '(h-th)/2')}", intro_f, intro_v)
    longest = max([intro_s] + [float(s.get("credits_s") or 0) for s in specs])
    theme = _jingle(int(round(longest * FPS)) * SPF, seed)
    done: list[dict] = []  # per episode: video, audio, dialogue shots [(frame0, n_frames)], used shots
    episodes = []
    for k, spec in enumerate(specs, start=1):
        title_id = f"{series_id}_s{season:02d}e{k:02d}"

        def shots(total_s: float, role: str, k: int = k) -> list:
            out, done_f, j, total_f = [], 0, 0, int(round(total_s * FPS))
            while done_f < total_f:
                n = min(total_f - done_f, int(rng.uniform(3.5, 7.0) * FPS))
                if total_f - done_f - n < 3 * FPS:
                    n = total_f - done_f
                a, _ = _shot_audio(n * SPF, rng, _sentence(rng), tmp)
                out.append((f"{_source(rng, f'E{k} {role.upper()} {j}')},trim=end_frame={n},format=yuv420p,setsar=1", a, role))
                done_f, j = done_f + n, j + 1
            return out

        inputs = [str(intro_v)]
        recap, pieces_truth = [], []
        rc = spec.get("recap")
        if rc:
            audio_parts = []
            for back, piece_s in zip(rc["from"], rc["piece_s"]):
                src = done[k - 1 - back]
                free = [d for d in src["dialogue"] if d[0] not in src["used"] and d[1] >= piece_s * FPS]
                f0, _ = rng.choice(free)
                src["used"].add(f0)
                n = int(round(piece_s * FPS))
                if src["video"] not in inputs:
                    inputs.append(src["video"])
                recap.append((f"[{inputs.index(src['video'])}:v]trim=start_frame={f0}:end_frame={f0 + n},setpts=PTS-STARTPTS,format=yuv420p,setsar=1",
                              None, "recap"))
                audio_parts.append(src["audio"][f0 * SPF : (f0 + n) * SPF])
                pieces_truth.append({"from_episode": src["title_id"], "src_start_s": f0 / FPS, "src_end_s": (f0 + n) / FPS})
            sound = np.concatenate(audio_parts)
            if rc.get("narration"):
                sound = _narrated(sound, rng, tmp)
            at = 0
            for i, part in enumerate(audio_parts):
                recap[i] = (recap[i][0], sound[at : at + len(part)], "recap")
                at += len(part)
        cold = shots(spec["cold_s"], "cold") if spec.get("cold_s") else []
        intro = [("[0:v]setpts=PTS-STARTPTS,format=yuv420p,setsar=1", theme[: intro_f * SPF], "intro")] if spec.get("intro", True) else []
        where = (rc or {}).get("where", "start")
        head = recap + cold + intro if where == "start" else cold + recap + intro if where == "before_intro" else cold + intro + recap
        body = shots(spec["body_s"], "body")
        tail = []
        if spec.get("credits_s"):
            cf = int(round(spec["credits_s"] * FPS))
            music = theme[: cf * SPF] if spec.get("credits_theme", True) else 0.6 * _jingle(cf * SPF, seed * 1000 + k)
            lines = ["CAST"] + NAMES[(k * 3) % 6 : (k * 3) % 6 + 6] + ["MUSIC BY TOMAS REYES"]
            tail.append((_roll(cf, lines, 12, 14.0), music, "credits"))
        if spec.get("post_s"):
            tail += shots(spec["post_s"], "post")
        pieces = head + body + tail
        t, spans, dialogue = 0, {"intro": [], "recap": [], "credits": []}, []
        for _, a, role in pieces:
            n = len(a) // SPF
            if role in spans:
                spans[role].append((t, t + n))
            if role == "body":
                dialogue.append((t, n))
            t += n
        for piece, (s0, _) in zip(pieces_truth, spans["recap"]):
            piece["dst_start_s"] = s0 / FPS
        graph = ";".join(f"{p[0]}[p{i}]" for i, p in enumerate(pieces))
        graph += ";" + "".join(f"[p{i}]" for i in range(len(pieces))) + f"concat=n={len(pieces)}:v=1:a=0[v]"
        audio = np.concatenate([p[1] for p in pieces])
        wav = tmp / f"e{k}.wav"
        _write_wav(wav, audio)
        video = dir / f"{title_id}.mp4"
        args = [x for path in inputs for x in ("-i", path)] + ["-i", str(wav)]
        _ff(*args, "-filter_complex", graph, "-map", "[v]", "-map", f"{len(inputs)}:a", "-r", str(FPS), "-c:v", "libx264", "-preset", "ultrafast",
            "-crf", "20", "-g", "50", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-ar", str(AR), "-ac", "2", "-movflags", "+faststart", str(video))
        sidecar = dir / f"{title_id}.json"
        sidecar.write_text(json.dumps({"title": f"{series_id} S{season:02d}E{k:02d}", "series_id": series_id, "season": season, "episode": k}))
        ep = {"title_id": title_id, "episode": k, "video": str(video), "sidecar": str(sidecar), "duration_s": t / FPS, "intro": None, "recap": None,
              "end_credits": None}
        if spans["intro"]:
            ep["intro"] = {"start_s": spans["intro"][0][0] / FPS, "end_s": spans["intro"][0][1] / FPS}
        if spans["credits"]:
            ep["end_credits"] = {"start_s": spans["credits"][0][0] / FPS, "end_s": spans["credits"][0][1] / FPS, "theme": spec.get("credits_theme", True)}
        if pieces_truth:
            share: dict[str, float] = {}
            for p in pieces_truth:
                share[p["from_episode"]] = share.get(p["from_episode"], 0.0) + p["src_end_s"] - p["src_start_s"]
            ep["recap"] = {"start_s": spans["recap"][0][0] / FPS, "end_s": spans["recap"][-1][1] / FPS, "from_episode": max(share, key=share.get),
                           "from_episodes": list(dict.fromkeys(p["from_episode"] for p in pieces_truth)), "pieces": pieces_truth,
                           "narration": bool(rc.get("narration"))}
        episodes.append(ep)
        done.append({"title_id": title_id, "video": str(video), "audio": audio, "dialogue": dialogue, "used": set()})
    shutil.rmtree(tmp, ignore_errors=True)
    return {"series_id": series_id, "season": season, "seed": seed, "intro_s": intro_f / FPS, "episodes": episodes}


# ---------------------------------------------------------------------------------------------- end credits after a night scene


def _stars(w: int, h: int, seed: int) -> np.ndarray:
    """A near-black night sky wider than the picture: sparse stars of 1-2 px and three rows of lit windows low down."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, 2 * w, 3), dtype=np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 6, 8, 18
    for _ in range(int(0.0006 * h * 2 * w)):
        y, x, r = rng.integers(0, int(h * 0.7)), rng.integers(0, 2 * w - 2), rng.integers(1, 3)
        img[y : y + r, x : x + r] = rng.integers(170, 256)
    for row in range(3):
        y = int(h * (0.78 + 0.06 * row))
        for x in range(int(rng.integers(0, 20)), 2 * w - 4, int(rng.integers(18, 34))):
            if rng.random() < 0.6:
                img[y : y + 3, x : x + 4] = (230, 200, 120)
    return img


def make_dark_credits_title(path: Path, seed: int = 0, body_s: float = 10.0, night_s: float = 8.0, credits_s: float = 14.0) -> dict:
    """A 640x360 title ending [night scene][end credits] (module doc); returns the truth."""
    from PIL import Image

    from .season_media import _run

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".work_dark_{seed}"
    tmp.mkdir(exist_ok=True)
    rng = random.Random(seed)
    w, h = 640, 360
    Image.fromarray(_stars(w, h, seed)).save(tmp / "sky.png")
    body = []
    done = 0
    while done < int(body_s * FPS):
        n = min(int(body_s * FPS) - done, int(rng.uniform(4.0, 6.0) * FPS))
        a, speech_end = _shot_audio(n * SPF, rng, _sentence(rng), tmp)
        body.append((f"{_source(rng, f'SHOT {len(body)}', w, h)},trim=end_frame={n},format=yuv420p,setsar=1", a, done, speech_end))
        done += n
    night_f, credits_f = int(round(night_s * FPS)), int(round(credits_s * FPS))
    parts = [b[0] for b in body]
    parts.append(f"[0:v]crop={w}:{h}:x='t*8':y=0,trim=end_frame={night_f},setpts=PTS-STARTPTS,format=yuv420p,setsar=1")
    lines = ["CAST"] + NAMES[:8] + ["MUSIC BY TOMAS REYES", "EDITED BY OSCAR DELGADO"]
    parts.append(_roll(credits_f, lines, 24, 40.0, w, h) + ",format=yuv420p,setsar=1")
    graph = ";".join(f"{p}[p{i}]" for i, p in enumerate(parts)) + ";" + "".join(f"[p{i}]" for i in range(len(parts)))
    graph += f"concat=n={len(parts)}:v=1:a=0[v]"
    score = 0.5 * _jingle((night_f + credits_f) * SPF, seed + 7)
    audio = np.concatenate([b[1] for b in body] + [score])
    wav = tmp / "a.wav"
    _write_wav(wav, audio)
    _run([shutil.which("ffmpeg") or "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-loop", "1", "-framerate", str(FPS), "-i", str(tmp / "sky.png"),
          "-i", str(wav), "-filter_complex", graph, "-map", "[v]", "-map", "1:a", "-r", str(FPS), "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
          "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-t", f"{(done + night_f + credits_f) / FPS}", str(path)])
    segs = []
    for _, a, f0, speech_end in body:
        t0 = f0 / FPS
        segs.append({"kind": "speech", "start_s": t0 + 0.1, "end_s": t0 + speech_end / AR})
        segs.append({"kind": "silence", "start_s": t0 + speech_end / AR, "end_s": t0 + len(a) / AR})
    night0, credits0 = done / FPS, (done + night_f) / FPS
    segs.append({"kind": "music", "start_s": night0, "end_s": credits0 + credits_s})
    shutil.rmtree(tmp, ignore_errors=True)
    return {"duration_s": credits0 + credits_s, "fps": FPS, "night": {"start_s": night0, "end_s": credits0},
            "end_credits": {"start_s": credits0, "end_s": credits0 + credits_s, "lines": lines}, "audio_segments": segs,
            "speech": [(s["start_s"], s["end_s"]) for s in segs if s["kind"] == "speech"]}

