"""Synthetic titles with on-screen text whose ground truth is exact by construction (OCR, text flags, credits).

``make_text_title`` renders one short title (640x360, 25 fps by default) with ffmpeg lavfi sources and
``drawtext`` (DejaVu Sans Bold for Latin, Noto Sans CJK for Korean/Japanese lines) and an audio track
assembled in numpy from espeak-ng speech and a seeded sine-chord melody:

* ``slate``: a static card on black at 0..3 s ("PROD 4471  SCENE 12  TAKE 3", "ROLL A007  DATE 2024-03-18");
* ``opening``: name cards over moving picture (mandelbrot) at known times, music, no speech;
* ``subtitles``: the body (testsrc2 / gradients / mandelbrot shots); each spoken line is burned in at the
  bottom exactly while its espeak-ng speech plays; one line is Korean or Japanese (spoken by that voice);
* ``end_credits``: white text rolling upward on black (drawtext ``y`` expression) with music and no speech
  from ``end_credits.start_s`` to the end.

``credits=False`` gives the same kind of title without opening cards and end credits (slate and burned-in
lines kept, the body runs to the end). The truth also carries ``audio_segments`` (contiguous speech /
music / silence spans of the mixed track, as the audio pass would report them).

Helper: ``extract_frames`` (JPEG frames at chosen frame numbers, longest side <= 640, one decode, as the
visual pass hands them to OCR).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from prism_assets_tests.support.localization_media import speak

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
FONT_CJK = "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"
SR = 48000
VOICES = {"en": "en-us", "ko": "ko", "ja": "ja"}

NAMES = ["Mara Lindqvist", "Tomas Reyes", "Ingrid Okafor", "Felix Moreau", "Hana Kowalski", "Oscar Delgado", "Lena Fischer",
         "Ravi Chandran", "Nora Bakker", "Julian Weiss", "Clara Novak", "Samuel Ortiz", "Eva Lindholm", "Marco Ricci"]
ROLES = ["Directed by", "Music by", "Produced by", "Written by", "Edited by", "Camera"]
SENTENCES = ["Where did you put the keys", "We should leave before the rain starts", "I never said that to anyone",
             "The train is late again tonight", "Tell me what happened at the station", "She will call us in the morning",
             "Nobody knows the way back home", "Bring the map and the small lamp"]
GRADIENT_COLOURS = [("0x3a6ea5", "0xc8553d"), ("0x2a9d8f", "0x6d597a"), ("0x8d6a9f", "0xe9c46a"), ("0x264653", "0xf4a261")]
CJK_LINES = {"ko": ("안녕하세요 여러분", "annyeong haseyo yeoreobun"), "ja": ("こんにちは皆さん", "konnichiwa minasan")}


def _run(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, timeout=timeout)
    if r.returncode:
        raise RuntimeError(f"{Path(cmd[0]).name} failed ({r.returncode}): {r.stderr.decode(errors='replace').strip()[-600:]}")
    return r


def _melody(dur: float, rng: np.random.Generator, level: float = 0.18) -> np.ndarray:
    """Sine chords (root, third, fifth) of 0.4-0.9 s with short attack/release: music, never speech."""
    n = int(dur * SR)
    x = np.zeros(n)
    t = 0
    while t < n:
        k = min(int(rng.uniform(0.4, 0.9) * SR), n - t)
        f0 = float(rng.choice([196.0, 220.0, 261.6, 293.7, 329.6]))
        env = np.minimum(1.0, np.minimum(np.arange(k), np.arange(k)[::-1]) / (0.02 * SR))
        tt = np.arange(k) / SR
        x[t:t + k] += env * sum(np.sin(2 * np.pi * f0 * r * tt) for r in (1.0, 1.26, 1.5)) / 3
        t += k
    return level * x


def _text_file(tmp: Path, name: str, text: str) -> str:
    p = tmp / name
    p.write_text(text, encoding="utf-8")
    return str(p).replace("\\", "/").replace(":", "\\:")


def _drawtext(textfile: str, *, font: str = FONT, size: int = 24, x: str = "(w-text_w)/2", y: str, enable: str, extra: str = "") -> str:
    return (f"drawtext=fontfile={font}:textfile={textfile}:fontsize={size}:fontcolor=white:x={x}:y={y}"
            f":enable='{enable}'" + (f":{extra}" if extra else ""))


def make_text_title(path: str | Path, seed: int = 0, *, credits: bool = True, cjk: str = "ko", size: tuple[int, int] = (640, 360),
                    fps: int = 25, n_lines: int = 4) -> dict:
    """Render the title to `path` (mp4, H.264 + AAC) and return its truth (also written beside it as .truth.json).

    Truth: duration_s, fps, size, slate {start_s, end_s, lines}, opening {start_s, end_s, cards [{start_s, end_s, text}]} | None,
    subtitles [{start_s, end_s, text, language}], end_credits {start_s, end_s, lines, speed_px_s} | None, next_episode_s,
    audio_segments [{kind, start_s, end_s}], speech [(s, e)].
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    W, H = size  # noqa: N806
    slate_end = 3.0
    body_start = 11.0 if credits else slate_end
    spoken = [str(s) for s in rng.permutation(SENTENCES)[:n_lines]]
    cjk_at = int(rng.integers(1, n_lines - 1))
    with tempfile.TemporaryDirectory(prefix="text_media_") as td:
        tmp = Path(td)
        # --- audio: speech lines at scheduled times, placed sequentially with gaps
        lines: list[tuple[str, str, np.ndarray]] = []
        for i, s in enumerate(spoken):
            if i == cjk_at:
                shown, said = CJK_LINES[cjk]
                lines.append((shown, cjk, speak(shown, VOICES[cjk], tmp / f"s{i}.wav")))
                del said
            else:
                lines.append((s, "en", speak(s, VOICES["en"], tmp / f"s{i}.wav")))
        subs = []
        t = body_start + 0.6
        for text, lang, sig in lines:
            d = len(sig) / SR
            subs.append({"start_s": round(t, 3), "end_s": round(t + d, 3), "text": text, "language": lang, "_sig": sig})
            t += d + float(rng.uniform(1.0, 2.2))
        body_end = round(t + 0.6, 1)
        end_len = 9.0
        duration = round(body_end + end_len, 1) if credits else round(body_end + 1.0, 1)
        credits_start = round(body_end, 1) if credits else None
        n = int(duration * SR)
        audio = np.zeros(n)
        audio += rng.normal(0, 1e-4, n)  # not digital silence
        for s in subs:
            i0 = int(s["start_s"] * SR)
            audio[i0:i0 + len(s["_sig"])] += 0.8 * s.pop("_sig")
        segs: list[dict] = [{"kind": "silence", "start_s": 0.0, "end_s": slate_end}]
        if credits:
            i0, i1, i2 = int(slate_end * SR), int(body_start * SR), int(credits_start * SR)
            audio[i0:i1] += _melody((i1 - i0) / SR, rng)[: i1 - i0]
            audio[i2:] += np.pad(_melody((n - i2) / SR, rng), (0, 1))[: n - i2]
            segs.append({"kind": "music", "start_s": slate_end, "end_s": body_start})
        cur = body_start if credits else slate_end
        for s in subs:
            if s["start_s"] > cur:
                segs.append({"kind": "silence", "start_s": round(cur, 3), "end_s": s["start_s"]})
            segs.append({"kind": "speech", "start_s": s["start_s"], "end_s": s["end_s"]})
            cur = s["end_s"]
        tail_end = credits_start if credits else duration
        if tail_end > cur:
            segs.append({"kind": "silence", "start_s": round(cur, 3), "end_s": tail_end})
        if credits:
            segs.append({"kind": "music", "start_s": credits_start, "end_s": duration})
        wav = tmp / "a.wav"
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SR)
            w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())

        # --- picture: base shots concatenated, then drawtext overlays on the timeline clock
        # gradients picks random colours even with a seed: pin the seed AND the colours so the picture (and so the
        # OCR) is the same every run
        c0, c1 = GRADIENT_COLOURS[seed % len(GRADIENT_COLOURS)]
        src = {"black": "color=c=black", "mandelbrot": "mandelbrot", "dim_mandelbrot": "mandelbrot", "testsrc2": "testsrc2",
               "gradients": f"gradients=speed=0.02:seed={seed}:nb_colors=2:c0={c0}:c1={c1}"}
        shots: list[tuple[str, float, float]] = [("black", 0.0, slate_end)]
        if credits:
            shots.append(("dim_mandelbrot", slate_end, body_start))  # opening cards over a darkened picture, as title designers do
        kinds = ["testsrc2", "gradients", "mandelbrot"]
        edges = np.linspace(body_start, body_end, 4)
        for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
            shots.append((kinds[k], float(a), float(b) if (credits or k < 2) else duration))
        if credits:
            shots.append(("black", body_end, duration))
        parts, labels = [], []
        for k, (kind, a, b) in enumerate(shots):
            nfr = int(round(b * fps)) - int(round(a * fps))
            parts.append(f"{src[kind]}{':' if '=' in src[kind] else '='}s={W}x{H}:r={fps},trim=end_frame={nfr},setpts=PTS-STARTPTS,format=yuv420p"
                         + (",eq=brightness=-0.3:saturation=0.6" if kind.startswith("dim_") else "") + f"[s{k}]")
            labels.append(f"[s{k}]")
        draw = []
        prod, scene, take, roll = int(rng.integers(1000, 9999)), int(rng.integers(1, 99)), int(rng.integers(1, 9)), int(rng.integers(1, 30))
        month, day = int(rng.integers(1, 12)), int(rng.integers(10, 28))
        slate_lines = [f"PROD {prod}  SCENE {scene}  TAKE {take}", f"ROLL A{roll:03d}  DATE 2024-{month:02d}-{day:02d}"]
        for i, s in enumerate(slate_lines):
            draw.append(_drawtext(_text_file(tmp, f"slate{i}.txt", s), size=28, y=f"{int(H * 0.36) + i * 48}", enable=f"lt(t,{slate_end})"))
        opening = None
        if credits:
            names = [str(x) for x in rng.permutation(NAMES)]
            cards = []
            for i, (a, b) in enumerate([(3.5, 5.6), (6.0, 8.1), (8.5, 10.6)]):
                text = f"{ROLES[i]} {names[i]}".upper()
                cards.append({"start_s": a, "end_s": b, "text": text})
                draw.append(_drawtext(_text_file(tmp, f"card{i}.txt", text), size=30, y=f"{int(H * 0.42)}", enable=f"between(t,{a},{b})",
                                      extra="borderw=2:bordercolor=black"))
            opening = {"start_s": cards[0]["start_s"], "end_s": cards[-1]["end_s"], "cards": cards}
        for i, s in enumerate(subs):
            font = FONT_CJK if s["language"] in ("ko", "ja") else FONT
            draw.append(_drawtext(_text_file(tmp, f"sub{i}.txt", s["text"]), font=font, size=24, y="h-text_h-26",
                                  enable=f"between(t,{s['start_s']},{s['end_s']})", extra="box=1:boxcolor=black@0.55:boxborderw=6"))
        end = None
        if credits:
            names = [str(x) for x in rng.permutation(NAMES)]
            roll_lines = ["CAST"] + names[:4] + ["", "CREW"] + [f"{r} {nm}" for r, nm in zip(ROLES, names[4:])]
            speed = 40.0
            for i, s in enumerate(roll_lines):
                if not s:
                    continue
                y0 = H * 0.80 + i * 38
                draw.append(_drawtext(_text_file(tmp, f"roll{i}.txt", s.upper()), size=24, y=f"{y0:.0f}-(t-{credits_start})*{speed}",
                                      enable=f"gte(t,{credits_start})"))
            end = {"start_s": credits_start, "end_s": duration, "lines": [s.upper() for s in roll_lines if s], "speed_px_s": speed}
        graph = ";".join(parts) + ";" + "".join(labels) + f"concat=n={len(shots)}:v=1:a=0," + ",".join(draw) + "[v]"
        _run(["ffmpeg", "-v", "error", "-y", "-filter_complex", graph, "-i", str(wav), "-map", "[v]", "-map", "0:a", "-c:v", "libx264", "-preset",
              "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-t", f"{duration}", str(path)])
    truth = {"duration_s": duration, "fps": fps, "size": [W, H], "seed": seed,
             "slate": {"start_s": 0.0, "end_s": slate_end, "lines": slate_lines}, "opening": opening, "subtitles": subs, "end_credits": end,
             "next_episode_s": credits_start, "audio_segments": segs, "speech": [(s["start_s"], s["end_s"]) for s in subs]}
    path.with_suffix(".truth.json").write_text(json.dumps(truth, indent=1, ensure_ascii=False))
    return truth


def extract_frames(path: str | Path, frames: list[int], fps: float, max_side: int = 640, quality: int = 3) -> list[tuple[int, float, bytes]]:
    """JPEG frames (longest side <= max_side) at the given 0-based frame numbers, in one decode: [(frame, t_s, jpeg)]."""
    want = sorted(set(int(f) for f in frames))
    if not want:
        return []
    expr = "+".join(f"eq(n\\,{f})" for f in want)
    scale = f"scale='if(gte(iw,ih),min({max_side},iw),-2)':'if(gte(iw,ih),-2,min({max_side},ih))'"
    with tempfile.TemporaryDirectory(prefix="frames_") as td:
        script = Path(td) / "vf.txt"
        script.write_text(f"select='{expr}',{scale}")
        out = _run(["ffmpeg", "-v", "error", "-i", str(path), "-filter_script:v", str(script), "-fps_mode", "passthrough", "-an",
                    "-c:v", "mjpeg", "-q:v", str(quality), "-f", "image2pipe", "-"]).stdout
    jpegs = _split_jpegs(out)
    if len(jpegs) != len(want):
        raise RuntimeError(f"extract_frames: asked {len(want)} frames, got {len(jpegs)}")
    return [(f, f / fps, j) for f, j in zip(want, jpegs)]


def _split_jpegs(data: bytes) -> list[bytes]:
    """Split an MJPEG byte stream at its start-of-image markers (FF D8 FF cannot occur inside entropy-coded data)."""
    starts = []
    i = data.find(b"\xff\xd8\xff")
    while i >= 0:
        starts.append(i)
        i = data.find(b"\xff\xd8\xff", i + 3)
    return [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)])]
