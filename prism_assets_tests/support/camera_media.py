"""Camera-like test media built from real footage (`prism_assets_tests/media/real/`, sources and
licences in its README), each with its exact truth:

* `zoom_over_photo`: a slow zoom (ffmpeg `zoompan`) over a real photograph, with the photograph's
  own grain (moves with the picture) and/or live sensor noise (new every frame), low-bitrate x264;
  never a freeze;
* `freeze_in`: real footage whose frame `at - 1` is held (`tpad` clone) for `hold` more frames, then
  the footage goes on; optionally live noise over everything (a frozen frame under live noise);
* `colour_step`: real footage resampled to `fps` whose colours change at frame `at` (a hard change:
  one frame to the next), a cut at `at`;
* `cut_between`: two pieces of real footage joined at `fps`, a cut at the first frame of the second;
* `dissolve_between`: the same two pieces cross-dissolved (`xfade`), the blended frames as truth;
* `whip_pan_over_photo`: a handheld pan across the photograph at a low rate (8-12 fps) with a whip
  (a fast move of part of a picture's width in a tenth of a second or more), rendered exactly with a
  shutter (motion blur) and grain; optionally a jump cut to another part of the same photograph
  (one palette) at a known frame: never a cut at the whip, a cut at the jump.

Frames are 0-based in decode order; a cut's frame is the first frame of the new shot.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

REAL = Path(__file__).resolve().parents[1] / "media" / "real"
PHOTO = REAL / "vacation_photo.jpg"  # a phone photograph (2017), 960x540
FILM = REAL / "chaplin_4s.mp4"  # black-and-white film footage with grain, 25 fps
AIRFIELD = REAL / "airfield_7s.mp4"  # handheld camera footage (an aircraft, then a field; a held picture 4.84-7.2 s), 25 fps
FIRE = REAL / "fire_10fps.mp4"  # phone footage recorded at about 10 fps (variable), handheld


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=180)


def _x264(crf: int, gop: int | None = None) -> list[str]:
    return ["-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p", *(["-g", str(gop)] if gop else [])]


def zoom_over_photo(out: Path, zoom_per_frame: float = 0.0002, frames: int = 125, fps: int = 25, size: tuple[int, int] = (640, 360),
                    live_grain: int = 20, photo_grain: int = 0, crf: int = 35) -> Path:
    """A zoom into the photograph by `zoom_per_frame` a frame (0.0002: 0.5 % a second), grain
    `photo_grain` on the photograph (static: it zooms with it) and `live_grain` added to every frame
    (temporal: sensor noise), x264 at `crf`. The picture moves in every frame: not a freeze."""
    w, h = size
    vf = [f"noise=alls={photo_grain}:allf=u"] if photo_grain else []
    # zoompan crops at whole pixels: on a 3x picture its steps are a third of an output pixel
    vf += [f"scale={3 * w}:{3 * h}", f"zoompan=z='1+{zoom_per_frame}*on':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d={frames}:s={w}x{h}:fps={fps}"]
    vf += [f"noise=alls={live_grain}:allf=t+u"] if live_grain else []
    _ffmpeg("-loop", "1", "-framerate", str(fps), "-i", str(PHOTO), "-vf", ",".join(vf + ["format=yuv420p"]), "-frames:v", str(frames),
            *_x264(crf), str(out))
    return out


def zoom_at_low_rate(out: Path, zoom_per_s: float = 0.0005, seconds: float = 6.0, capture_fps: float = 25 / 3, fps: int = 25,
                     size: tuple[int, int] = (640, 360), photo_grain: float = 8.0, q: int = 20, gop: int = 250, seed: int = 0) -> Path:
    """A slow zoom into the photograph (Gaussian grain `photo_grain` on it: its grain zooms with it),
    rendered exactly (bilinear, sub-pixel), captured at `capture_fps` and repeated to `fps` (a low-rate
    camera, a frame-rate conversion), coded as low-bitrate MPEG-2 (fixed quantiser `q`, no B-frames):
    the codec sends the move as one small step per captured frame and the repeats decode exactly
    alike. The picture moves all along: not a freeze."""
    import numpy as np
    from PIL import Image

    w, h = size
    img = np.asarray(Image.open(PHOTO).convert("RGB"), dtype=np.float32)
    img = img + np.random.default_rng(seed).normal(0.0, photo_grain, img.shape[:2])[..., None]
    base = min(img.shape[1] / (w + 2), img.shape[0] / (h + 2))  # photo pixels per output pixel at zoom 1
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = img.shape[1] / 2, img.shape[0] / 2
    proc = subprocess.Popen(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", f"{capture_fps:.6f}",
                             "-i", "-", "-vf", f"fps={fps}", "-frames:v", str(int(round(seconds * fps))), "-an", "-c:v", "mpeg2video",
                             "-q:v", str(q), "-bf", "0", "-g", str(gop), "-pix_fmt", "yuv420p", str(out)], stdin=subprocess.PIPE)
    for i in range(int(round(seconds * capture_fps)) + 1):
        z = (1.0 + zoom_per_s * i / capture_fps) / base
        sx, sy = cx + (xs - w / 2) / z, cy + (ys - h / 2) / z
        x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
        fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
        f = (img[y0, x0] * (1 - fx) + img[y0, x0 + 1] * fx) * (1 - fy) + (img[y0 + 1, x0] * (1 - fx) + img[y0 + 1, x0 + 1] * fx) * fy
        proc.stdin.write(f.clip(0, 255).astype(np.uint8).tobytes())
    proc.stdin.close()
    if proc.wait(timeout=180) != 0:
        raise RuntimeError("ffmpeg failed to encode the low-rate zoom")
    return out


def freeze_in(out: Path, src: Path = FILM, at: int = 40, hold: int = 75, live_noise: int = 0, crf: int = 28, gop: int | None = None) -> dict:
    """`src` with its frame `at - 1` held for `hold` more frames before frame `at` follows; `live_noise`
    (temporal) over the whole result. Truth: the held picture is frames at-1 .. at-1+hold."""
    fc = (f"[0:v]split[a][b];[a]trim=end_frame={at},tpad=stop_mode=clone:stop={hold}[a1];"
          f"[b]trim=start_frame={at},setpts=PTS-STARTPTS[b1];[a1][b1]concat=n=2:v=1")
    if live_noise:
        fc += f",noise=alls={live_noise}:allf=t+u"
    _ffmpeg("-i", str(src), "-filter_complex", fc, *_x264(crf, gop), str(out))
    return {"first": at - 1, "last": at - 1 + hold}


def colour_step(out: Path, src: Path, colour: str, at: int, fps: float = 10, start_s: float = 0.0, dur_s: float = 2.8,
                size: tuple[int, int] = (480, 270), crf: int = 30) -> int:
    """`src` from `start_s` for `dur_s`, resampled to `fps`, with the ffmpeg colour filter `colour`
    applied from frame `at` on: a hard colour change. Returns the cut frame (`at`)."""
    w, h = size
    fc = (f"[0:v]fps={fps},scale={w}:{h},format=yuv420p,split[a][b];[a]trim=end_frame={at}[a1];"
          f"[b]trim=start_frame={at},setpts=PTS-STARTPTS,{colour}[b1];[a1][b1]concat=n=2:v=1")
    _ffmpeg("-ss", str(start_s), "-t", str(dur_s), "-i", str(src), "-filter_complex", fc, *_x264(crf), str(out))
    return at


def _piece(i: int, start_s: float, dur_s: float, fps: float, size: tuple[int, int], label: str) -> str:
    w, h = size
    return (f"[{i}:v]trim={start_s}:{start_s + dur_s},setpts=PTS-STARTPTS,fps={fps},scale={w}:{h},format=yuv420p,"
            f"settb=AVTB[{label}]")


def cut_between(out: Path, a: Path, b: Path, fps: float = 10, a_span: tuple[float, float] = (0.2, 2.8),
                b_span: tuple[float, float] = (0.0, 2.0), size: tuple[int, int] = (480, 270), crf: int = 30) -> int:
    """`a` (from a_span[0], a_span[1] seconds) then `b`, both at `fps`. Returns the cut frame."""
    fc = f"{_piece(0, *a_span, fps, size, 'a')};{_piece(1, *b_span, fps, size, 'b')};[a][b]concat=n=2:v=1"
    _ffmpeg("-i", str(a), "-i", str(b), "-filter_complex", fc, *_x264(crf), str(out))
    return int(round(a_span[1] * fps))


def dissolve_between(out: Path, a: Path, b: Path, fps: float = 10, dur_s: float = 1.0, offset_s: float = 2.0,
                     a_span: tuple[float, float] = (0.2, 3.0), b_span: tuple[float, float] = (0.0, 2.9),
                     size: tuple[int, int] = (480, 270), crf: int = 30) -> tuple[int, int]:
    """`a` cross-dissolving into `b` (`xfade=fade`) from `offset_s` for `dur_s`, at `fps`. Returns the
    first and last frame that blend the two (strictly between the pure pictures)."""
    fc = (f"{_piece(0, *a_span, fps, size, 'a')};{_piece(1, *b_span, fps, size, 'b')};"
          f"[a][b]xfade=transition=fade:duration={dur_s}:offset={offset_s}")
    _ffmpeg("-i", str(a), "-i", str(b), "-filter_complex", fc, *_x264(crf), str(out))
    return math.floor(offset_s * fps + 1e-9) + 1, math.ceil((offset_s + dur_s) * fps - 1e-9) - 1


def freezedetect_count(path: Path) -> int:
    """Freezes ffmpeg's freezedetect reports at its defaults (noise -60 dB, duration 2 s)."""
    err = subprocess.run(["ffmpeg", "-hide_banner", "-i", str(path), "-vf", "freezedetect", "-an", "-f", "null", "-"],
                         capture_output=True, text=True, timeout=180).stderr
    return err.count("freeze_start")


def whip_pan_over_photo(out: Path, fps: float = 10, seconds: float = 3.0, whip_at_s: float = 1.23, whip_s: float = 0.1,
                        whip_w: float = 0.3, drift_w: float = 0.08, shake: float = 2.0, shutter: float = 0.3, cut_at: int | None = None,
                        jump_w: float = 1.5, size: tuple[int, int] = (320, 180), grain: float = 6.0, crf: int = 28, seed: int = 0) -> dict:
    """A camera panning across the photograph (1.5x, 1440x810) through a `size` window at `fps`:
    a drift of `drift_w` window widths a second, a vertical hand shake of `shake` pixels, and a whip
    of `whip_w` widths in `whip_s` seconds from `whip_at_s` (cosine ease). Each frame averages 8
    renders over `shutter` of the frame interval (motion blur), plus Gaussian grain, x264 at `crf`.
    With `cut_at`, the frames from `cut_at` on show the photograph `jump_w` widths further on (same
    row, same palette): a cut there. Truth: {"whip": (first, last frame the whip moves), "cut": cut_at}."""
    import numpy as np
    from PIL import Image

    w, h = size
    pic = Image.open(PHOTO).convert("RGB")
    img = np.asarray(pic.resize((pic.width * 3 // 2, pic.height * 3 // 2), Image.BICUBIC), dtype=np.float32)
    H, W = img.shape[:2]
    rng = np.random.default_rng(seed)

    def pos(t: float, jump: bool) -> tuple[float, float]:
        u = min(1.0, max(0.0, (t - whip_at_s) / whip_s))
        x = 0.15 * W + drift_w * w * t + whip_w * w * 0.5 * (1 - math.cos(math.pi * u)) + (jump_w * w if jump else 0.0)
        y = 0.35 * (H - h) + shake * (math.sin(7.3 * t) + math.sin(3.1 * t + 1))
        return x % (W - w - 2), y

    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    n = int(round(seconds * fps))
    proc = subprocess.Popen(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "-",
                             *_x264(crf), str(out)], stdin=subprocess.PIPE)
    for i in range(n):
        acc = np.zeros((h, w, 3), np.float32)
        for s in range(8):
            x, y = pos((i + shutter * s / 8) / fps, cut_at is not None and i >= cut_at)
            sx, sy = xs + x, ys + y
            x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
            fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
            acc += (img[y0, x0] * (1 - fx) + img[y0, x0 + 1] * fx) * (1 - fy) + (img[y0 + 1, x0] * (1 - fx) + img[y0 + 1, x0 + 1] * fx) * fy
        frame = acc / 8 + rng.normal(0.0, grain, (h, w))[..., None]
        proc.stdin.write(frame.clip(0, 255).astype(np.uint8).tobytes())
    proc.stdin.close()
    if proc.wait(timeout=180) != 0:
        raise RuntimeError("ffmpeg failed to encode the whip pan")
    first = int(math.floor(whip_at_s * fps))  # the last frame exposed before the whip starts moves into it
    return {"whip": (first, int(math.ceil((whip_at_s + whip_s) * fps))), "cut": cut_at}
