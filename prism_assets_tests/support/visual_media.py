"""Synthetic test videos for shot/transition detectors, with ground truth that is exact by construction.

Everything is made from ffmpeg lavfi sources (testsrc2, mandelbrot, life, cellauto, gradients,
geq "plasma" and "rings", colour bars, ...) and filters (xfade, fade, tpad, drawtext, crop/zoompan
camera moves, noise). Each piece of the timeline is rendered to a lossless intermediate with an exact
frame count (``-frames:v N``, constant frame rate, NUT container whose time base is 1/fps), then the
pieces are concatenated and encoded once with libx264, so every frame number in the ground truth is
known exactly. The ground truth uses the format of ``shared/media/qc_composite.gt.json``:

* frame numbers are 0-based in decode order; a hard cut's ``frame`` is the first frame of the new shot;
* ``hard_cuts`` lists every abrupt shot change, the cut to black included;
* ``events``: ``hard_cut{frame}``, ``hard_cut_to_black{frame}``, ``dissolve{first,last}`` (the frames
  that are mixtures of both shots), ``black{first,last}``, ``fade_in{first,last}`` (first non-black frame
  .. last frame below full level), ``fade_out{first,last}`` (first dimmed frame .. first pure black
  frame, as in qc_composite), ``freeze{first,last}`` (``first`` is the moving shot's last frame, which
  is then held up to ``last``), ``silence``, and negatives that must not be boundaries:
  ``title_overlay_not_a_cut``, ``camera_motion_not_a_cut``, ``near_static_not_a_cut``;
* ``shots``: the pure-content frame range of each shot (transition frames excluded, as in qc_composite).

CLI::

    python -m prism_assets_tests.support.visual_media composite OUT.mp4 --fps 25 --size 1280x720 --seed 3
    python -m prism_assets_tests.support.visual_media long OUT.mp4 --minutes 10
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
FRAME_INDEX_CONVENTION = "0-based decode order; a hard_cut 'frame' is the first frame of the new shot"
AUDIO_RATE = 48000

# Moving content (each visually distinct from the others) and static content.
MOVING_KINDS = ["testsrc2", "mandelbrot", "life", "cellauto", "gradients", "plasma", "rings"]
STATIC_KINDS = ["smptehdbars", "pal100bars", "rgbtestsrc", "yuvtestsrc", "colorspectrum"]
STILL_BASES = ["mandelbrot_still", "testsrc_still", "life_still"]  # camera-move backgrounds

# Self-check thresholds on decoded 8-bit luma (limited range).
BLACK_MAX_MEAN_Y = 17.5      # pure black is Y=16
CUT_MIN_DIFF = 12.0          # mean |Y(c) - Y(c-1)| across a hard cut
CUT_MIN_RATIO = 2.0          # ... and at least this many times the larger neighbouring in-shot diff
FREEZE_MAX_DIFF = 1.0        # mean |dY| between held frames after H.264 coding


# ---------------------------------------------------------------------------------------------- utils


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if not exe:
        raise RuntimeError("ffmpeg not found on PATH")
    return exe


def _run(args: list[str]) -> None:
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}): {' '.join(args)}\n{proc.stderr[-4000:]}")


def _rate(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


def _rs(rate: Fraction) -> str:
    return f"{rate.numerator}/{rate.denominator}"


def _frames(seconds: float, fps: float) -> int:
    return max(1, int(round(seconds * fps)))


def _count_packets(path: Path) -> int:
    """Video packet count (== frame count for our streams) without decoding."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
         "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    return int(out.split(",")[0])


def _luma_frames(path: Path):
    """Yield the decoded Y plane (uint8, HxW) of every frame, in decode order."""
    import av

    with av.open(str(path)) as c:
        st = c.streams.video[0]
        st.thread_type = "AUTO"
        for f in c.decode(st):
            if f.format.name == "yuv420p":
                yield f.to_ndarray()[: f.height]
            else:
                yield f.to_ndarray(format="gray")


def _escape_text(s: str) -> str:
    return s.replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'").replace(",", "\\,")


# ------------------------------------------------------------------------------------------- content


def _content(kind: str, w: int, h: int, rate: Fraction, rng: random.Random) -> str:
    """A lavfi source chain producing moving (or static) content of `kind` at WxH, yuv420p.

    Expensive generators render at a reduced size and are scaled up, so 1080p stays cheap.
    """
    r = _rs(rate)
    sz = lambda div, mw=64, mh=36: f"{max(mw, w // div) // 2 * 2}x{max(mh, h // div) // 2 * 2}"  # noqa: E731
    up = f"scale={w}:{h}:flags=bicubic"
    seed = rng.randrange(1, 2**31 - 1)
    if kind == "testsrc2":
        g = f"testsrc2=s={w}x{h}:r={r}"
    elif kind == "mandelbrot":
        pts = [(-0.743643887037151, 0.13182590420533), (-0.7453, 0.1127), (-1.25066, 0.02012), (-0.1592, -1.0317)]
        x, y = rng.choice(pts)
        g = (f"mandelbrot=s={sz(4 if w <= 1280 else 6)}:r={r}:maxiter=384:start_x={x}:start_y={y}"
             f":start_scale={rng.uniform(1.5, 3.0):.3f}:end_scale=0.01:end_pts=400,{up}")
    elif kind == "life":
        # 1/3 of the frame rate, blended up to full rate (no flicker), after 30 warm-up generations
        lc, dc, mc = rng.choice([("#ffdd33", "#1d3b8a", "#c03060"), ("#33ff99", "#602080", "#ff8020"),
                                 ("#ffffff", "#b02020", "#2060c0")])
        g = (f"life=s={sz(6)}:r={_rs(rate / 3)}:ratio={rng.uniform(0.2, 0.4):.2f}:seed={seed}:mold=8"
             f":life_color={lc}:death_color={dc}:mold_color={mc},trim=start_frame=30,setpts=PTS-STARTPTS,"
             f"scale={w}:{h}:flags=neighbor,framerate=fps={r},trim=start_frame=6,setpts=PTS-STARTPTS")
    elif kind == "cellauto":
        rule = rng.choice([18, 30, 90, 110, 150])
        g = (f"cellauto=s={sz(6)}:r={r}:rule={rule}:random_fill_ratio=0.5:seed={seed}:scroll=1,"
             f"format=rgb24,lutrgb=r='40+val*0.8':g='200-val*0.6':b='90+val*0.5',scale={w}:{h}:flags=neighbor")
    elif kind == "gradients":
        g = (f"gradients=s={sz(4)}:r={r}:speed={rng.uniform(0.02, 0.04):.3f}:seed={seed}"
             f":nb_colors={rng.choice([3, 4, 5])},{up}")
    elif kind == "rings":
        cx, cy, k1, k2 = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(2.5, 4), rng.uniform(3, 5)
        g = (f"color=c=black:s={sz(8, 32, 18)}:r={r},format=gbrp,"
             f"geq=r='128+127*sin(hypot(X-W*{cx:.2f},Y-H*{cy:.2f})/{k1:.2f}-T*3)'"
             f":g='128+100*cos(hypot(X-W*{1 - cx:.2f},Y-H*{1 - cy:.2f})/{k2:.2f}-T*2)'"
             f":b='160+90*sin(X/9+T)',{up}")
    elif kind == "plasma":
        a, b, c = (rng.uniform(6, 14) for _ in range(3))
        g = (f"color=c=black:s={sz(8, 32, 18)}:r={r},format=gbrp,"
             f"geq=r='128+127*sin(X/{a:.2f}+T*2.1)':g='128+127*sin(Y/{b:.2f}-T*1.7)'"
             f":b='128+127*sin((X+Y)/{c:.2f}+T*1.3)',{up}")
    elif kind in STATIC_KINDS:
        g = f"{kind}=s={w}x{h}:r={r}"
    else:
        raise ValueError(f"unknown content kind {kind!r}")
    return f"{g},format=yuv420p,setsar=1"


def _still(kind: str, w: int, h: int, rate: Fraction, rng: random.Random) -> str:
    """One still frame of `kind` at WxH, looped forever (background for camera moves)."""
    r = _rs(rate)
    if kind == "mandelbrot_still":
        g = (f"mandelbrot=s={min(w, 1280)}x{min(h, 720)}:r={r}:maxiter=512:start_x=-0.7453:start_y=0.1127"
             f":start_scale={rng.uniform(0.02, 0.05):.4f},scale={w}:{h}:flags=bicubic")
    elif kind == "testsrc_still":
        g = f"testsrc=s={w}x{h}:r={r}:decimals=2"
    elif kind == "life_still":
        g = (f"life=s={max(64, w // 8)}x{max(36, h // 8)}:r={r}:ratio=0.3:seed={rng.randrange(1, 2**31 - 1)}"
             f":mold=8:life_color=#ffe070:death_color=#203a70:mold_color=#a03050,trim=start_frame=40,"
             f"setpts=PTS-STARTPTS,scale={w}:{h}:flags=neighbor")
    else:
        raise ValueError(kind)
    return f"{g},trim=end_frame=1,loop=loop=-1:size=1,setpts=N/({r})/TB"


def _camera_move(move: str, base: str, w: int, h: int, n: int, rate: Fraction, rng: random.Random) -> str:
    """Pan (moving crop) or zoom (zoompan) over a large still: pure camera motion, no cut."""
    bw, bh = (w * 3 // 2) // 2 * 2, (h * 3 // 2) // 2 * 2
    src = _still(base, bw, bh, rate, rng)
    last = max(1, n - 1)
    if move == "pan":
        x0, x1 = (0.0, 1.0) if rng.random() < 0.5 else (1.0, 0.0)
        g = (f"{src},crop={w}:{h}:x='(iw-ow)*({x0}+({x1}-{x0})*n/{last})'"
             f":y='(ih-oh)*(0.5-0.4*cos(PI*n/{last}))'")
    elif move == "zoom":
        g = (f"{src},zoompan=z='1+0.5*on/{last}':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)'"
             f":d=1:s={w}x{h}:fps={_rs(rate)}")
    else:
        raise ValueError(move)
    return f"{g},format=yuv420p,setsar=1"


# ------------------------------------------------------------------------------------------ rendering


class _Builder:
    """Renders exact-length lossless pieces and records ground truth positions."""

    def __init__(self, tmp: Path, w: int, h: int, fps: float):
        self.tmp, self.w, self.h, self.fps = tmp, w, h, fps
        self.rate = _rate(fps)
        self.pieces: list[tuple[Path, int]] = []
        self.pos = 0
        self._k = 0

    def _path(self, tag: str) -> Path:
        self._k += 1
        return self.tmp / f"{self._k:02d}_{tag}.nut"

    def render(self, graph: str, n: int, tag: str) -> Path:
        out = self._path(tag)
        _run([_ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i", graph, "-frames:v", str(n),
              "-fps_mode", "passthrough", "-c:v", "libx264", "-qp", "0", "-preset", "ultrafast",
              "-pix_fmt", "yuv420p", "-an", str(out)])
        got = _count_packets(out)
        if got != n:
            raise AssertionError(f"piece {out.name}: {got} frames, wanted {n}")
        return out

    def add(self, path: Path, n: int) -> int:
        start = self.pos
        self.pieces.append((path, n))
        self.pos += n
        return start

    def dissolve(self, a_graph: str, na: int, b_graph: str, nb: int, mixed: int) -> tuple[Path, int]:
        """xfade A->B: output frames 0..na are pure A, na+1..na+mixed are mixtures, then pure B.

        ffmpeg's xfade with offset=na/fps and duration=D/fps outputs A's frame na unchanged (progress 1),
        mixes for D-1 frames and continues with B's frame D; so D = mixed + 1. Verified exactly on
        the lossless pieces below.
        """
        d = mixed + 1
        a = self.render(a_graph, na + d, "dissolve_a")
        b = self.render(b_graph, d + nb, "dissolve_b")
        out = self._path("dissolve")
        off = float(Fraction(na) / self.rate)
        dur = float(Fraction(d) / self.rate)
        _run([_ffmpeg(), "-v", "error", "-y", "-i", str(a), "-i", str(b), "-filter_complex",
              f"[0:v][1:v]xfade=transition=fade:duration={dur:.9f}:offset={off:.9f},format=yuv420p[v]",
              "-map", "[v]", "-fps_mode", "passthrough", "-c:v", "libx264", "-qp", "0", "-preset", "ultrafast",
              str(out)])
        total = na + d + nb
        af, bf, of = list(_luma_frames(a)), list(_luma_frames(b)), list(_luma_frames(out))
        if len(of) != total:
            raise AssertionError(f"dissolve piece has {len(of)} frames, wanted {total}")
        if not (np.array_equal(of[na], af[na]) and np.array_equal(of[na - 1], af[na - 1])):
            raise AssertionError("dissolve: frame na is not pure A")
        if not np.array_equal(of[na + d], bf[d]):
            raise AssertionError("dissolve: frame na+D is not pure B")
        for k in range(na + 1, na + d):
            if np.array_equal(of[k], af[k]) or np.array_equal(of[k], bf[k - na]):
                raise AssertionError(f"dissolve: frame {k} is not a mixture")
        return out, total

    def concat_encode(self, out_path: Path, audio_filter: str, crf: int, preset: str) -> None:
        args = [_ffmpeg(), "-v", "error", "-y"]
        for p, _ in self.pieces:
            args += ["-i", str(p)]
        n = len(self.pieces)
        inputs = "".join(f"[{i}:v]" for i in range(n))
        fc = (f"{inputs}concat=n={n}:v=1:a=0,setpts=N/({_rs(self.rate)})/TB,format=yuv420p[v];"
              f"{audio_filter}[a]")
        args += ["-filter_complex", fc,
                 "-map", "[v]", "-map", "[a]", "-fps_mode", "passthrough", "-r", _rs(self.rate),
                 "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
                 "-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart", str(out_path)]
        _run(args)


def _audio_filter(n_frames: int, fps: float, freq: float, silences: list[tuple[float, float]]) -> str:
    """A sine tone of exactly the video's duration, with digital silence over `silences` (seconds)."""
    ns = int(round(n_frames / fps * AUDIO_RATE))
    f = f"sine=frequency={freq:.1f}:sample_rate={AUDIO_RATE},volume=0.25"
    for a, b in silences:
        f += f",volume=volume=0:enable='between(t,{a:.6f},{b:.6f})'"
    return f + f",atrim=end_sample={ns},aformat=channel_layouts=mono"


# ------------------------------------------------------------------------------------------ composite


def make_composite(out_path: Path, fps: float = 30, width: int = 854, height: int = 480, seed: int = 0,
                   verify: bool = True, crf: int = 18, preset: str = "veryfast") -> dict:
    """A ~35 s clip of 9 visually distinct shots with every kind of boundary and several non-boundaries.

    Structure (the six middle blocks are shuffled by `seed`; content kinds, lengths, text, colours and
    tone vary with `seed` too):

    * head: plain shot;
    * motion: camera pan or zoom over a large still (no cut inside);
    * dissolve: shot, ~0.8 s xfade dissolve, shot;
    * black: hard cut to black, ~2 s black (audio silent), ~0.8 s fade-in into a shot;
    * freeze: moving shot whose last frame is held ~2 s (audio keeps playing);
    * title: shot with a text overlay fading in (not a cut);
    * static: near-static colour bars with slight temporal noise (not a cut, not a freeze);
    * tail: shot that fades out to black over ~0.8 s, then ~1.2 s of black.

    Every block boundary is a hard cut (the one into the black block is `hard_cut_to_black`).
    Returns the ground truth and writes it to ``out_path.with_suffix('.gt.json')``.
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    w, h = int(width) // 2 * 2, int(height) // 2 * 2
    rng = random.Random(seed)
    L = lambda lo, hi: _frames(rng.uniform(lo, hi), fps)  # noqa: E731
    fade_k = _frames(0.8, fps)            # frames strictly between black and full level / A and B

    moving = MOVING_KINDS[:]
    rng.shuffle(moving)
    # freeze wants clearly moving content; gradients drift slowly, so keep it off the freeze block.
    if moving[5] == "gradients":
        moving[5], moving[0] = moving[0], moving[5]
    kinds = dict(head=moving[0], dis_a=moving[1], dis_b=moving[2], black=moving[3], title=moving[4],
                 freeze=moving[5], tail=moving[6])
    middle = ["motion", "dissolve", "black", "freeze", "title", "static"]
    rng.shuffle(middle)
    blocks = ["head", *middle, "tail"]

    events: list[dict] = []
    shots: list[dict] = []
    hard_cuts: list[int] = []
    silences: list[tuple[int, int]] = []
    words = ["PRISM", "SYNTHETIC", "TITLE", "EPISODE", "CHAPTER", "OPEN", "MOVIE", "PRESENTS", "NOT A CUT"]
    fs = max(12, h // 10)

    with tempfile.TemporaryDirectory(prefix="synth_visual_") as td:
        B = _Builder(Path(td), w, h, fps)
        rate = B.rate
        for bi, block in enumerate(blocks):
            start = B.pos
            if bi > 0:
                typ = "hard_cut_to_black" if block == "black" else "hard_cut"
                events.append(dict(type=typ, frame=start))
                hard_cuts.append(start)
            if block == "head":
                n = L(2.5, 3.5)
                B.add(B.render(_content(kinds["head"], w, h, rate, rng), n, "head"), n)
                shots.append(dict(label="head", content=kinds["head"], out_first=start, out_last=start + n - 1))
            elif block == "motion":
                n = L(3.0, 4.0)
                move, base = rng.choice(["pan", "zoom"]), rng.choice(STILL_BASES)
                B.add(B.render(_camera_move(move, base, w, h, n, rate, rng), n, "motion"), n)
                shots.append(dict(label="motion", content=f"{move}:{base}", out_first=start, out_last=start + n - 1))
                events.append(dict(type="camera_motion_not_a_cut", first=start, last=start + n - 1,
                                   note=f"{move} over a still {base} (no cut inside)"))
            elif block == "dissolve":
                na, nb = L(2.0, 3.0), L(2.0, 3.0)
                p, total = B.dissolve(_content(kinds["dis_a"], w, h, rate, rng), na,
                                      _content(kinds["dis_b"], w, h, rate, rng), nb, fade_k)
                B.add(p, total)
                d0 = start + na + 1
                shots.append(dict(label="dissolve_from", content=kinds["dis_a"], out_first=start, out_last=start + na))
                events.append(dict(type="dissolve", first=d0, last=d0 + fade_k - 1,
                                   from_shot=kinds["dis_a"], to_shot=kinds["dis_b"],
                                   note="xfade; frames first..last are mixtures, first-1 is pure A, last+1 pure B"))
                shots.append(dict(label="dissolve_to", content=kinds["dis_b"], out_first=d0 + fade_k,
                                  out_last=start + total - 1))
            elif block == "black":
                nblack = _frames(2.0, fps)
                n = L(2.0, 3.0)
                # black piece: nblack-1 frames; the fade-in piece's frame 0 is also pure black
                B.add(B.render(f"color=c=black:s={w}x{h}:r={_rs(rate)},format=yuv420p,setsar=1",
                               nblack - 1, "black"), nblack - 1)
                fi = start + nblack
                g = _content(kinds["black"], w, h, rate, rng) + f",fade=t=in:s=0:n={fade_k + 1}"
                B.add(B.render(g, 1 + fade_k + n, "fadein"), 1 + fade_k + n)
                events.append(dict(type="black", first=start, last=fi - 1))
                silences.append((start, fi - 1))
                events.append(dict(type="silence", first_frame=start, last_frame=fi - 1,
                                   start_s=round(start / fps, 6), end_s=round(fi / fps, 6)))
                events.append(dict(type="fade_in", first=fi, last=fi + fade_k - 1,
                                   note="first..last are between black and full level; last+1 is full"))
                shots.append(dict(label="after_black", content=kinds["black"], out_first=fi + fade_k,
                                  out_last=fi + fade_k + n - 1))
            elif block == "freeze":
                nm, nf = L(1.5, 2.5), _frames(2.0, fps)
                g = (_content(kinds["freeze"], w, h, rate, rng)
                     + f",trim=end_frame={nm},setpts=PTS-STARTPTS,tpad=stop_mode=clone:stop={nf}")
                B.add(B.render(g, nm + nf, "freeze"), nm + nf)
                shots.append(dict(label="freeze", content=kinds["freeze"], out_first=start, out_last=start + nm - 1))
                events.append(dict(type="freeze", first=start + nm - 1, last=start + nm + nf - 1,
                                   note="frames first..last are copies of one source frame (tpad clone); "
                                        "audio keeps playing"))
            elif block == "title":
                n = L(3.5, 4.5)
                t0f, tdf = _frames(rng.uniform(0.6, 1.2), fps), _frames(0.6, fps)
                t0, td_ = float(Fraction(t0f) / rate), float(Fraction(tdf) / rate)
                text = " ".join(rng.sample(words, 2))
                font = f"fontfile='{FONT}':" if FONT.exists() else ""
                g = (_content(kinds["title"], w, h, rate, rng)
                     + f",drawtext={font}text='{_escape_text(text)}':fontsize={fs}:fontcolor=white"
                       f":borderw={max(1, fs // 12)}:bordercolor=black:x=(w-text_w)/2:y=h*0.7"
                       f":alpha='if(lt(t,{t0:.6f}),0,if(lt(t,{t0 + td_:.6f}),(t-{t0:.6f})/{td_:.6f},1))'")
                B.add(B.render(g, n, "title"), n)
                shots.append(dict(label="title", content=kinds["title"], out_first=start, out_last=start + n - 1))
                events.append(dict(type="title_overlay_not_a_cut", first=start + t0f, last=start + n - 1,
                                   text=text, note=f"text fades in over frames {start + t0f}..{start + t0f + tdf} "
                                                   "and stays to the end of the shot"))
            elif block == "static":
                n = L(2.5, 3.5)
                kind = rng.choice(STATIC_KINDS)
                g = _content(kind, w, h, rate, rng) + f",noise=alls={rng.choice([3, 4, 5])}:allf=t"
                B.add(B.render(g, n, "static"), n)
                shots.append(dict(label="near_static", content=kind, out_first=start, out_last=start + n - 1))
                events.append(dict(type="near_static_not_a_cut", first=start, last=start + n - 1,
                                   note=f"static {kind} with slight temporal noise: no cut, not a freeze"))
            elif block == "tail":
                nt, nblack = L(2.0, 3.0), L(1.0, 1.5)
                total = nt + fade_k + nblack
                g = _content(kinds["tail"], w, h, rate, rng) + f",fade=t=out:s={nt - 1}:n={fade_k + 1}"
                B.add(B.render(g, total, "tail"), total)
                shots.append(dict(label="tail", content=kinds["tail"], out_first=start, out_last=start + nt - 1))
                b0 = start + nt + fade_k
                events.append(dict(type="fade_out", first=start + nt, last=b0,
                                   note="first..last-1 are dimmed; last frame of the fade is pure black"))
                events.append(dict(type="black", first=b0, last=start + total - 1))
            else:  # pragma: no cover
                raise AssertionError(block)

        n_frames = B.pos
        freq = rng.choice([330.0, 440.0, 550.0, 660.0])
        af = _audio_filter(n_frames, fps, freq, [(a / fps, (b + 1) / fps) for a, b in silences])
        B.concat_encode(out_path, af, crf=crf, preset=preset)

    def _key(e):
        return e.get("frame", e.get("first", e.get("first_frame", 0)))

    gt = dict(
        file=out_path.name,
        fps=fps,
        n_frames=n_frames,
        duration_s=round(n_frames / fps, 6),
        width=w,
        height=h,
        frame_index_convention=FRAME_INDEX_CONVENTION,
        hard_cuts=sorted(hard_cuts),
        events=sorted(events, key=_key),
        shots=shots,
        sources=dict(video="synthetic: ffmpeg lavfi sources " + ", ".join(sorted(set(kinds.values()))),
                     audio=f"synthetic: sine {freq:.0f} Hz, digital silence over the black segment"),
        generator=dict(name="prism_assets_tests.support.visual_media.make_composite", seed=seed, blocks=blocks,
                       codec=f"libx264 {preset} crf {crf} yuv420p", audio=f"sine {freq:.0f} Hz mono AAC"),
    )
    if verify:
        gt["self_check"] = verify_composite(out_path, gt)
    out_path.with_suffix(".gt.json").write_text(json.dumps(gt, indent=1))
    return gt


def _frame_stats(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame mean luma and mean |dY| to the previous frame (diff[0] = 0)."""
    means, diffs, prev = [], [], None
    for y in _luma_frames(path):
        y16 = y[::2, ::2].astype(np.int16)  # 2x subsampled: plenty for frame-level statistics
        means.append(float(y16.mean()))
        diffs.append(0.0 if prev is None else float(np.abs(y16 - prev).mean()))
        prev = y16
    return np.array(means), np.array(diffs)


def verify_composite(path: Path, gt: dict) -> dict:
    """Decode `path` with PyAV and assert the ground truth holds on the coded pixels.

    Checks: frame count; black segments at limited-range black; a strong luma change across every hard
    cut (absolute and relative to the neighbouring in-shot changes); held frames nearly identical;
    fade-ins rising from black. Returns a few measured numbers.
    """
    means, diffs = _frame_stats(path)
    n = len(means)
    assert n == gt["n_frames"], f"{path}: decoded {n} frames, ground truth says {gt['n_frames']}"
    cuts = gt["hard_cuts"]
    cut_set = set(cuts)
    for e in gt["events"]:
        if e["type"] == "black":
            seg = means[e["first"]: e["last"] + 1]
            assert seg.max() <= BLACK_MAX_MEAN_Y, f"black {e['first']}-{e['last']}: max mean Y {seg.max():.2f}"
    cut_diffs, ratios = [], []
    for c in cuts:
        d = diffs[c]
        neigh = [diffs[i] for i in (c - 2, c - 1, c + 1, c + 2) if 0 < i < n and i not in cut_set]
        ref = max(neigh) if neigh else 0.0
        assert d >= CUT_MIN_DIFF, f"cut {c}: mean |dY| {d:.2f} < {CUT_MIN_DIFF}"
        assert d >= CUT_MIN_RATIO * ref, f"cut {c}: mean |dY| {d:.2f} not >> in-shot {ref:.2f}"
        cut_diffs.append(d)
        ratios.append(d / max(ref, 1e-6))
    freeze_max = 0.0
    for e in gt["events"]:
        if e["type"] == "freeze":
            seg = diffs[e["first"] + 1: e["last"] + 1]
            freeze_max = max(freeze_max, float(seg.max()))
            assert seg.max() <= FREEZE_MAX_DIFF, f"freeze {e['first']}-{e['last']}: max |dY| {seg.max():.2f}"
        if e["type"] == "fade_in":
            seg = means[e["first"]: e["last"] + 2]
            assert seg[0] > 16.2 and seg[-1] > seg[0] + 5, f"fade_in {e['first']}-{e['last']}: {seg.round(1)}"
            assert np.all(np.diff(seg) > -1.0), f"fade_in not rising: {seg.round(1)}"
        if e["type"] == "fade_out":
            seg = means[e["first"] - 1: e["last"] + 1]
            assert seg[-1] <= BLACK_MAX_MEAN_Y and seg[0] > seg[-1] + 5, f"fade_out: {seg.round(1)}"
    non_cut = [diffs[i] for i in range(1, n) if i not in cut_set]
    return dict(decoded_frames=n, min_cut_diff=round(min(cut_diffs), 2) if cut_diffs else None,
                min_cut_ratio=round(min(ratios), 2) if ratios else None,
                max_non_cut_diff=round(float(max(non_cut)), 2) if non_cut else None,
                max_freeze_diff=round(freeze_max, 3))


# ----------------------------------------------------------------------------------------------- long


LONG_KINDS = ["testsrc2", "mandelbrot", "life", "cellauto", "gradients", "plasma", "rings", "pan",
              "smptehdbars"]


def make_long(out_path: Path, minutes: float = 10, fps: float = 24, width: int = 1920, height: int = 1080,
              seed: int = 0, verify: bool = True) -> dict:
    """A long clip (default 10 min 1080p24) for speed/memory benchmarks; hard cut every ~4-8 s.

    One block of about a minute (varied lavfi content, one ffmpeg run, libx264 ultrafast crf 23) is
    rendered and then repeated with the concat demuxer and ``-c copy`` (each block starts on an IDR
    frame and ultrafast has no B-frames, so the frame count is exact); a sine audio track of exactly
    the video duration is muxed in. The block's last shot differs from its first, so each block
    junction is a hard cut too. Ground truth in the qc_composite format (hard cuts only).
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    w, h = int(width) // 2 * 2, int(height) // 2 * 2
    rng = random.Random(seed)
    rate = _rate(fps)
    total_target = max(1, int(round(minutes * 60 * fps)))
    n_blocks = max(1, int(round(minutes)))
    block_n = max(1, total_target // n_blocks)
    n_frames = block_n * n_blocks

    # shot lengths within a block: 4-8 s, the remainder (>= 4 s) merged into the last shot
    lens: list[int] = []
    remaining, lo, hi = block_n, _frames(4.0, fps), _frames(8.0, fps)
    while remaining > 0:
        if remaining <= hi:
            n = remaining
        else:
            n = _frames(rng.uniform(4.0, 8.0), fps)
            if remaining - n < lo:
                n = remaining - lo
        lens.append(n)
        remaining -= n
    # every kind once (shuffled) before any repeats; no kind twice in a row, block junction included
    kinds: list[str] = []
    pool: list[str] = []
    for i in range(len(lens)):
        if not pool:
            pool = LONG_KINDS[:]
            rng.shuffle(pool)
        bad = {kinds[-1]} if kinds else set()
        if i == len(lens) - 1 and len(lens) > 1:
            bad.add(kinds[0])
        pick = next((k for k in pool if k not in bad), None)
        if pick is None:
            pick = rng.choice([k for k in LONG_KINDS if k not in bad])
        else:
            pool.remove(pick)
        kinds.append(pick)

    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="synth_long_", dir=out_path.parent) as td:
        tdp = Path(td)
        chains = []
        for i, (k, n) in enumerate(zip(kinds, lens)):
            if k == "pan":
                g = _camera_move("pan", rng.choice(["testsrc_still", "mandelbrot_still"]), w, h, n, rate, rng)
            else:
                g = _content(k, w, h, rate, rng)
            chains.append(f"{g},trim=end_frame={n},setpts=PTS-STARTPTS[s{i}]")
        fc = ";".join(chains) + ";" + "".join(f"[s{i}]" for i in range(len(lens))) + \
            f"concat=n={len(lens)}:v=1:a=0,setpts=N/({_rs(rate)})/TB[v]"
        block = tdp / "block.mp4"
        _run([_ffmpeg(), "-v", "error", "-y", "-filter_complex", fc, "-map", "[v]", "-frames:v", str(block_n),
              "-fps_mode", "passthrough", "-r", _rs(rate), "-c:v", "libx264", "-preset", "ultrafast",
              "-crf", "23", "-pix_fmt", "yuv420p", "-an", str(block)])
        got = _count_packets(block)
        if got != block_n:
            raise AssertionError(f"long block: {got} frames, wanted {block_n}")
        lst = tdp / "list.txt"
        lst.write_text("".join(f"file '{block.name}'\n" for _ in range(n_blocks)))
        af = _audio_filter(n_frames, fps, 440.0, [])
        _run([_ffmpeg(), "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(lst),
              "-filter_complex", f"{af}[a]",
              "-map", "0:v", "-map", "[a]", "-c:v", "copy", "-c:a", "aac", "-b:a", "64k",
              "-movflags", "+faststart", str(out_path)])
        got = _count_packets(out_path)
        if got != n_frames:
            raise AssertionError(f"{out_path}: {got} frames, wanted {n_frames}")
        check = None
        if verify:
            check = _verify_block(block, lens)
    gen_s = time.perf_counter() - t_start

    hard_cuts, shots = [], []
    for b in range(n_blocks):
        pos = b * block_n
        for i, (k, n) in enumerate(zip(kinds, lens)):
            if pos > 0:
                hard_cuts.append(pos)
            shots.append(dict(label=f"b{b}s{i}", content=k, out_first=pos, out_last=pos + n - 1))
            pos += n
    gt = dict(
        file=out_path.name,
        fps=fps,
        n_frames=n_frames,
        duration_s=round(n_frames / fps, 6),
        width=w,
        height=h,
        frame_index_convention=FRAME_INDEX_CONVENTION,
        hard_cuts=hard_cuts,
        events=[dict(type="hard_cut", frame=c) for c in hard_cuts],
        shots=shots,
        sources=dict(video="synthetic: ffmpeg lavfi sources " + ", ".join(sorted(set(kinds))),
                     audio="synthetic: sine 440 Hz"),
        generator=dict(name="prism_assets_tests.support.visual_media.make_long", seed=seed, minutes=minutes,
                       block_frames=block_n, n_blocks=n_blocks, codec="libx264 ultrafast crf 23 yuv420p",
                       audio="sine 440 Hz mono AAC", generate_seconds=round(gen_s, 2)),
    )
    if check is not None:
        gt["self_check"] = check
    out_path.with_suffix(".gt.json").write_text(json.dumps(gt, indent=1))
    return gt


def _verify_block(block: Path, lens: list[int]) -> dict:
    """Decode one block (ffmpeg, downsized grey) and check each in-block cut and the block junction."""
    vw, vh = 480, 270
    raw = subprocess.run([_ffmpeg(), "-v", "error", "-i", str(block), "-vf", f"scale={vw}:{vh}:flags=area",
                          "-pix_fmt", "gray", "-f", "rawvideo", "-"], capture_output=True, check=True).stdout
    y = np.frombuffer(raw, np.uint8).reshape(-1, vh, vw)
    assert len(y) == sum(lens), f"block decoded {len(y)} frames, wanted {sum(lens)}"
    diffs = [0.0] + [float(np.abs(y[i].astype(np.int16) - y[i - 1]).mean()) for i in range(1, len(y))]
    cuts = [int(c) for c in np.cumsum(lens)[:-1]]
    cut_diffs = [diffs[c] for c in cuts]
    if len(lens) > 1:
        cut_diffs.append(float(np.abs(y[0].astype(np.int16) - y[-1]).mean()))
    for c, d in zip(cuts + ["junction"], cut_diffs):
        assert d >= CUT_MIN_DIFF, f"long block cut {c}: mean |dY| {d:.2f} < {CUT_MIN_DIFF}"
    cut_set = set(cuts)
    non_cut = [d for i, d in enumerate(diffs) if i > 0 and i not in cut_set]
    return dict(block_frames=len(y), min_cut_diff=round(min(cut_diffs), 2) if cut_diffs else None,
                max_non_cut_diff=round(max(non_cut), 2) if non_cut else None)


# ------------------------------------------------------------------------------------------------ CLI


def _size(s: str) -> tuple[int, int]:
    w, _, h = s.lower().partition("x")
    return int(w), int(h)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m prism_assets_tests.support.visual_media", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("composite", help="~35 s clip with cuts, dissolve, black, fades, freeze, title, motion")
    c.add_argument("out", type=Path)
    c.add_argument("--fps", type=float, default=30)
    c.add_argument("--size", type=_size, default=(854, 480))
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--no-verify", action="store_true")
    lg = sub.add_parser("long", help="long clip (default 10 min 1080p24) with a hard cut every 4-8 s")
    lg.add_argument("out", type=Path)
    lg.add_argument("--minutes", type=float, default=10)
    lg.add_argument("--fps", type=float, default=24)
    lg.add_argument("--size", type=_size, default=(1920, 1080))
    lg.add_argument("--seed", type=int, default=0)
    lg.add_argument("--no-verify", action="store_true")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    if a.cmd == "composite":
        gt = make_composite(a.out, fps=a.fps, width=a.size[0], height=a.size[1], seed=a.seed, verify=not a.no_verify)
    else:
        gt = make_long(a.out, minutes=a.minutes, fps=a.fps, width=a.size[0], height=a.size[1], seed=a.seed,
                       verify=not a.no_verify)
    dt = time.perf_counter() - t0
    kinds = sorted({e["type"] for e in gt["events"]})
    print(f"{a.out}: {gt['n_frames']} frames, {gt['duration_s']:.2f} s, {len(gt['hard_cuts'])} hard cuts, "
          f"events {kinds}; ground truth {a.out.with_suffix('.gt.json')}; {dt:.1f} s")
    if "self_check" in gt:
        print("self-check:", json.dumps(gt["self_check"]))


if __name__ == "__main__":
    main()
