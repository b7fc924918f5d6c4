"""Decode lanes: closed GOPs decoded side by side, each lane with its own demuxer and decoder,
claiming the next GOP when free; what is decided inside a GOP is computed in the lane."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

import numpy as np

from .bitstream import MIN_GOP
from .pictures import fit
from .scan import ScanFilter
from .stats import batch_stats, colour_bars_score

if TYPE_CHECKING:
    from .context import PassContext



class Stop(Exception):
    pass


class LaneShared:
    """What the lanes and the consumer share. GOPs are claimed in order by whichever lane is free (GOPs
    differ in decode cost; a fixed round robin leaves one lane idle behind a heavy GOP of the other),
    at most `ahead` GOPs past the one being consumed; `owner` says which lane decodes which GOP. Also
    the stop flag and the poster pool's admission bar (a lane hands over a candidate frame only when
    it could enter the pool)."""

    def __init__(self, lanes: int):
        import threading

        self.lanes = lanes
        self.ahead = 2 * lanes
        self.consuming = 0
        self.next_gop = 0
        self.owner: dict[int, int] = {}
        self.total: int | None = None  # GOPs in the stream, once a lane has read it to the end
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.pool_bar = -math.inf  # -inf while the pool is not full; its lowest score after (non-decreasing)

    def _wait(self, ready: Callable[[], bool]) -> None:
        while not ready():
            if self.stop.is_set():
                raise Stop
            self.cond.wait(0.2)
        if self.stop.is_set():
            raise Stop

    def claim(self, lane: int) -> int:
        """The next unclaimed GOP for `lane` (blocks while it would run too far ahead)."""
        with self.cond:
            self._wait(lambda: self.next_gop < self.consuming + self.ahead or self.total is not None)
            g = self.next_gop
            self.next_gop += 1
            self.owner[g] = lane
            self.cond.notify_all()
            return g

    def end_of_stream(self, gops: int) -> None:
        with self.cond:
            self.total = gops
            self.cond.notify_all()

    def owner_of(self, gop: int) -> int | None:
        """The lane decoding `gop` (set by the consumer as the GOP being consumed); None past the end."""
        with self.cond:
            self.consuming = gop
            self.cond.notify_all()
            self._wait(lambda: gop in self.owner or (self.total is not None and gop >= self.total))
            return self.owner.get(gop) if self.total is None or gop < self.total else None


class Gop:
    """Per-GOP state of a lane: everything that is decided frame by frame inside one GOP."""

    def __init__(self, gop: int, base: int, prev_t: float | None):
        self.gop, self.base, self.prev_t = gop, base, prev_t
        self.n = 0  # frames decoded so far in this GOP
        self.batch: list = []
        self.prev_luma = self.prev_hist = None
        self.bars_score = None
        self.win: dict | None = None
        self.segment = 0
        self.truncated = False
        self.cands: list = []  # poster candidates of windows closed since the last message


class Lane:
    """One decoder (own container, own demuxer) that decodes the closed GOPs it claims and, for their
    frames, makes the analysis pictures, the per-frame statistics, the sample and keyframe decisions
    (pictures go to the shared writer) and the poster candidates. Everything goes to the consumer
    through a bounded queue, per GOP, in frame order. The other GOPs' packets are read and skipped
    (demuxing costs next to nothing), so every lane sees the same packet sequence and GOP numbers.

    Messages: ("batch", ...) items (with the proxy's pictures of the batch's frames when the pass taps one), ("end", gop, truncated, poster candidates) after each of its
    GOPs, ("done", gops) at the end of the stream; an exception is forwarded and re-raised by the
    consumer."""

    END = "end"

    def __init__(self, k: int, ctx: "PassContext", container, threads: int):
        import queue
        import threading

        self.k, self.ctx, self.container = k, ctx, container
        self.stream = container.streams.video[ctx.stream_pos]
        self.stream.thread_type = "FRAME"  # frame threads within a lane (FFmpeg falls back where unsupported)
        self.stream.thread_count = threads
        self.q: "queue.Queue" = queue.Queue(maxsize=max(4, ctx.lane_frames_ahead // ctx.batch_frames + 2))
        self.decode_errors = 0
        self.error_times: list[float] = []
        from av.video.reformatter import VideoReformatter

        self.small = VideoReformatter()  # analysis pictures
        self.pool_fmt = VideoReformatter()  # poster candidates above poster_max_side
        self.tap_fmt = VideoReformatter() if ctx.tap is not None else None  # the proxy's pictures (tap.py)
        self.scan = ScanFilter(self.stream, ctx.scan_chain) if ctx.scan_chain else None  # deinterlace / inverse telecine
        self.thread = threading.Thread(target=self._run, name=f"prism-decode-{k}", daemon=True)

    # -- plumbing
    def _put(self, item) -> None:
        import queue

        while True:
            if self.ctx.shared.stop.is_set():
                raise Stop
            try:
                self.q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def get(self):
        import queue

        while True:
            try:
                item = self.q.get(timeout=0.5)
            except queue.Empty:
                if not self.thread.is_alive() and self.q.empty():
                    raise RuntimeError(f"decode lane {self.k} ended without a word") from None
                continue
            if isinstance(item, BaseException):
                raise item
            return item

    def drain(self) -> None:
        import queue

        while True:
            try:
                self.q.get_nowait()
            except queue.Empty:
                return

    # -- the lane
    def _run(self) -> None:
        try:
            self._lane()
        except Stop:
            return
        except BaseException as exc:  # surfaced in the consumer
            try:
                self._put(exc)
            except Stop:
                pass
        finally:
            self._release()

    def _release(self) -> None:
        """Park the decoder's frame threads and close the lane's container here, in the thread that
        fed the decoder. Stopped mid-GOP (an early stop, a failure, the end of the title reached by
        another lane), a frame-threaded decoder still has frames in flight; freed later from
        another thread, FFmpeg waited on them forever (seen: the main thread in
        avcodec_free_context after `max_seconds`, once in a CI run)."""
        try:
            self.stream.codec_context.flush_buffers()
        except Exception:  # noqa: BLE001 - a decoder that cannot flush is closed below all the same
            pass
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - closed again (a no-op) by the pass
            pass

    def _lane(self) -> None:
        import av

        ctx, k = self.ctx, self.k
        cc = self.stream.codec_context
        tb = self.stream.time_base
        packets = self.container.demux(self.stream)
        gop, n_packets, last_t, gop_start_at = -1, 0, None, 0
        target = ctx.shared.claim(k)
        gop_max_t = None
        st: Gop | None = None
        while True:
            if ctx.shared.stop.is_set():
                raise Stop
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError:
                if k == 0:  # every lane reads the same packets: lane 0 counts demux errors
                    self.decode_errors += 1
                continue
            if packet.size == 0:  # the demuxer's end-of-stream flush packet: drained below
                continue
            # GOPs split the same way whatever the number of lanes (the outputs do not depend on it); at
            # least MIN_GOP packets each, so intra-only streams are not split frame by frame
            if gop < 0 or (ctx.gop_start is not None and n_packets - gop_start_at >= MIN_GOP and ctx.gop_start(packet)):
                if st is not None:
                    self._finish(st, cc)
                    st = None
                    target = ctx.shared.claim(k)
                gop += 1
                gop_start_at = n_packets
                last_t, gop_max_t = gop_max_t, None
                if gop == target:
                    st = Gop(gop, n_packets, last_t)
            n_packets += 1
            if packet.pts is not None and tb:
                t = float(packet.pts * tb)
                gop_max_t = t if gop_max_t is None else max(gop_max_t, t)
            if st is None or st.truncated:
                continue
            try:
                frames = cc.decode(packet)
            except av.error.FFmpegError:
                self.decode_errors += 1
                if packet.pts is not None and tb:
                    self.error_times.append(float(packet.pts * tb))
                continue
            for frame in frames if self.scan is None else [o for f in frames for o in self.scan.push(f)]:
                self._frame(st, frame)
        if st is not None:
            self._finish(st, cc)
        ctx.shared.end_of_stream(gop + 1)
        self._put(("done", gop + 1))

    def _finish(self, st: Gop, cc) -> None:
        """Drain the decoder (its delayed frames belong to this GOP), analyse the rest, end the GOP."""
        import av

        if not st.truncated:
            try:
                for frame in cc.decode(None):
                    for out in [frame] if self.scan is None else self.scan.push(frame):
                        self._frame(st, out)
            except av.error.FFmpegError:
                self.decode_errors += 1
            if self.scan is not None:  # the frames the filters still hold (one GOP: the end of the stream)
                for frame in self.scan.flush():
                    self._frame(st, frame)
        try:
            cc.flush_buffers()
        except Exception:  # pragma: no cover - a decoder that cannot flush decodes nothing more anyway
            pass
        if st.batch:
            self._analyse(st)
        self._close_window(st)
        cands, st.cands = st.cands, []
        self._put((self.END, st.gop, st.truncated, cands))

    def _frame(self, st: Gop, frame) -> None:
        if st.truncated:
            return
        ctx = self.ctx
        pts, tb = frame.pts, self.stream.time_base
        t_s = float(pts * tb) if pts is not None and tb else (st.base + st.n + len(st.batch)) / ctx.fps
        if ctx.cfg.max_seconds is not None and t_s >= ctx.cfg.max_seconds:
            st.truncated = True
            return
        st.batch.append((frame, t_s, ctx.prepare(self.small, frame), ctx.tap.picture(self.tap_fmt, frame) if ctx.tap is not None else None))
        if len(st.batch) >= ctx.batch_frames:
            self._analyse(st)

    def _analyse(self, st: Gop) -> None:
        """Statistics, samples, keyframe windows and poster candidates for a batch of this GOP."""
        ctx, cfg = self.ctx, self.ctx.cfg
        batch, st.batch = st.batch, []
        nb = len(batch)
        y8 = np.stack([e[2][0] for e in batch])
        u8 = np.stack([e[2][1] for e in batch])
        v8 = np.stack([e[2][2] for e in batch])
        cols, lum, hist = batch_stats(y8, u8, v8, st.prev_luma, st.prev_hist, ctx.th)
        st.prev_luma, st.prev_hist = lum[-1], hist[-1]
        sat, dif, hdf = cols["saturation"].tolist(), cols["diff"].tolist(), cols["hist_diff"].tolist()
        first = st.n  # GOP-local index of the batch's first frame
        cbars = []
        for j in range(nb):  # colour bars are saturated and last seconds: tested every few frames, at cut candidates and GOP starts
            if sat[j] <= 0.12:
                st.bars_score = 0.0
            elif (st.base + first + j) % cfg.colour_bars_every == 0 or st.bars_score is None or dif[j] >= cfg.cut_candidate_diff:
                st.bars_score = colour_bars_score(lum[j].reshape(y8.shape[1:]), u8[j], v8[j])
            cbars.append(st.bars_score)
        frames = [e[0] for e in batch]
        t_list = [e[1] for e in batch]
        sharp, colf, expo = cols["sharpness"].tolist(), cols["colorfulness"].tolist(), cols["exposure"].tolist()
        black = cols["black_ratio"].tolist()
        bar_v = (cols["bar_top"] + cols["bar_bottom"]).tolist()
        bar_h = (cols["bar_left"] + cols["bar_right"]).tolist()
        g = ctx.geom
        src_w, src_h, rotation = g["src_w"], g["src_h"], g["rotation"]
        fs = cfg.sample_fps
        for j, frame in enumerate(frames):
            i, t_s = first + j, t_list[j]
            # embedding samples on a fixed time grid: the first frame at or past each multiple of 1/sample_fps
            prev_t = st.prev_t if st.prev_t is not None else (t_s - 1.0 / ctx.fps if st.gop > 0 else None)
            if prev_t is None or math.floor(t_s * fs + 1e-6) > math.floor(prev_t * fs + 1e-6):
                sz = cfg.sample_size
                dw, dh = (src_h, src_w) if rotation % 180 else (src_w, src_h)
                sw, sh = (sz, max(sz, int(round(dh * sz / dw)))) if dw <= dh else (max(sz, int(round(dw * sz / dh))), sz)
                if rotation % 180:
                    sw, sh = sh, sw
                ctx.writer.submit("samples", ctx.rgb_maker(frame, sw, sh, "BICUBIC", crop=sz),
                                  {"kind": "sample", "gop": st.gop, "local": i, "t_s": t_s, "window": None, "sharpness": sharp[j],
                                   "colorfulness": colf[j], "saturation": sat[j], "exposure": expo[j]})
            st.prev_t = t_s
            # keyframe windows: break on time, cut candidates, black changes and GOP starts
            is_black = black[j] >= 0.98
            cut_like = dif[j] >= cfg.cut_candidate_diff or hdf[j] >= 0.35
            if cut_like or (st.win is not None and is_black != st.win["black"]):
                st.segment += 1
            if st.win is None or t_s - st.win["t0"] >= cfg.window_s or cut_like or is_black != st.win["black"]:
                self._close_window(st)
                st.win = {"t0": t_s, "black": is_black, "best": None, "score": -1.0, "id": i, "segment": st.segment}
            bars = max(bar_v[j], bar_h[j])
            quality = 0.0 if (is_black or cbars[j] >= 0.5) else (
                math.log1p(sharp[j]) * expo[j] * (1.0 + 0.01 * min(colf[j], 100.0)) * (1.0 - min(1.0, bars))
            )
            if quality > st.win["score"]:  # the window's best so far, with its parts
                st.win["score"] = quality
                st.win["best"] = (frame, i, t_s, {"sharpness": sharp[j], "colorfulness": colf[j], "saturation": sat[j], "exposure": expo[j],
                                                   "luma_mean": float(cols["luma_mean"][j]), "luma_std": float(cols["luma_std"][j]),
                                                   "bars": bars, "quality": quality})
        st.n += nb
        cands, st.cands = st.cands, []
        self._put(("batch", st.gop, first, nb, t_list,
                   [f.pts if f.pts is not None else math.nan for f in frames],  # never None in the row
                   [f.key_frame for f in frames], [ctx.interlaced_source or f.interlaced_frame for f in frames], [f.is_corrupt for f in frames],
                   cols, lum, hist, cbars, cands, [e[3] for e in batch]))

    def _close_window(self, st: Gop) -> None:
        ctx, cfg = self.ctx, self.ctx.cfg
        win, st.win = st.win, None
        if win is None or win["best"] is None:
            return
        frame, i, t_s, parts = win["best"]
        g = ctx.geom
        ctx.writer.submit("keyframes", ctx.rgb_maker(frame, *fit(g["src_w"], g["src_h"], cfg.keyframe_max_side), "AREA"),
                          {"kind": "keyframe", "gop": st.gop, "local": i, "t_s": t_s, "window_local": win["id"], **parts})
        score = parts["quality"]
        if score > 0 and cfg.poster_pool > 0 and score > ctx.shared.pool_bar:  # could enter the pool: hand the frame over
            kept = frame
            if max(g["src_w"], g["src_h"]) > cfg.poster_max_side:  # bound the pool's memory: keep it at the poster size
                from av.video.reformatter import Interpolation

                kept = self.pool_fmt.reformat(frame, *fit(g["src_w"], g["src_h"], cfg.poster_max_side), interpolation=Interpolation.AREA)
            st.cands.append((score, i, t_s, win["segment"], kept, parts))



def stop_lanes(ctx: "PassContext", lanes: list["Lane"]) -> None:
    """Stop every lane (end of the title, early stop or failure) and wait for it: a lane blocked on
    its queue or on a claim sees the stop flag within 0.2 s."""
    ctx.shared.stop.set()
    for lane in lanes:
        if lane.thread.ident is None:  # never started
            continue
        while lane.thread.is_alive():
            lane.drain()
            lane.thread.join(timeout=0.1)
        lane.drain()
