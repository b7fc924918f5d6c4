"""Held-out-style composites built like `shared/media/tools/build_composite.py`, from other pieces of
the same CC-BY footage (Big Buck Bunny, shared/media/big_buck_bunny_0_30.webm), at another size and
frame rate, with exact ground truth by construction (same JSON format as qc_composite.gt.json).

Each seed picks a different order of source shots, different offsets and lengths, and different
dissolve / fade lengths. Every clip has hard cuts, a dissolve, a cut to black with a black segment
and a fade-in, a freeze, a text overlay fading in (not a cut), and a fade-out to black at the end.

    python -m prism_assets_tests.support.bbb_composite OUT.mp4 --fps 30 --size 854x480 --seed 2
"""

from __future__ import annotations

import argparse
import json
import random
from fractions import Fraction
from pathlib import Path

import numpy as np

MEDIA = Path(__file__).resolve().parents[3] / "shared" / "media"  # ../shared/media beside the checkout
BBB = MEDIA / "big_buck_bunny_0_30.webm"
# hand-verified shots of the source (big_buck_bunny_0_30.gt.json); the first starts after its fade-in
SOURCE_SHOTS = {"meadow": (49, 282), "stream": (283, 375), "bird": (376, 488), "burrow": (551, 599)}
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def _frames(width: int, height: int) -> list[np.ndarray]:
    import av

    with av.open(str(BBB)) as c:
        return [f.to_ndarray(format="rgb24", width=width, height=height) for f in c.decode(c.streams.video[0])]


def _text_overlay(img: np.ndarray, text: str, alpha: float) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    h, w = img.shape[:2]
    base = Image.fromarray(img)
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    try:
        font = ImageFont.truetype(FONT, max(10, h // 12))
    except OSError:  # pragma: no cover - fonts-dejavu-core is installed by .ci/setup.sh
        font = ImageFont.load_default()
    box = draw.textbbox((0, 0), text, font=font)
    x, y = (w - (box[2] - box[0])) // 2, int(h * 0.72)
    draw.text((x, y), text, font=font, fill=(255, 255, 255, int(255 * alpha)))
    return np.asarray(Image.alpha_composite(base.convert("RGBA"), layer).convert("RGB"))


def make_bbb_composite(out: Path, fps: float = 30, width: int = 854, height: int = 480, seed: int = 0, step: int = 1) -> dict:
    """`step` source frames per composite frame: 2 makes a 12 fps clip move as 12 fps footage does
    (twice the motion between frames), not a 24 fps clip played slowly."""
    import av

    rng = random.Random(seed)
    src = _frames(width, height)
    black = np.zeros((height, width, 3), np.uint8)
    V: list[np.ndarray] = []
    events: list[dict] = []
    shots: list[dict] = []

    def take(name: str, n: int, offset: int | None = None) -> list[np.ndarray]:
        a, b = SOURCE_SHOTS[name]
        n = min(n, (b - a) // step + 1)
        o = rng.randint(a, b - (n - 1) * step) if offset is None else offset
        return src[o : o + (n - 1) * step + 1 : step]

    def shot(label: str, frames: list[np.ndarray]):
        start = len(V)
        V.extend(frames)
        shots.append({"label": label, "out_first": start, "out_last": len(V) - 1})

    order = list(SOURCE_SHOTS)
    rng.shuffle(order)
    # 1-2: opening shot, hard cut
    shot(order[0], take(order[0], rng.randint(40, 70)))
    events.append({"type": "hard_cut", "frame": len(V)})
    shot(order[1], take(order[1], rng.randint(40, 70)))
    # 3: dissolve order[1] -> order[2]
    L = rng.randint(14, 30)
    a_frames, b_frames = take(order[1], L), take(order[2], L + 40)
    L = min(L, len(a_frames), len(b_frames) - 8)  # short source shots at step > 1
    d0 = len(V)
    for k in range(L):
        w = (k + 1) / (L + 1)
        V.append((a_frames[k] * (1 - w) + b_frames[k] * w).round().astype(np.uint8))
    events.append({"type": "dissolve", "first": d0, "last": len(V) - 1})
    shot(order[2], b_frames[L:])
    # 4: cut to black, black, fade in
    events.append({"type": "hard_cut_to_black", "frame": len(V)})
    b0 = len(V)
    V.extend([black] * rng.randint(int(fps), int(2.5 * fps)))
    events.append({"type": "black", "first": b0, "last": len(V) - 1})
    F = rng.randint(12, 30)
    fin = take(order[3], F + 50)
    F = min(F, len(fin) - 8)
    f0 = len(V)
    for k in range(F):
        V.append((fin[k] * ((k + 1) / (F + 1))).round().astype(np.uint8))
    events.append({"type": "fade_in", "first": f0, "last": len(V) - 1})
    shot(order[3], fin[F:])
    # 5: freeze (the last frame held) inside the same shot
    z0 = len(V)
    V.extend([V[-1]] * rng.randint(int(1.5 * fps), int(2.5 * fps)))
    events.append({"type": "freeze", "first": z0 - 1, "last": len(V) - 1})
    # 6: hard cut, a shot with a title fading in (not a cut)
    events.append({"type": "hard_cut", "frame": len(V)})
    t_frames = take(order[0], rng.randint(70, 110))
    t0 = len(V)
    ramp = rng.randint(10, 20)
    text = rng.choice(["PRISM ORIGINALS", "EPISODE ONE", "A BLENDER OPEN MOVIE"])
    V.extend(_text_overlay(f, text, min(1.0, i / ramp)) if i > 0 else f for i, f in enumerate(t_frames))
    shots.append({"label": order[0] + "_title", "out_first": t0, "out_last": len(V) - 1})
    events.append({"type": "title_overlay_not_a_cut", "first": t0, "last": len(V) - 1, "text": text})
    # 7: hard cut, last shot fading out to black, then black
    events.append({"type": "hard_cut", "frame": len(V)})
    last = take(order[2], rng.randint(60, 90))
    F2 = rng.randint(12, 30)
    s0 = len(V)
    for i, f in enumerate(last):
        k = i - (len(last) - F2)
        V.append(f if k < 0 else (f * (1 - (k + 1) / F2)).round().astype(np.uint8))
    shots.append({"label": order[2] + "_end", "out_first": s0, "out_last": len(V) - 1})
    events.append({"type": "fade_out", "first": len(V) - F2, "last": len(V) - 1, "note": "last frame of the fade is pure black"})
    b1 = len(V) - 1
    V.extend([black] * rng.randint(int(0.5 * fps), int(1.5 * fps)))
    events.append({"type": "black", "first": b1, "last": len(V) - 1})

    out.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(out), "w") as c:
        st = c.add_stream("libx264", rate=rate)
        st.width, st.height, st.pix_fmt = width, height, "yuv420p"
        st.options = {"crf": "18", "preset": "veryfast"}
        for img in V:
            for p in st.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in st.encode(None):
            c.mux(p)
    cuts = sorted(e["frame"] for e in events if e["type"] in ("hard_cut", "hard_cut_to_black"))
    gt = {
        "file": out.name, "fps": float(fps), "n_frames": len(V), "duration_s": len(V) / float(fps), "width": width, "height": height,
        "frame_index_convention": "0-based decode order; a hard_cut 'frame' is the first frame of the new shot",
        "generator": f"prism_assets_tests/support/bbb_composite.py seed={seed}", "hard_cuts": cuts, "events": events, "shots": shots,
        "sources": {"video": "Big Buck Bunny (c) Blender Foundation, CC-BY 3.0"},
    }
    out.with_suffix(".gt.json").write_text(json.dumps(gt, indent=1))
    return gt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--fps", type=float, default=30)
    ap.add_argument("--size", default="854x480")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    w, h = (int(x) for x in a.size.lower().split("x"))
    gt = make_bbb_composite(a.out, a.fps, w, h, a.seed)
    print(f"{a.out}: {gt['n_frames']} frames, cuts {gt['hard_cuts']}")


if __name__ == "__main__":
    main()
