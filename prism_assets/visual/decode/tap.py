"""The proxy's picture from the visual pass's own decode: each decoded frame is also scaled to the proxy's size in the
decode lane that decoded it (libswscale, the proxy's scaler, yuv420p), and the consumer, which sees the frames in
order, writes them to one ffmpeg encoding raw video from its stdin with the proxy's x264 settings
(core/proxy_spec.py). The `proxy` asset then adds the title's sound (index/proxy.py `mux_command`). The master is
decoded once for both (results/proxy_tap.json: at 1080p24 the proxy's own pass cost 25.7 CPU-s per 2 min of title,
the tap 13.5).

The frames are put on the proxy's constant frame rate as ffmpeg's `fps` filter samples them: output slot n shows the
latest frame at or before n / rate, so a faster source loses frames (50/60 fps -> 25/30) and a gap repeats the frame
before it (variable frame rate); nothing past the title's duration.

Sources the lanes do not show as the proxy must look are left to the proxy's own pass (`unsupported`): tone-mapped
HDR, rotated, deinterlaced or inverse-telecined titles, and a title whose frames turn out interlaced on the way. A tap
that fails (the encoder exits, a frame that cannot be scaled) stops quietly: the visual pass never fails for it, and
the proxy asset makes the proxy itself.
"""

from __future__ import annotations

import math
import queue
import subprocess
import threading
import time
from fractions import Fraction
from pathlib import Path

from ...core.proxy_spec import ProxyConfig, ffmpeg_info, proxy_size, x264_args

FILE = "proxy_video.mp4"
INFO = "proxy_video.json"  # what the tap did (`ProxyTap.finish`), beside the picture in the frame_samples bundle
# AVColorPrimaries / AVColorTransferCharacteristic / AVColorSpace -> ffmpeg's option names (SDR ones; HDR never taps)
_PRIMARIES = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020"}
_TRC = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12"}
_MATRIX = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020nc"}
QUEUE_FRAMES = 48  # pictures between the consumer and the encoder's stdin (~16 MB at 640x360): the consumer never waits on a pipe
STALL_S = 300.0  # an encoder that takes no picture for this long is stopped (the pass goes on; the proxy asset makes its own)
FLUSH_S = 300.0  # at most this long for the encoder to finish once its input is closed


class ProxyTap:
    def __init__(self, cfg: ProxyConfig, rate: Fraction, out: Path, duration_s: float | None = None, timeout_s: float = 120.0):
        self.cfg, self.rate, self.out, self.duration_s, self.timeout_s = cfg, Fraction(rate), Path(out), duration_s, timeout_s
        self.size: tuple[int, int] | None = None
        self.proc: subprocess.Popen | None = None
        self.error: str | None = None  # why the tap stopped (None: it did not)
        self.skipped: str | None = None  # why it never started
        self.frames = self.written = self.dropped = self.repeated = 0
        self._next = 0  # the next output slot
        self._pend: tuple[int, bytes] | None = None  # the last frame fed and its slot, written once the next one comes
        self._cap = math.ceil(float(duration_s) * self.rate - 1e-6) if duration_s else None  # slots of the title's duration
        self._lock = threading.Lock()
        self._q: queue.Queue | None = None
        self._writer: threading.Thread | None = None
        self._log = None
        self._t0 = 0.0
        self.finished = False

    @property
    def active(self) -> bool:
        return self.proc is not None and self.error is None

    # -- start
    @staticmethod
    def unsupported(tonemapped: bool, scan_filtered: bool, rotation: int) -> str | None:
        if tonemapped:
            return "HDR source (the proxy's own pass tone-maps it)"
        if scan_filtered:
            return "interlaced or telecined source (the proxy's own pass deinterlaces it)"
        if rotation % 360:
            return f"rotated source ({rotation} degrees)"
        return None

    def start(self, width: int, height: int, sar, colour: dict | None = None) -> None:
        """Start the encoder for source pictures of `width` x `height` with sample aspect ratio `sar`; `colour` (the
        stream's primaries / trc / colorspace / color_range codes) tags the output as the source is tagged."""
        exe, _, _ = ffmpeg_info()
        w, h = self.size = proxy_size(width, height, sar, self.cfg.max_side)
        r = self.rate
        cmd = [exe, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p",
               "-s", f"{w}x{h}", "-framerate", f"{r.numerator}/{r.denominator}", "-i", "pipe:0", "-map", "0:v", *x264_args(self.cfg, r)]
        c = colour or {}
        for opt, table, key in (("-color_primaries", _PRIMARIES, "primaries"), ("-color_trc", _TRC, "trc"), ("-colorspace", _MATRIX, "matrix")):
            if c.get(key) in table:
                cmd += [opt, table[c[key]]]
        if c.get("range") in (1, 2):
            cmd += ["-color_range", "tv" if c["range"] == 1 else "pc"]
        cmd += ["-an", "-map_metadata", "-1", "-movflags", "+faststart", "-f", "mp4", str(self.out)]
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.out.with_suffix(".log"), "wb")  # noqa: SIM115  (closed in finish/abort)
        self._t0 = time.monotonic()
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log)
        except OSError as exc:
            self._stop(f"cannot start ffmpeg: {exc}")
            return
        self._start_writer()

    def _start_writer(self) -> None:
        """The thread that feeds the encoder's stdin from a bounded queue: the consumer only ever waits on the queue,
        with a timeout (`STALL_S`), so an encoder that hangs without exiting cannot hang the pass."""
        self._q = queue.Queue(maxsize=QUEUE_FRAMES)

        def drain():
            while True:
                data = self._q.get()
                if data is None:
                    return
                try:
                    self.proc.stdin.write(data)
                except (BrokenPipeError, OSError, ValueError):
                    if self.error is None:
                        self._stop(f"the encoder exited: {self._tail()}")
                    return

        self._writer = threading.Thread(target=drain, name="prism-proxy-tap", daemon=True)
        self._writer.start()

    def _close_writer(self) -> bool:
        """Let the writer put everything queued into the encoder and end; False when it could not within STALL_S."""
        try:
            self._q.put(None, timeout=STALL_S)
        except queue.Full:
            return False
        self._writer.join(timeout=STALL_S)
        return not self._writer.is_alive()

    # -- in the lanes
    def picture(self, fmt, frame) -> bytes | None:
        """The frame at the proxy's size as packed yuv420p bytes (in a lane: libswscale releases the GIL); None once
        the tap has stopped. A frame flagged interlaced stops it (the proxy's own pass deinterlaces)."""
        if not self.active:
            return None
        if frame.interlaced_frame:
            self._stop("interlaced frames (the proxy's own pass deinterlaces them)")
            return None
        from av.video.reformatter import Interpolation

        try:
            small = fmt.reformat(frame, self.size[0], self.size[1], "yuv420p", interpolation=getattr(Interpolation, self.cfg.scaler.upper()))
            return small.to_ndarray().tobytes()
        except Exception as exc:  # noqa: BLE001  (the tap never fails the pass)
            self._stop(f"cannot scale a frame: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            return None

    # -- in the consumer, frames in order
    def feed(self, t_s: float, data: bytes | None) -> None:
        """The next frame (presentation order) at `t_s`. Output slot n shows the latest frame at or before n / rate, as
        ffmpeg's `fps` filter samples: a frame waits until the next one says how many slots it covers."""
        if data is None or not self.active:
            return
        self.frames += 1
        pend = self._pend
        slot = math.ceil(t_s * self.rate - 1e-6) if math.isfinite(t_s) else (pend[0] + 1 if pend else self._next)
        if self._cap is not None and slot >= self._cap:  # past the title's duration
            self.dropped += 1
            return
        if pend is not None:
            if slot <= pend[0]:  # a later frame for the same slot replaces it (a rate above the proxy's)
                self.dropped += 1
                self._pend = (pend[0], data)
                return
            self._emit(pend[1], slot)
        self._pend = (slot, data)

    def _emit(self, data: bytes, upto: int) -> None:
        """`data` in every slot up to `upto` (the first slots too, before the first frame); beyond one slot: repeats."""
        first = True
        while self._next < upto and self.active:
            self._write(data)
            self.repeated += 0 if first else 1
            first = False

    def _write(self, data: bytes) -> None:
        if not self.active:
            return
        try:
            self._q.put(data, timeout=STALL_S)
        except queue.Full:
            self._stop(f"the encoder took no picture for {STALL_S:.0f} s")
            return
        self._next += 1
        self.written += 1

    # -- end
    def finish(self) -> dict:
        """Close the encoder's input and wait for it; what the tap did (`file` only when the picture is complete)."""
        self.finished, ok = True, False
        if self.proc is not None:
            if self.active and self._pend is not None:  # the last frame covers its own slot
                self._emit(self._pend[1], self._pend[0] + 1)
            if self.active and not self._close_writer():
                self._stop(f"the encoder took no picture for {STALL_S:.0f} s")
            if self.active:
                flush = min(self.timeout_s, FLUSH_S)
                try:
                    self.proc.stdin.close()
                    rc = self.proc.wait(timeout=flush)
                    ok = rc == 0 and self.written > 0 and self.out.exists() and self.error is None
                    if not ok:
                        self._stop(f"the encoder failed (exit {rc}): {self._tail()}" if self.written else "no frame reached the encoder")
                except (subprocess.TimeoutExpired, OSError, ValueError) as exc:
                    self._stop(f"the encoder did not finish within {flush:.0f} s" if isinstance(exc, subprocess.TimeoutExpired)
                               else f"the encoder exited: {self._tail()}")
            else:
                self._kill()
        self._close_log()
        return {"file": self.out.name if ok else None, "error": self.error, "skipped": self.skipped,
                "size": list(self.size) if self.size else None, "rate": f"{self.rate.numerator}/{self.rate.denominator}",
                "frames_in": self.frames, "frames_written": self.written, "dropped": self.dropped, "repeated": self.repeated,
                "seconds": round(time.monotonic() - self._t0, 2) if self._t0 else None, "encoder": self.cfg.encoder()}

    def abort(self) -> None:
        self.finished = True
        self._stop("the visual pass stopped")
        self._close_log()

    def _stop(self, why: str) -> None:
        with self._lock:
            if self.error is None:
                self.error = why
        self._kill()

    def _kill(self) -> None:
        """Kill first, then close its stdin: a writer blocked on the full pipe gets EPIPE and lets go of the stream (closing
        the stream first would wait on the writer's lock while the writer waits on the encoder)."""
        p = self.proc
        if p is not None:
            if p.poll() is None:
                try:
                    p.kill()
                    p.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            try:
                p.stdin.close()
            except (OSError, ValueError):
                pass
        self.out.unlink(missing_ok=True)

    def _tail(self) -> str:
        try:
            lines = [ln for ln in self.out.with_suffix(".log").read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            lines = []
        return lines[-1][:200] if lines else "no message"

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
