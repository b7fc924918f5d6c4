"""Titles with exact scene truth, for the scene tests (prism_assets.structure.scenes).

A title is `n_scenes` scenes. Each scene is a "location": an ffmpeg lavfi source (testsrc2, life,
cellauto, gradients, sierpinski, colour bars, ...) under its own colour grade (a channel mix and a
per-channel `lutrgb` blend towards a tint colour; the tints of successive locations are 137.5 degrees
of hue apart by default, `hue_step`), filmed from 2-3 camera "angles" (a wide frame,
a medium and a close crop at seeded positions with a slow pan, one mirrored, each with its own
"actor" box in the location's accent colour). A scene is 3-8 shots of 1.5-5 s alternating angles
(A B A C B ...), hard cuts inside. Between scenes (seeded): a plain cut, a cut to black for
0.4-1.0 s, or a fade out / black / fade in. Sound: each scene has its own espeak-ng voice reading
its own sentences (lines run on across the cuts inside the scene, pauses 0.2-0.9 s) and/or its
own music bed (a held chord with a tremolo at the scene's tempo); at a scene change the sound
either stops for about a second around the cut (always across black) or switches at the cut.
No line of speech crosses a scene change (no J/L-cuts).

Truth (exact by construction; frame-accurate: every piece is cut at a frame count):
  shots[]: shot_index, start_frame, end_frame, start_s, end_s, scene, angle, is_black,
           transition_in, transition_out (shots.parquet's conventions);
  scene_starts: the first shot of every scene. A black shot between two scenes belongs to the
  scene before it (the convention of `group_scenes`);
  speech: the spans where a line was placed (the loud part of the espeak-ng output);
  segments: speech / music / silence as audio.json describes them (speech = lines with pauses
  < 1.2 s bridged, silence = no sound for >= 0.5 s, music = other sound), DERIVED FROM WHERE THE
  SOUND WAS PLACED, not measured by the audio analyzer.
"""

from __future__ import annotations

import colorsys
import random
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import pandas as pd

from prism_assets_tests.support.localization_media import OTHER_TITLE_EN, SENTENCES, speak

FPS = 25
W, H = 640, 360
CW, CH = 480, 270  # the location's canvas the angles crop from (scaled up to W x H)
SR = 48000
VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb+m3", "en-us+m5", "en-gb-scotland", "en-us+f4", "en-gb+f2"]
LINES = SENTENCES["en"] + OTHER_TITLE_EN
SOURCES = ["testsrc2", "life", "cellauto", "gradients", "sierpinski", "smptehdbars", "rgbtestsrc", "colorspectrum"]


def _hex(rgb) -> str:
    return "0x%02X%02X%02X" % tuple(int(c) for c in rgb)


def _source(kind: str, rng: random.Random) -> str:
    s = f"s={CW}x{CH}:r={FPS}"
    if kind == "life":
        cols = [_hex([rng.randrange(256) for _ in range(3)]) for _ in range(3)]
        return (f"life=s=160x90:r={FPS}:mold=10:ratio=0.3:seed={rng.randrange(10**6)}:life_color={cols[0]}:death_color={cols[1]}:"
                f"mold_color={cols[2]},scale={CW}x{CH}:flags=neighbor")
    if kind == "cellauto":
        return f"cellauto=s=240x135:r={FPS}:rule={rng.choice([18, 30, 90, 110, 150])}:seed={rng.randrange(10**6)},scale={CW}x{CH}:flags=neighbor"
    if kind == "gradients":
        cols = ":".join(f"c{i}={_hex([rng.randrange(256) for _ in range(3)])}" for i in range(3))
        return f"gradients={s}:n=3:{cols}:speed=0.02:seed={rng.randrange(10**6)}"
    if kind == "sierpinski":
        return f"sierpinski={s}:type={rng.choice(['carpet', 'triangle'])}:seed={rng.randrange(10**6)}"
    return f"{kind}={s}"


def _location(kind: str, rng: random.Random, hue_deg: float) -> dict:
    """A source under a grade: a channel mix, then each channel blended towards a tint colour."""
    tint = 255 * np.array(colorsys.hsv_to_rgb(hue_deg / 360, rng.uniform(0.6, 0.9), rng.uniform(0.75, 1.0)))  # the location's palette
    keep = rng.uniform(0.45, 0.65)
    lut = ":".join(f"{c}='val*{keep:.3f}+{t * (1 - keep):.1f}'" for c, t in zip("rgb", tint))
    accent = _hex([255 - t for t in tint])
    mix = np.array([[rng.uniform(0, 1) for _ in range(3)] for _ in range(3)])
    mix /= mix.sum(axis=1, keepdims=True)
    grade = f"format=rgb24,colorchannelmixer={':'.join(f'{v:.3f}' for row in mix for v in (*row, 0))},lutrgb={lut}"
    angles = [{"cw": CW, "x": 0, "y": 0, "flip": False}]
    for z, flip in ((rng.uniform(0.6, 0.75), False), (rng.uniform(0.42, 0.55), True))[: rng.choice([1, 2])]:
        cw = int(CW * z) // 2 * 2
        angles.append({"cw": cw, "x": rng.randrange(0, CW - cw + 1), "y": rng.randrange(0, CH - cw * 9 // 16 + 1), "flip": flip})
    for a in angles:
        a["box"] = (rng.randrange(40, W - 200), rng.randrange(30, H - 180), rng.randrange(60, 180), rng.randrange(80, 170))
    return {"kind": kind, "source_rng": rng.randrange(10**9), "grade": grade, "accent": accent, "angles": angles, "tint": [round(t) for t in tint]}


def _shot_filter(loc: dict, angle: int, n: int, fade_in: bool, fade_out: bool) -> str:
    a = loc["angles"][angle]
    src = _source(loc["kind"], random.Random(loc["source_rng"]))  # the same source settings for every shot of the location
    ch = a["cw"] * 9 // 16 // 2 * 2
    pan = f"min({a['x']}+4*t\\,{CW - a['cw']})" if a["cw"] < CW else "0"
    f = f"{src},trim=end_frame={n},setpts=PTS-STARTPTS"
    if a["cw"] < CW:
        f += f",crop={a['cw']}:{ch}:{pan}:{a['y']}"
    f += f",{loc['grade']}" + (",hflip" if a["flip"] else "") + f",scale={W}:{H}:flags=bilinear,format=yuv420p,setsar=1"
    bx, by, bw, bh = a["box"]
    f += f",drawbox=x={bx}:y={by}:w={bw}:h={bh}:color={loc['accent']}@1:t=fill"
    if fade_in:
        f += f",fade=t=in:st=0:d={0.48:.2f}"
    if fade_out:
        f += f",fade=t=out:st={n / FPS - 0.48:.3f}:d=0.48"
    return f


def _music(dur: float, rng: random.Random) -> np.ndarray:
    """A held chord (three notes of the scene) with a tremolo at the scene's tempo."""
    t = np.arange(int(dur * SR)) / SR
    root = rng.choice([110.0, 123.5, 130.8, 146.8, 164.8, 174.6, 196.0])
    notes = [root, root * rng.choice([1.25, 1.2]), root * 1.5]
    x = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6.28)) for f in notes) / 3
    return 0.25 * x * (0.75 + 0.25 * np.sin(2 * np.pi * rng.uniform(1.0, 3.0) * t))


def _runs(mask: np.ndarray, step: float) -> list[tuple[float, float]]:
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return [(a * step, b * step) for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1))]


def _segments(speech: list[tuple[float, float]], music: list[tuple[float, float]], dur: float) -> list[dict]:
    """audio.json's segments from where the sound was placed (10 ms grid)."""
    step = 0.01
    n = int(round(dur / step))
    t = (np.arange(n) + 0.5) * step
    sp = np.zeros(n, bool)
    for s, e in speech:
        sp |= (t >= s) & (t < e)
    for (_, e0), (s1, _) in zip(speech[:-1], speech[1:]):  # pauses < 1.2 s inside speech
        if s1 - e0 < 1.2:
            sp |= (t >= e0) & (t < s1)
    snd = sp.copy()
    for s, e in music:
        snd |= (t >= s) & (t < e)
    kind = np.where(sp, 0, np.where(snd, 1, 2))
    for a, b in _runs(kind == 2, step):  # silence shorter than 0.5 s is not silence
        if b - a < 0.5:
            i0, i1 = int(round(a / step)), int(round(b / step))
            kind[i0:i1] = kind[i0 - 1] if i0 > 0 else (kind[i1] if i1 < n else 2)
    names = ["speech", "music", "silence"]
    out: list[dict] = []
    d = np.flatnonzero(np.diff(kind)) + 1
    for a, b in zip(np.concatenate([[0], d]), np.concatenate([d, [n]])):
        out.append({"kind": names[kind[a]], "start_s": round(a * step, 3), "end_s": round(b * step, 3)})
    return out


def make_scene_title(path: Path, seed: int, n_scenes: int = 5, shots_per_scene: tuple[int, int] = (3, 8),
                     shot_s: tuple[float, float] = (1.5, 5.0), hue_step: float = 137.5) -> dict:
    """Render the title to `path` (MP4, 640x360, 25 fps, H.264 + AAC) and return its truth. A small
    `hue_step` (degrees between successive locations' tints) makes neighbouring scenes look alike."""
    rng = random.Random(seed)
    kinds = rng.sample(SOURCES, k=min(n_scenes, len(SOURCES)))
    while len(kinds) < n_scenes:
        kinds.append(rng.choice([k for k in SOURCES if k != kinds[-1]]))
    hue0 = rng.uniform(0, 360)
    locs = [_location(k, random.Random(rng.randrange(10**9)), (hue0 + hue_step * i) % 360) for i, k in enumerate(kinds)]
    shots: list[dict] = []
    scenes: list[dict] = []
    frame = 0
    for si in range(n_scenes):
        between = "start" if si == 0 else rng.choice(["cut", "cut", "black", "fade"])
        if between in ("black", "fade"):
            n = rng.randrange(int(0.4 * FPS), int(1.0 * FPS) + 1) if between == "black" else rng.randrange(5, 13)
            shots[-1]["transition_out"] = "fade_out" if between == "fade" else "cut"
            shots.append({"start_frame": frame, "end_frame": frame + n - 1, "scene": si - 1, "angle": -1, "is_black": True,
                          "transition_in": shots[-1]["transition_out"], "transition_out": "fade_in" if between == "fade" else "cut"})
            frame += n
        n_shots = rng.randint(*shots_per_scene)
        n_angles = len(locs[si]["angles"])
        seq = [0]
        while len(seq) < n_shots:
            seq.append(rng.choice([a for a in range(n_angles) if a != seq[-1]]))
        first = len(shots)
        for k, a in enumerate(seq):
            n = int(round(rng.uniform(*shot_s) * FPS))
            t_in = "start" if not shots else ("fade_in" if between == "fade" and k == 0 else "cut")
            shots.append({"start_frame": frame, "end_frame": frame + n - 1, "scene": si, "angle": a, "is_black": False,
                          "transition_in": t_in, "transition_out": "cut"})
            frame += n
        scenes.append({"scene": si, "start_shot": first, "location": kinds[si], "tint": locs[si]["tint"], "transition_in": between,
                       "voice": None, "music": False})
    shots[-1]["transition_out"] = "end"
    for i, s in enumerate(shots):
        s["shot_index"] = i
        s["start_s"], s["end_s"] = s["start_frame"] / FPS, (s["end_frame"] + 1) / FPS
    dur = frame / FPS
    # sound, scene by scene
    audio = np.zeros(int(round(dur * SR)) + SR)
    speech: list[tuple[float, float]] = []
    music: list[tuple[float, float]] = []
    line_no = rng.randrange(len(LINES))
    with tempfile.TemporaryDirectory() as tmp:
        for si, sc in enumerate(scenes):
            members = [s for s in shots if s["scene"] == si and not s["is_black"]]
            t0, t1 = members[0]["start_s"], members[-1]["end_s"]
            nxt = scenes[si + 1]["transition_in"] if si + 1 < n_scenes else "end"
            gap_in = sc["transition_in"] in ("black", "fade") or (sc["transition_in"] == "cut" and sc.get("gap_in", False))
            gap_out = nxt in ("black", "fade") or (nxt == "cut" and rng.random() < 0.5)
            if si + 1 < n_scenes:
                scenes[si + 1]["gap_in"] = gap_out
            a0 = t0 + (0.45 if gap_in else 0.0)
            a1 = t1 - (0.55 if gap_out else 0.0)
            what = rng.choice(["speech", "speech", "music", "both"])
            if what in ("music", "both"):
                m = _music(a1 - a0, random.Random(rng.randrange(10**9)))
                i0 = int(round(a0 * SR))
                audio[i0:i0 + len(m)] += m * (0.5 if what == "both" else 1.0)
                music.append((round(a0, 3), round(a1, 3)))
                sc["music"] = True
            if what in ("speech", "both"):
                voice = rng.choice(VOICES)
                sc["voice"] = voice
                t = a0 + rng.uniform(0.2, 0.6)
                while True:
                    x = speak(LINES[line_no % len(LINES)], voice, Path(tmp) / "s.wav", speed=165)
                    if t + len(x) / SR > a1 - 0.15:
                        break
                    i0 = int(round(t * SR))
                    audio[i0:i0 + len(x)] += 0.8 * x
                    speech.append((round(t, 3), round(t + len(x) / SR, 3)))
                    line_no += 1
                    t += len(x) / SR + rng.uniform(0.2, 0.9)
        wav = Path(tmp) / "a.wav"
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SR)
            w.writeframes((np.clip(audio[: int(round(dur * SR))], -1, 1) * 32767).astype("<i2").tobytes())
        graph = []
        for i, s in enumerate(shots):
            n = s["end_frame"] - s["start_frame"] + 1
            if s["is_black"]:
                graph.append(f"color=c=black:s={W}x{H}:r={FPS},trim=end_frame={n},setpts=PTS-STARTPTS,format=yuv420p,setsar=1[v{i}]")
            else:
                graph.append(_shot_filter(locs[s["scene"]], s["angle"], n, s["transition_in"] == "fade_in", s["transition_out"] == "fade_out") + f"[v{i}]")
        graph.append("".join(f"[v{i}]" for i in range(len(shots))) + f"concat=n={len(shots)}:v=1:a=0[out]")
        script = Path(tmp) / "graph.txt"
        script.write_text(";\n".join(graph))
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-filter_complex_script", str(script), "-i", str(wav), "-map", "[out]", "-map", "0:a",
                        "-c:v", "libx264", "-preset", "ultrafast", "-crf", "20", "-pix_fmt", "yuv420p", "-r", str(FPS),
                        "-c:a", "aac", "-b:a", "96k", "-shortest", str(path)], check=True, capture_output=True, timeout=600)
    for sc in scenes:
        sc.pop("gap_in", None)
    return {"seed": seed, "fps": FPS, "size": [W, H], "duration_s": dur, "n_frames": frame, "shots": shots, "scenes": scenes,
            "scene_starts": [sc["start_shot"] for sc in scenes], "speech": speech, "music": music,
            "segments": _segments(speech, music, dur)}


def shots_frame(truth: dict) -> pd.DataFrame:
    """shots.parquet's columns from the truth (exact cut times; luma_mean left NaN)."""
    df = pd.DataFrame(truth["shots"])
    df["n_frames"] = df["end_frame"] - df["start_frame"] + 1
    df["luma_mean"] = np.where(df["is_black"], 16.0, np.nan)
    return df[["shot_index", "start_frame", "end_frame", "n_frames", "start_s", "end_s", "transition_in", "transition_out", "is_black", "luma_mean"]]


def picture_frames(truth: dict, per_shot: int = 2) -> list[tuple[int, int]]:
    """(shot_index, frame) of the pictures taken per non-black shot: evenly inside it, 0.2 s from its ends."""
    out = []
    g = int(0.2 * truth["fps"])
    for s in truth["shots"]:
        if s["is_black"]:
            continue
        a, b = s["start_frame"] + g, s["end_frame"] - g
        for k in range(per_shot):
            out.append((s["shot_index"], int(round(a + (b - a) * (k + 1) / (per_shot + 1)))))
    return out


def frames_for_shots(video: Path, shots_truth: dict | list[dict], per_shot: int = 2) -> list[tuple[int, bytes]]:
    """JPEGs (longest side <= 640) of `per_shot` frames inside every non-black shot, in one ffmpeg pass."""
    truth = shots_truth if isinstance(shots_truth, dict) else {"shots": shots_truth, "fps": FPS}
    picks = picture_frames(truth, per_shot)
    frames = sorted({f for _, f in picks})
    with tempfile.TemporaryDirectory() as tmp:
        sel = "+".join(f"eq(n\\,{f})" for f in frames)
        script = Path(tmp) / "f.txt"
        script.write_text(f"select='{sel}',scale='min(640,iw)':-2")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(video), "-filter_script:v", str(script), "-vsync", "0", "-q:v", "3",
                        str(Path(tmp) / "%05d.jpg")], check=True, capture_output=True, timeout=300)
        files = sorted(Path(tmp).glob("*.jpg"))
        if len(files) != len(frames):
            raise RuntimeError(f"asked ffmpeg for {len(frames)} frames, got {len(files)}")
        data = {f: p.read_bytes() for f, p in zip(frames, files)}
    return [(shot, data[f]) for shot, f in picks]


def keyframes_frame(truth: dict) -> pd.DataFrame:
    """A keyframes table (shot_index, frame, t_s, score) for the pictures `frames_for_shots` takes; the
    score prefers the middle picture of a shot."""
    rows = [{"shot_index": s, "frame": f, "t_s": f / truth["fps"], "score": 1.0} for s, f in picture_frames(truth, 1)]
    return pd.DataFrame(rows, columns=["shot_index", "frame", "t_s", "score"])


def audio_segments(truth: dict) -> tuple[list[dict], list[tuple[float, float]]]:
    """(segments, speech regions) as audio.json gives them, from where the sound was placed."""
    return truth["segments"], [tuple(s) for s in truth["speech"]]
