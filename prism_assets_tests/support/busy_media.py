"""Hard cuts between busy, fast-moving pictures, with exact truth (the qc_composite.gt.json format).

Each shot is a fast pan (325-500 px a second at 640x360, at most 36 px a frame, with film grain) across a still of the CC-BY
footage (Big Buck Bunny) at 1920x1080; consecutive frames of a shot differ as much as the frames
across a cut do. `same_palette` takes every shot from one still (one set, another framing): the
colour histogram hardly changes at the cuts either. At `fps` 10-15 the pans move as such footage
does (more per frame).

    python -m prism_assets_tests.support.busy_media OUT.mp4 --fps 12 --seed 2 [--same-palette]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
from pathlib import Path

import numpy as np

from .bbb_composite import BBB

STILLS = (120, 300, 420, 600)


def make_busy_cuts(out: Path, fps: float = 25, seed: int = 0, same_palette: bool = False, shots: int = 5, size=(640, 360)) -> dict:
    import av

    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    w, h = size
    stills = {}
    with av.open(str(BBB)) as c:
        for i, f in enumerate(c.decode(c.streams.video[0])):
            if i in STILLS:
                stills[i] = f.to_ndarray(format="rgb24", width=1920, height=1080).astype(np.float32)
            if i >= max(STILLS):
                break
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "-",
                             "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", str(out)], stdin=subprocess.PIPE)
    first = rng.choice(STILLS)
    cuts, layout, n = [], [], 0
    speed = 25.0 / fps  # the same motion per second: more per frame at a low rate
    for k in range(shots):
        src = first if same_palette else STILLS[(STILLS.index(first) + k) % len(STILLS)]
        nf = rng.randint(int(1.2 * fps), int(2.0 * fps))
        vx = rng.choice([-1, 1]) * min(36.0, rng.uniform(13, 20) * speed)  # 325-500 px/s, at most 36 px a frame
        vy = rng.choice([-1, 1]) * min(16.0, rng.uniform(4, 9) * speed)
        vx = max(-900 / nf, min(900 / nf, vx))  # the pan stays inside the still
        vy = max(-400 / nf, min(400 / nf, vy))
        cx, cy = rng.uniform(-150, 150), rng.uniform(-80, 80)
        for _ in range(100):  # one still for every shot: the next framing starts far from where the last one ended
            if not layout or abs(cx - vx * nf / 2 - layout[-1]["end_x"]) >= 250:
                break
            cx = rng.uniform(-150, 150)
        if n:
            cuts.append(n)
        layout.append({"label": f"pan{k}", "out_first": n, "out_last": n + nf - 1, "still": src, "px_per_frame": [round(vx, 1), round(vy, 1)],
                       "end_x": cx + vx * nf / 2})
        img = stills[src]
        for i in range(nf):
            x0 = int(960 - w / 2 + cx + vx * (i - nf / 2))
            y0 = int(540 - h / 2 + cy + vy * (i - nf / 2))
            f = img[y0:y0 + h, x0:x0 + w] + noise.normal(0, 4, (h, w, 3))
            proc.stdin.write(np.clip(f, 0, 255).astype(np.uint8).tobytes())
            n += 1
    proc.stdin.close()
    if proc.wait(timeout=300) != 0:
        raise RuntimeError("ffmpeg failed")
    gt = {"file": out.name, "fps": float(fps), "n_frames": n, "duration_s": n / float(fps), "width": w, "height": h,
          "frame_index_convention": "0-based decode order; a hard_cut 'frame' is the first frame of the new shot",
          "generator": f"prism_assets_tests/support/busy_media.py seed={seed} same_palette={same_palette}", "hard_cuts": cuts,
          "events": [{"type": "hard_cut", "frame": c} for c in cuts], "shots": layout,
          "sources": {"video": "Big Buck Bunny (c) Blender Foundation, CC-BY 3.0"}}
    out.with_suffix(".gt.json").write_text(json.dumps(gt, indent=1))
    return gt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--fps", type=float, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--same-palette", action="store_true")
    a = ap.parse_args()
    print(json.dumps(make_busy_cuts(a.out, a.fps, a.seed, a.same_palette)["hard_cuts"]))


if __name__ == "__main__":
    main()
