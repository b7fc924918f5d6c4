"""Generated seasons for the intro/recap matcher, with exact ground truth by construction.

``make_season(dir, n_episodes, seed)`` writes n MP4 episodes (640x360, 25 fps, H.264 + AAC 48 kHz,
40-70 s each) and a sidecar JSON next to each. Every episode is laid out as

    [recap (episodes >= 2)] [cold open, 0-20 s] [intro, 6-15 s] [body]      (recap_where="start")
    [cold open] [intro] [recap] [body]                                       (recap_where="after_intro")

* intro: the same clip in every episode of the season: a seeded moving ``gradients`` pattern with
  "SERIES TITLE" drawn over it, and a seeded synthetic music jingle (notes of a pentatonic scale with
  harmonics and decay); its length depends on the seed;
* recap: 2-3 excerpts with dialogue (the first 2.5-4.5 s of 2-3 body shots, 5-10 s in all) cut,
  picture and sound, from the previous episode's body (frame-exact trims of its MP4 and of its generated sound);
* cold open and body: shots of 4-9 s, each a different lavfi source / colour / seed with a drawn
  label, sound = espeak-ng reading a seeded sentence of pseudo-words (real words would repeat
  across episodes, and espeak-ng says a word the same way every time) over a seeded noise bed, sometimes a tone.

Every piece lasts a whole number of frames (and 1920 audio samples per frame), so the truth is exact.
One ffmpeg run per episode renders the pictures (lavfi sources in the filter graph, the intro from a
lossless clip made once, recap excerpts trimmed frame-exactly from the previous episode's MP4) and
encodes them once; the sound is built in numpy (the recap's from the previous episode's samples).

Also: ``wav16`` (16 kHz mono PCM WAV, as the pipeline's speech WAV), ``samples_1fps`` (224x224 centre
crops of the first frame at or past each whole second, JPEG, as the pipeline's samples) and
``evaluate`` (found vs truth, per episode and summary).
"""

from __future__ import annotations

import io
import json
import random
import re
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
FPS = 25
W, H = 320, 180  # small: generation is CPU-bound and the matcher only sees 224-px samples
AR = 48000
SPF = AR // FPS  # audio samples per frame
CONSONANTS, VOWELS = "bdfgklmnprstvz", "aeiou"  # seeded pseudo-words: no two episodes say the same thing


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, capture_output=True, timeout=300, **kw)
    if p.returncode != 0:
        err = p.stderr.decode(errors="replace") if isinstance(p.stderr, bytes) else p.stderr
        raise RuntimeError(f"{cmd[0]} failed: {err.strip().splitlines()[-1:] if err else p.returncode}")
    return p


def _ff(*args: str) -> None:
    _run([shutil.which("ffmpeg") or "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args])


def _render(src: str, frames: int, out: Path) -> None:
    _ff("-f", "lavfi", "-i", f"{src},format=yuv420p,setsar=1", "-frames:v", str(frames), "-c:v", "ffv1", "-threads", "2", str(out))


def _label(text: str, size: int = 20, y: str = "h-th-20") -> str:
    return f"drawtext=fontfile={FONT}:text='{text}':fontsize={size}:fontcolor=white:borderw=3:x=(w-tw)/2:y={y}"


def _shot_source(rng: random.Random, tag: str) -> str:
    kind = rng.choice(["testsrc2", "cellauto", "life", "gradients", "colornoise", "smptehdbars"])
    s = f"s={W}x{H}:r={FPS}"
    seed = rng.randrange(1, 10**6)
    src = {
        "testsrc2": f"testsrc2={s},hue=h={rng.randrange(360)}",
        "cellauto": f"cellauto={s}:rule={rng.choice([18, 30, 90, 110, 150])}:seed={seed}:random_fill_ratio=0.5",
        "life": f"life={s}:seed={seed}:ratio=0.{rng.randrange(1, 6)}:mold=10:life_color=#{rng.randrange(1 << 24):06x}",
        # gradients picks random colours even with a seed: pin them too (reproducible media)
        "gradients": f"gradients={s}:seed={seed}:speed=0.0{rng.randrange(1, 5)}:nb_colors=2:c0=#{rng.randrange(1 << 24):06x}:c1=#{rng.randrange(1 << 24):06x}",
        "colornoise": f"color=c=#{rng.randrange(1 << 24):06x}:{s},noise=alls={rng.randrange(20, 60)}:allf=t+u",
        "smptehdbars": f"smptehdbars={s},hue=h={rng.randrange(360)}",
    }[kind]
    return f"{src},{_label(tag)}"


def _speech(text: str, seed: int, tmp: Path) -> np.ndarray:
    out = tmp / f"speech_{seed}.wav"
    _run([shutil.which("espeak-ng") or "espeak-ng", "-w", str(out), "-s", str(150 + seed % 40), "-p", str(30 + seed % 40), text])
    with wave.open(str(out)) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
        rate = w.getframerate()
    return np.interp(np.arange(int(len(x) * AR / rate)) * (rate / AR), np.arange(len(x)), x)


def _jingle(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = np.array([0, 2, 4, 7, 9, 12, 14, 16, 19, 21])
    base = 196.0 * 2 ** (rng.integers(0, 5) / 12)
    beat = 60.0 / rng.uniform(110, 150) / 2
    out = np.zeros(n)
    t = 0.0
    while t * AR < n:
        dur = beat * rng.choice([1, 1, 2, 3])
        s, e = int(t * AR), min(n, int((t + dur) * AR))
        tt = np.arange(e - s) / AR
        for semis, amp in ((rng.choice(scale), 0.5), (rng.choice(scale) - 12, 0.3)):
            f = base * 2 ** (semis / 12)
            out[s:e] += amp * np.exp(-2.5 * tt) * (np.sin(2 * np.pi * f * tt) + 0.4 * np.sin(4 * np.pi * f * tt) + 0.2 * np.sin(6 * np.pi * f * tt))
        t += dur
    return 0.35 * out / max(1e-9, np.abs(out).max())


def _shot_audio(n: int, rng: random.Random, text: str, tmp: Path) -> tuple[np.ndarray, int]:
    """The shot's sound and the sample where its speech ends."""
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    bed = np.convolve(nrng.standard_normal(n), np.ones(8) / 8, mode="same") * 0.02
    if rng.random() < 0.4:  # a wandering tone (a steady one would make every item of the shot alike)
        f = rng.uniform(150, 900) * np.exp(np.cumsum(nrng.standard_normal(n)) * 2e-4)
        bed += 0.04 * np.sin(2 * np.pi * np.cumsum(f) / AR)
    sp = _speech(text, rng.randrange(1 << 30), tmp)[: max(0, n - AR // 5)]
    bed[AR // 10 : AR // 10 + len(sp)] += 0.6 * sp
    return bed, AR // 10 + len(sp)


def _sentence(rng: random.Random) -> str:
    def word() -> str:
        return "".join(rng.choice(CONSONANTS) + rng.choice(VOWELS) for _ in range(rng.randint(1, 3)))

    return " ".join(word() for _ in range(rng.randint(6, 10)))


def _write_wav(path: Path, x: np.ndarray, rate: int = AR) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32000).astype("<i2").tobytes())


def make_season(dir: Path, n_episodes: int, seed: int, series_id: str | None = None, season: int = 1, cold_open_max_s: float = 20.0,
                recap: bool = True, recap_where: str = "start", intro_s: float | None = None, body_s: tuple[float, float] = (20.0, 30.0)) -> dict:
    """Generate the season; returns the truth: {"series_id", "season", "seed", "intro_s", "episodes": [...]} where each
    episode has title_id, episode, video, sidecar, duration_s, cold_open_s, intro {start_s, end_s},
    recap {start_s, end_s, from_episode, pieces: [{src_start_s, src_end_s, dst_start_s}]} | None.

    One ffmpeg run per episode: the shots are lavfi sources inside the filter graph, the intro is a
    lossless clip rendered once, recap excerpts are frame-exact trims of the previous episode's MP4
    (picture) and of its generated sound (exact samples); the sound is built in numpy."""
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    tmp = dir / f".work_{seed}"
    tmp.mkdir(exist_ok=True)
    rng = random.Random(seed)
    series_id = series_id or f"series{seed}"
    intro_f = int(round((intro_s if intro_s is not None else rng.uniform(6, 15)) * FPS))
    intro_v = tmp / "intro.nut"
    cols = random.Random(seed)
    _render(f"gradients=s={W}x{H}:r={FPS}:seed={seed}:speed=0.03:nb_colors=2:c0=#{cols.randrange(1 << 24):06x}:c1=#{cols.randrange(1 << 24):06x},"
            f"{_label('SERIES TITLE', 32, '(h-th)/2')}", intro_f, intro_v)
    intro_a = _jingle(intro_f * SPF, seed)
    episodes, prev = [], None
    for k in range(1, n_episodes + 1):
        title_id = f"{series_id}_s{season:02d}e{k:02d}"

        def shots(total_f: int, role: str, k: int = k) -> list:
            out, done, j = [], 0, 0
            while done < total_f:
                n = min(total_f - done, int(rng.uniform(4, 9) * FPS))
                if total_f - done - n < 3 * FPS:
                    n = total_f - done
                src = f"{_shot_source(rng, f'E{k} {role.upper()} {j}')},trim=end_frame={n},format=yuv420p,setsar=1"
                a, speech_end = _shot_audio(n * SPF, rng, _sentence(rng), tmp)
                out.append(("src", src, a, role, speech_end // SPF))
                done, j = done + n, j + 1
            return out

        cold_f = int(round(rng.uniform(0, cold_open_max_s) * FPS)) if cold_open_max_s > 0 else 0
        body_f = int(round(rng.uniform(*body_s) * FPS))
        recap_parts, recap_pieces = [], []
        if recap and prev is not None:
            # excerpts with dialogue, as recaps have: the start of 2-3 body shots of the previous episode, each
            # 2.5-4.5 s (its speech, at least 2.5 s), 5-10 s in all
            chosen = sorted(rng.sample(prev["dialogue"], min(len(prev["dialogue"]), rng.choice([2, 3]))))
            lens = [min(shot_n, max(int(2.5 * FPS), min(speech_n, int(4.5 * FPS)))) for _, shot_n, speech_n in chosen]
            while sum(lens) > 10 * FPS:
                lens[int(np.argmax(lens))] -= FPS // 5
            for (f0, _, _), n in zip(chosen, lens):
                src = f"[1:v]trim=start_frame={f0}:end_frame={f0 + n},setpts=PTS-STARTPTS,format=yuv420p,setsar=1"
                recap_parts.append(("src", src, prev["audio"][f0 * SPF : (f0 + n) * SPF], "recap", 0))
                recap_pieces.append({"src_start_s": f0 / FPS, "src_end_s": (f0 + n) / FPS})
        cold = shots(cold_f, "cold") if cold_f else []
        intro = [("src", "[0:v]setpts=PTS-STARTPTS,format=yuv420p,setsar=1", intro_a, "intro", 0)]
        order = recap_parts + cold + intro if recap_where == "start" else cold + intro + recap_parts
        pieces = order + shots(body_f, "body")
        t, spans, dialogue = 0, {"intro": [], "recap": []}, []
        for _, _, a, role, speech_n in pieces:
            n = len(a) // SPF
            if role in spans:
                spans[role].append((t, t + n))
            if role == "body":
                dialogue.append((t, n, speech_n))
            t += n
        for piece, (s0, _) in zip(recap_pieces, spans["recap"]):
            piece["dst_start_s"] = s0 / FPS
        graph = ";".join(f"{p[1]}[p{i}]" for i, p in enumerate(pieces))
        graph += ";" + "".join(f"[p{i}]" for i in range(len(pieces))) + f"concat=n={len(pieces)}:v=1:a=0[v]"
        audio = np.concatenate([p[2] for p in pieces])
        wav = tmp / f"e{k}.wav"
        _write_wav(wav, audio)
        video = dir / f"{title_id}.mp4"
        inputs = ["-i", str(intro_v), "-i", str(prev["video"] if prev else intro_v), "-i", str(wav)]
        _ff(*inputs, "-filter_complex", graph, "-map", "[v]", "-map", "2:a", "-r", str(FPS), "-c:v", "libx264", "-preset", "ultrafast", "-crf", "20",
            "-g", "50", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-ar", str(AR), "-ac", "2", "-movflags", "+faststart", str(video))
        sidecar = dir / f"{title_id}.json"
        sidecar.write_text(json.dumps({"title": f"{series_id} S{season:02d}E{k:02d}", "series_id": series_id, "season": season, "episode": k}))
        ep = {"title_id": title_id, "episode": k, "video": str(video), "sidecar": str(sidecar), "duration_s": t / FPS, "cold_open_s": cold_f / FPS,
              "intro": {"start_s": spans["intro"][0][0] / FPS, "end_s": spans["intro"][0][1] / FPS}, "recap": None}
        if recap_pieces:
            ep["recap"] = {"start_s": spans["recap"][0][0] / FPS, "end_s": spans["recap"][-1][1] / FPS, "from_episode": prev["title_id"], "pieces": recap_pieces}
        episodes.append(ep)
        prev = {"title_id": title_id, "video": video, "audio": audio, "dialogue": dialogue}
    shutil.rmtree(tmp, ignore_errors=True)
    return {"series_id": series_id, "season": season, "seed": seed, "intro_s": intro_f / FPS, "episodes": episodes}


def wav16(video, out: Path | None = None) -> Path:
    """The audio as 16 kHz mono 16-bit PCM WAV (the pipeline's speech WAV)."""
    video = Path(video)
    out = Path(out) if out else video.with_suffix(".16k.wav")
    _ff("-i", str(video), "-vn", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", str(out))
    return out


def samples_1fps(video, size: int = 224, quality: int = 90) -> list[tuple[float, bytes]]:
    """(t_s, JPEG) of the first frame at or past each whole second, short side scaled to ``size`` and centre-cropped."""
    from PIL import Image

    vf = (f"select='isnan(prev_selected_t)+gte(floor(t)-floor(prev_selected_t)\\,1)',"
          f"scale={size}:{size}:force_original_aspect_ratio=increase:flags=bicubic,crop={size}:{size},showinfo")
    p = _run([shutil.which("ffmpeg") or "ffmpeg", "-hide_banner", "-i", str(video), "-vf", vf, "-vsync", "0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
    times = [float(m) for m in re.findall(r"pts_time:\s*([-\d.]+)", p.stderr.decode(errors="replace"))]
    frame = size * size * 3
    out = []
    for i, t in enumerate(times[: len(p.stdout) // frame]):
        buf = io.BytesIO()
        Image.frombytes("RGB", (size, size), p.stdout[i * frame : (i + 1) * frame]).save(buf, "JPEG", quality=quality)
        out.append((t, buf.getvalue()))
    return out


def evaluate(found: dict, truth: dict, tol_s: float = 1.0) -> dict:
    """Per-episode boundary errors (found - truth, s) and a summary: fraction of intros (and recaps) with both
    boundaries within ``tol_s``, missed, false (found where the truth has none), recaps attributed wrongly."""
    rows, s = [], {"intro_ok": 0, "intro_missed": 0, "intro_false": 0, "recap_ok": 0, "recap_missed": 0, "recap_false": 0, "recap_wrong_source": 0}
    n_intro = n_recap = 0
    for ep in truth["episodes"]:
        got = found.get(ep["title_id"], {})
        row = {"title_id": ep["title_id"], "episode": ep["episode"]}
        for key in ("intro", "recap"):
            t, f = ep.get(key), got.get(key)
            if t:
                if key == "intro":
                    n_intro += 1
                else:
                    n_recap += 1
                if not f:
                    s[f"{key}_missed"] += 1
                    row[key] = None
                    continue
                es, ee = f["start_s"] - t["start_s"], f["end_s"] - t["end_s"]
                row[key] = {"start_err_s": round(es, 3), "end_err_s": round(ee, 3)}
                ok = abs(es) <= tol_s and abs(ee) <= tol_s
                if key == "recap":
                    src = f.get("from_episode") == t["from_episode"]
                    s["recap_wrong_source"] += 0 if src else 1
                    ok = ok and src
                s[f"{key}_ok"] += int(ok)
            elif f:
                s[f"{key}_false"] += 1
                row[key] = {"false": True, "start_s": f["start_s"], "end_s": f["end_s"]}
        rows.append(row)
    s["intro_within_tol"] = s["intro_ok"] / n_intro if n_intro else None
    s["recap_within_tol"] = s["recap_ok"] / n_recap if n_recap else None
    errs = [abs(v) for r in rows if r.get("intro") and "start_err_s" in r["intro"] for v in (r["intro"]["start_err_s"], r["intro"]["end_err_s"])]
    s["intro_max_abs_err_s"] = max(errs) if errs else None
    return {"episodes": rows, "summary": s, "tol_s": tol_s}
