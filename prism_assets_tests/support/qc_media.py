"""Held-out-style QC media with exact ground truth by construction (any frame rate and size).

Built from the CC-BY Big Buck Bunny clip in ../shared/media (picture and its music) plus generated
pieces, so nothing is shared with qc_composite.mp4's layout:

    colour bars + 1 kHz tone | moving footage | cut to black + digital silence | footage fading in |
    footage, then its last frame held (freeze, audio keeps playing) | footage with near-silent audio
    (-75 dBFS noise: silence, not digital) | a still with camera noise (NOT a freeze) | footage | black

Ground truth (`<out>.gt.json`): frame ranges (0-based, inclusive) of `black`, `freeze`, `colour_bars`,
`camera_noise_still` (must not be reported as a freeze), seconds of `silence` and `digital_silence`.

    python -m prism_assets_tests.support.qc_media OUT.mp4 --fps 25 --size 480x270
"""

from __future__ import annotations

import argparse
import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np

MEDIA = Path(__file__).resolve().parents[3] / "shared" / "media"  # ../shared/media beside the checkout
BBB = MEDIA / "big_buck_bunny_0_30.webm"
RATE = 48000


def _bbb(width: int, height: int, fps: float) -> tuple[list[np.ndarray], np.ndarray]:
    """BBB frames at the size (frame rate kept as the source's 24 fps sequence) and its audio, mono 48 kHz."""
    import av

    with av.open(str(BBB)) as c:
        frames = [f.to_ndarray(format="rgb24", width=width, height=height) for f in c.decode(c.streams.video[0])]
    with av.open(str(BBB)) as c:
        rs = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        chunks = []
        for f in c.decode(c.streams.audio[0]):
            for g in rs.resample(f):
                chunks.append(g.to_ndarray().reshape(-1))
        for g in rs.resample(None):
            chunks.append(g.to_ndarray().reshape(-1))
    return frames, np.concatenate(chunks).astype(np.float32)


def _smptebars(width: int, height: int) -> np.ndarray:
    out = subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"smptebars=s={width}x{height}:r=1:d=1", "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(out, np.uint8).reshape(height, width, 3).copy()


def make_qc_media(out: Path, fps: float = 25, width: int = 480, height: int = 270, seed: int = 0) -> dict:
    import av

    rng = np.random.default_rng(seed)
    src, music = _bbb(width, height, fps)
    black = np.zeros((height, width, 3), np.uint8)
    V: list[np.ndarray] = []
    A: list[np.ndarray] = []
    gt: dict[str, list] = {"black": [], "freeze": [], "colour_bars": [], "camera_noise_still": [], "silence": [], "digital_silence": []}
    spf = RATE / fps  # audio samples per frame (fractional)
    pos = {"music": int(RATE * 2.0)}

    def n(seconds: float) -> int:
        return int(round(seconds * fps))

    def audio_for(frames: int, kind: str):
        start = int(round(len(V) * spf))
        end = int(round((len(V) + frames) * spf))
        k = end - start
        if kind == "music":
            a = music[pos["music"] : pos["music"] + k]
            pos["music"] += k
            if len(a) < k:
                a = np.concatenate([a, music[: k - len(a)]])
            a = a * 0.8
        elif kind == "tone":
            t = (start + np.arange(k)) / RATE
            a = 0.1 * np.sin(2 * np.pi * 1000 * t)
        elif kind == "zero":
            a = np.zeros(k)
        elif kind == "hiss":  # -75 dBFS peak noise: below silencedetect's -60 dB, never exact zero
            a = rng.uniform(-1, 1, k) * 10 ** (-75 / 20)
            a[a == 0] = 1e-6
        A.append(a.astype(np.float32))

    def add(frames: list[np.ndarray], kind: str):
        audio_for(len(frames), kind)
        V.extend(frames)

    def footage(seconds: float, offset: int) -> list[np.ndarray]:
        k = n(seconds)
        idx = (offset + np.arange(k) * 24.0 / fps).astype(int) % len(src)  # real motion at any output rate
        return [src[i] for i in idx]

    # 1 colour bars + tone
    b0 = len(V)
    add([_smptebars(width, height)] * n(2.0), "tone")
    gt["colour_bars"].append([b0, len(V) - 1])
    # 2 moving footage
    add(footage(3.0, 60 + int(rng.integers(0, 40))), "music")
    # 3 cut to black + digital silence
    k0 = len(V)
    add([black] * n(2.4), "zero")
    gt["black"].append([k0, len(V) - 1])
    gt["digital_silence"].append([k0 / fps, len(V) / fps])
    gt["silence"].append([k0 / fps, len(V) / fps])
    # 4 fade in from black
    fin = footage(1.0, 300)
    add([(f * ((i + 1) / (len(fin) + 1))).round().astype(np.uint8) for i, f in enumerate(fin)], "music")
    # 5 footage then its last frame held (freeze), audio keeps playing
    add(footage(2.0, 380), "music")
    z0 = len(V) - 1
    add([V[-1]] * n(2.6), "music")
    gt["freeze"].append([z0, len(V) - 1])
    # 6 footage with near-silent audio (-75 dBFS hiss: silence, not digital silence)
    add(footage(1.0, 560), "music")
    s0 = len(V)
    add(footage(2.5, 590), "hiss")
    gt["silence"].append([s0 / fps, len(V) / fps])
    # 7 a still with camera noise: NOT a freeze
    still = src[150].astype(np.float32)
    c0 = len(V)
    add([np.clip(still + rng.normal(0, 3.0, still.shape), 0, 255).astype(np.uint8) for _ in range(n(3.0))], "music")
    gt["camera_noise_still"].append([c0, len(V) - 1])
    # 8 footage, then black to the end (music keeps playing under it)
    add(footage(2.0, 470), "music")
    e0 = len(V)
    add([black] * n(2.2), "music")
    gt["black"].append([e0, len(V) - 1])

    out.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    audio = np.concatenate(A).astype(np.float32)
    with av.open(str(out), "w") as c:
        vs = c.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"crf": "18", "preset": "veryfast"}
        ast = c.add_stream("aac", rate=RATE, layout="mono")
        for img in V:
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
        step = 1024
        for i in range(0, len(audio), step):
            fr = av.AudioFrame.from_ndarray(audio[i : i + step].reshape(1, -1), format="flt", layout="mono")
            fr.sample_rate = RATE
            fr.pts = i
            for p in ast.encode(fr):
                c.mux(p)
        for p in ast.encode(None):
            c.mux(p)
    doc = {"file": out.name, "fps": float(fps), "n_frames": len(V), "duration_s": len(V) / float(fps), "width": width, "height": height,
           "frame_index_convention": "0-based decode order, inclusive ranges; silence in seconds [start, end)",
           "generator": f"prism_assets_tests/support/qc_media.py seed={seed}", **gt,
           "sources": {"video": "Big Buck Bunny (c) Blender Foundation, CC-BY 3.0"}}
    out.with_suffix(".gt.json").write_text(json.dumps(doc, indent=1))
    return doc


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--fps", type=float, default=25)
    ap.add_argument("--size", default="480x270")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    w, h = (int(x) for x in a.size.lower().split("x"))
    gt = make_qc_media(a.out, a.fps, w, h, a.seed)
    print(f"{a.out}: {gt['n_frames']} frames")


if __name__ == "__main__":
    main()


def slow_move(path, still, px_per_frame: float = 0.0, zoom_per_frame: float = 0.0, frames: int = 125, size=(640, 360), crf: int = 32,
              fps: int = 25):
    """A slow pan (`px_per_frame`, sub-pixel, bilinear) or zoom over a still picture (an RGB array
    larger than `size`), encoded as a streaming encoder would (x264, `crf`): consecutive frames
    differ by almost nothing, yet nothing is frozen. px_per_frame = zoom_per_frame = 0: the still
    held, a real freeze."""
    import subprocess

    import numpy as np

    img = np.asarray(still, dtype=np.float32)
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    proc = subprocess.Popen(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "-",
                             "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p", str(path)], stdin=subprocess.PIPE)
    cx0, cy0 = img.shape[1] / 2, img.shape[0] / 2
    for i in range(frames):
        z = 1.0 + zoom_per_frame * i
        sx, sy = cx0 + px_per_frame * i + (xs - w / 2) / z, cy0 + (ys - h / 2) / z
        x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
        fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
        f = (img[y0, x0] * (1 - fx) + img[y0, x0 + 1] * fx) * (1 - fy) + (img[y0 + 1, x0] * (1 - fx) + img[y0 + 1, x0 + 1] * fx) * fy
        proc.stdin.write(f.clip(0, 255).astype(np.uint8).tobytes())
    proc.stdin.close()
    if proc.wait(timeout=120) != 0:
        raise RuntimeError("ffmpeg failed to encode the slow move")
    return path
