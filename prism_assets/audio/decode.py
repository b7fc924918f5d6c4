"""The one audio decode pass of a title (PyAV), feeding every audio consumer from one demux.

All audio streams are demuxed together and each packet is decoded once. Decoded frames are
normalized to float32 planar (same rate and layout) and gathered into ~1 s chunks; a chunk is
handed to each consumer and dropped, so memory is O(chunk), never O(title):

- window statistics: one row per `window_s` (10 ms) window: peak, RMS over all channels, digital
  zero (every sample exactly 0) -> `audio_stats`;
- EBU R128 meter at the native rate (`loudness.R128Meter`) -> integrated loudness, LRA, true
  peak, sample peak and the 400 ms block powers -> `audio_loudness`;
- speech signal: resampled ONCE by libswresample to 16 kHz mono (the downmix is swresample's
  default matrix, LFE dropped) and streamed to `speech_<track>.wav` (16-bit PCM) for the
  transcript step;
- channels (tracks of 2 or more channels, `channels.ChannelMeter`): per-channel levels, speech
  modulation, pair correlations, the LFE's share above 200 Hz and the stereo downmix's loudness
  -> the track's `channel_report` (silent / swapped channel QC in audio_analysis); at the end each
  multichannel track's downmix is compared with the title's stereo track (`downmix`);
- dialogue (tracks whose layout has a centre, `dialogue_source` auto or centre): the centre channel
  alone, resampled to 16 kHz mono beside the mix into `dialogue_<track>.wav`. At the end, `auto`
  keeps it when the channel report says the centre carries the dialogue (not silent, no other
  channel more speech-like), else drops it and the dialogue source is the mix; the transcript reads
  `dialogue_file`. Everything else (dub sync, fingerprints, diarization) reads the mix WAV.

The consumers that measure (statistics, R128, channels) run on one thread beside the decode (`_Analysis`, a bounded
FIFO of chunks, so in order and O(chunk) in memory; `analysis_thread: false` runs them inline): the decode and the
speech resampling keep one core, the meters take the other (benchmarks/results/audio_thread.json).

A layout the decoder does not name (unspecified order) is taken as ffmpeg's default for the channel
count (`loudness.layout_names`), said by `channel_layout_assumed`.

Times are seconds from the video's start: a track's `start_s` is its first decoded frame time
minus the video stream's start time (negative when audio starts before the picture, e.g. AAC
priming). Nothing here imports torch.
"""

from __future__ import annotations

import queue
import threading
import time
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..core.config import known_settings
from ..core.language import stream_language
from .channels import ChannelMeter, centre_is_dialogue, compare_downmix
from .loudness import R128Meter, channel_weights, layout_names

AUDIO_PASS_CODE_VERSION = "audio-pass-2"  # 2: channel report, downmix, dialogue (centre) WAV, dispositions
AUDIO_SCHEMA_VERSION = "1.0"
SPEECH_RATE = 16000
STATS_COLUMNS = {"track": "int32", "t_s": "float64", "dur_s": "float32", "peak": "float32", "rms": "float32", "digital_zero": "bool"}


class AudioDecodeError(RuntimeError):
    """The audio cannot be decoded at all; str() is one line."""


@dataclass(frozen=True)
class AudioPassConfig:
    window_s: float = 0.01  # audio_stats window
    chunk_s: float = 1.0  # decoded audio handed to the consumers at a time
    max_seconds: float | None = None  # stop after this much audio (benchmarks); None = whole title
    dialogue_source: str = "auto"  # auto (the centre when it carries the dialogue) | centre (whenever there is one) | mix
    analysis_thread: bool = True  # measure the chunks on a thread beside the decode (`_Analysis`); False: inline

    @classmethod
    def from_config(cls, cfg: dict | None) -> "AudioPassConfig":
        c = cls(**known_settings(cls, cfg, "audio.pass settings"))
        if c.dialogue_source not in ("auto", "centre", "mix"):
            raise ValueError(f"audio.pass dialogue_source {c.dialogue_source!r}: one of auto, centre, mix")
        return c


def dispositions(stream) -> list[str]:
    """The stream's container dispositions by name (default, comment, visual_impaired, ...)."""
    import av

    d = getattr(stream, "disposition", None)
    return [f.name for f in av.stream.Disposition if d is not None and f.value and (d & f) == f] if d is not None else []




_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}


def frame_to_float(frame) -> np.ndarray:
    """A decoded frame as float32 (channels, n), full scale 1.0, whatever its sample format
    (done in numpy: no filter graph per frame)."""
    a = frame.to_ndarray()
    ch = len(frame.layout.channels)
    fmt = frame.format
    name = fmt.name.rstrip("p")
    if not fmt.is_planar:
        a = a.reshape(-1, ch).T
    if name in ("flt", "dbl"):
        return a.astype(np.float32, copy=False)
    if name == "u8":
        return (a.astype(np.float32) - 128.0) / 128.0
    return (a.astype(np.float32) / np.float32(_SCALE[name])).astype(np.float32, copy=False)


class _Windows:
    """10 ms window statistics, streamed: boundaries at floor(k * rate * window_s) samples."""

    def __init__(self, rate: int, window_s: float):
        self.rate = rate
        self.per_s = round(1.0 / window_s)  # windows per second (100)
        self.window_s = window_s
        self.k = 0  # next window index
        self.n = 0  # samples consumed into complete windows
        self.buf_peak = np.zeros(0, np.float32)
        self.buf_sq = np.zeros(0, np.float32)
        self.out_k: list[np.ndarray] = []
        self.out_peak: list[np.ndarray] = []
        self.out_ms: list[np.ndarray] = []
        self.out_len: list[np.ndarray] = []

    def bound(self, k):
        return (np.asarray(k, dtype=np.int64) * self.rate) // self.per_s

    def feed(self, x: np.ndarray, final: bool = False) -> None:
        peak = np.abs(x).max(axis=0) if x.shape[1] else np.zeros(0, np.float32)
        sq = (x * x).mean(axis=0) if x.shape[1] else np.zeros(0, np.float32)
        peak = np.concatenate([self.buf_peak, peak])
        sq = np.concatenate([self.buf_sq, sq])
        avail_end = self.n + len(peak)
        # complete windows inside what is buffered
        k_last = int((avail_end * self.per_s) // self.rate)  # windows whose end <= avail_end
        while self.bound(k_last) > avail_end:
            k_last -= 1
        ks = np.arange(self.k, k_last)
        if final and self.bound(k_last) < avail_end:
            ks = np.arange(self.k, k_last + 1)
        if len(ks):
            starts = self.bound(ks) - self.n
            ends = np.minimum(self.bound(ks + 1), avail_end) - self.n
            lens = ends - starts
            self.out_k.append(ks)
            self.out_peak.append(np.maximum.reduceat(peak, starts) if len(peak) else np.zeros(len(ks), np.float32))
            self.out_ms.append(np.add.reduceat(sq.astype(np.float64), starts) / lens)
            self.out_len.append(lens)
            used = int(ends[-1])
            self.buf_peak, self.buf_sq = peak[used:], sq[used:]
            self.n += used
            self.k = int(ks[-1]) + 1
        else:
            self.buf_peak, self.buf_sq = peak, sq

    def frame(self, track: int, start_s: float) -> pd.DataFrame:
        if not self.out_k:
            return _empty_stats()
        k = np.concatenate(self.out_k)
        lens = np.concatenate(self.out_len)
        peak = np.concatenate(self.out_peak).astype(np.float32)
        return pd.DataFrame({
            "track": np.full(len(k), track, np.int32),
            "t_s": start_s + self.bound(k) / self.rate,
            "dur_s": (lens / self.rate).astype(np.float32),
            "peak": peak,
            "rms": np.sqrt(np.concatenate(self.out_ms)).astype(np.float32),
            "digital_zero": peak == 0,
        })


def _empty_stats() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in STATS_COLUMNS.items()})


@dataclass
class _Track:
    track: int
    stream: object
    out_dir: Path
    window_s: float
    info: dict = field(default_factory=dict)
    to_speech: object = None
    windows: _Windows | None = None
    meter: R128Meter | None = None
    wav: wave.Wave_write | None = None
    pending: list = field(default_factory=list)
    pending_n: int = 0
    start_time: float | None = None
    samples: int = 0
    speech_samples: int = 0
    rate: int = 0
    channels: int = 0
    names: list = field(default_factory=list)
    decode_errors: int = 0
    format_changes: int = 0
    dialogue_source: str = "auto"
    assumed: bool = False
    chan: ChannelMeter | None = None
    centre: int | None = None  # index of FC when a dialogue WAV is written
    to_dialogue: object = None
    dwav: wave.Wave_write | None = None
    dialogue_samples: int = 0
    analysis: "_Analysis | None" = None  # where the chunks are measured (a thread beside the decode); None: inline

    def _open_wav(self, name: str) -> wave.Wave_write:
        w = wave.open(str(self.out_dir / name), "wb")
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SPEECH_RATE)
        return w

    def open(self, frame) -> None:
        import av

        self.rate = int(frame.sample_rate)
        self.channels = len(frame.layout.channels)
        self.names, self.assumed = layout_names([c.name for c in frame.layout.channels], self.channels)
        self.to_speech = av.AudioResampler(format="flt", layout="mono", rate=SPEECH_RATE)
        self.windows = _Windows(self.rate, self.window_s)
        self.meter = R128Meter(self.rate, channel_weights(self.names))
        self.chan = ChannelMeter(self.rate, self.names) if self.channels >= 2 else None
        self.wav = self._open_wav(f"speech_{self.track}.wav")
        self.info["speech_file"] = f"speech_{self.track}.wav"
        if self.dialogue_source != "mix" and self.channels > 2 and "FC" in self.names:
            self.centre = self.names.index("FC")
            self.to_dialogue = av.AudioResampler(format="flt", layout="mono", rate=SPEECH_RATE)
            self.dwav = self._open_wav(f"dialogue_{self.track}.wav")

    @staticmethod
    def _pcm16(frames) -> tuple[bytes, int]:
        a = np.concatenate([f.to_ndarray().reshape(-1) for f in frames]) if frames else np.zeros(0, np.float32)
        return (np.clip(a, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes(), len(a)

    def _write_speech(self, frames) -> None:
        data, n = self._pcm16(frames)
        self.wav.writeframesraw(data)  # the header's sizes are written once, at close
        self.speech_samples += n

    def _write_dialogue(self, centre: np.ndarray | None) -> None:
        import av

        if centre is None:
            frames = self.to_dialogue.resample(None)
        else:
            f = av.AudioFrame.from_ndarray(np.ascontiguousarray(centre[None, :], dtype=np.float32), format="fltp", layout="mono")
            f.sample_rate = self.rate
            frames = self.to_dialogue.resample(f)
        data, n = self._pcm16(frames)
        self.dwav.writeframesraw(data)
        self.dialogue_samples += n

    def add(self, frame, chunk_samples: int) -> None:
        if self.windows is None:
            self.open(frame)
        if self.start_time is None and frame.time is not None:
            self.start_time = float(frame.time)
        self._write_speech(self.to_speech.resample(frame))
        if int(frame.sample_rate) != self.rate or len(frame.layout.channels) != self.channels:
            self.format_changes += 1  # mid-stream change: not measurable as one signal; skip the frame
            return
        a = frame_to_float(frame)  # (channels, n) float32
        if self.dwav is not None:
            self._write_dialogue(a[self.centre])
        self.pending.append(a)
        self.pending_n += a.shape[1]
        if self.pending_n >= chunk_samples:
            self.flush()

    def _measure(self, x: np.ndarray) -> None:
        self.windows.feed(x)
        self.meter.feed(x)
        if self.chan is not None:
            self.chan.feed(x)

    def _run(self, fn, *args) -> None:
        if self.analysis is not None:
            self.analysis.submit(fn, *args)
        else:
            fn(*args)

    def flush(self, final: bool = False) -> None:
        if self.pending:
            x = np.concatenate(self.pending, axis=1) if len(self.pending) > 1 else self.pending[0]
            self.pending, self.pending_n = [], 0
            self.samples += x.shape[1]
            self._run(self._measure, x)
        if final and self.windows is not None:
            self._run(self.windows.feed, np.zeros((self.channels, 0), np.float32), True)

    def close(self) -> None:
        """After `flush(final=True)` and the analysis has drained (the meters' results are read here)."""
        if self.windows is None:
            return
        self._write_speech(self.to_speech.resample(None))
        self.wav.close()
        report = self.chan.report() if self.chan is not None else None
        self.info.update(channel_report=report, channel_layout_assumed=self.assumed, dialogue_source="mix",
                         dialogue_file=f"speech_{self.track}.wav")
        if self.dwav is not None:
            self._write_dialogue(None)
            self.dwav.close()
            if self.dialogue_source == "centre" or centre_is_dialogue(report):
                self.info.update(dialogue_source="centre", dialogue_file=f"dialogue_{self.track}.wav", dialogue_samples=self.dialogue_samples)
            else:
                (self.out_dir / f"dialogue_{self.track}.wav").unlink(missing_ok=True)


class _Analysis:
    """The meters (window statistics, R128, channels) on one thread beside the decode: chunks go through a bounded
    FIFO, so they are measured in order, at most `depth` chunks behind (memory stays O(chunk)). numpy and scipy's
    filters release the GIL, so the decode, the speech resampling and the measuring share the cores; on one core it
    costs a thread switch per chunk. An error in the thread is raised in the decoding thread at its next chunk or at
    `close`."""

    def __init__(self, depth: int = 4):
        self.q: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._work, name="prism-audio-analysis", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        while (item := self.q.get()) is not None:
            if self.error is None:
                try:
                    item[0](*item[1])
                except BaseException as exc:  # noqa: BLE001 - handed to the decoding thread
                    self.error = exc

    def submit(self, fn, *args) -> None:
        if self.error is not None:
            raise self.error
        self.q.put((fn, args))

    def close(self) -> None:
        """Wait until every chunk was measured; raise the thread's error if there was one."""
        self.q.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


@dataclass
class AudioPassResult:
    stats: pd.DataFrame
    loudness: pd.DataFrame
    tracks: list[dict]
    speech_files: dict[str, Path]
    meta: dict


def run_audio_pass(path: str | Path, workdir: str | Path, cfg: AudioPassConfig | None = None,
                   progress: Callable[[float], None] | None = None) -> AudioPassResult:
    """Decode every audio stream of `path` once; see the module docstring."""
    import av

    cfg = cfg or AudioPassConfig()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise AudioDecodeError(f"cannot open {Path(path).name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    with container:
        audios = list(container.streams.audio)
        video = container.streams.video[0] if container.streams.video else None
        if video is not None and video.start_time is not None:
            video_start = float(video.start_time * video.time_base)
        elif container.start_time is not None:
            video_start = container.start_time / 1e6
        else:
            video_start = 0.0
        tracks = [_Track(i, s, workdir, cfg.window_s, dialogue_source=cfg.dialogue_source) for i, s in enumerate(audios)]
        by_index = {s.index: t for s, t in zip(audios, tracks)}
        for t in tracks:
            s = t.stream
            cc = s.codec_context
            t.info = {"track": t.track, "stream_index": s.index, "codec": cc.name if cc else None,
                      "language_tag": stream_language(s), "title": (s.metadata or {}).get("title"),
                      "handler_name": (s.metadata or {}).get("handler_name"), "dispositions": dispositions(s)}
            s.thread_type = "AUTO"
        last_report = time.perf_counter()
        analysis = _Analysis() if cfg.analysis_thread and audios else None
        for t in tracks:
            t.analysis = analysis
        try:
            if audios:
                for packet in container.demux(audios):
                    t = by_index.get(packet.stream.index)
                    if t is None:
                        continue
                    try:
                        frames = packet.decode()
                    except av.FFmpegError:
                        t.decode_errors += 1
                        continue
                    for frame in frames:
                        if cfg.max_seconds is not None and frame.time is not None and frame.time - video_start > cfg.max_seconds:
                            continue
                        t.add(frame, int(cfg.chunk_s * frame.sample_rate))
                    if progress and time.perf_counter() - last_report > 10:
                        last_report = time.perf_counter()
                        if packet.pts is not None and packet.time_base is not None:
                            progress(float(packet.pts * packet.time_base) - video_start)
            for t in tracks:
                t.flush(final=True)
        finally:
            if analysis is not None:
                analysis.close()  # every chunk measured (or the thread's error raised) before the results are read
    stats, loud, infos, speech = [], [], [], {}
    for t in tracks:
        t.close()
        if t.windows is None:  # a stream with no decodable frame
            infos.append({**t.info, "sample_rate": int(t.stream.codec_context.sample_rate or 0), "channels": 0,
                          "channel_layout": None, "channel_names": [], "start_s": None, "duration_s": 0.0, "samples": 0,
                          "speech_samples": 0, "decode_errors": t.decode_errors, "decoded": False,
                          "integrated_lufs": None, "loudness_range_lu": None, "true_peak_dbtp": None, "sample_peak_dbfs": None})
            continue
        start_s = (t.start_time if t.start_time is not None else video_start) - video_start
        r = t.meter.result()
        infos.append({**t.info, "sample_rate": t.rate, "channels": t.channels, "channel_layout": t.stream.codec_context.layout.name
                      if t.stream.codec_context.layout else None, "channel_names": t.names, "start_s": round(start_s, 6),
                      "duration_s": t.samples / t.rate, "samples": t.samples, "speech_samples": t.speech_samples,
                      "decode_errors": t.decode_errors, "format_changes": t.format_changes, "decoded": True, **r.summary()})
        stats.append(t.windows.frame(t.track, start_s))
        loud.append(pd.DataFrame({"track": np.full(len(r.block_power), t.track, np.int32),
                                  "t_s": start_s + r.block_start_sample / t.rate,
                                  "power": r.block_power.astype(np.float64)}))
        speech[f"speech_{t.track}.wav"] = workdir / f"speech_{t.track}.wav"
        if infos[-1]["dialogue_source"] == "centre":
            speech[infos[-1]["dialogue_file"]] = workdir / infos[-1]["dialogue_file"]
    _downmix(tracks, infos)
    stats_df = pd.concat(stats, ignore_index=True) if stats else _empty_stats()
    stats_df = stats_df.astype(STATS_COLUMNS)
    loud_df = pd.concat(loud, ignore_index=True) if loud else pd.DataFrame({"track": pd.Series([], dtype="int32"),
                                                                          "t_s": pd.Series([], dtype="float64"), "power": pd.Series([], dtype="float64")})
    secs = time.perf_counter() - t0
    total = sum(i["duration_s"] or 0 for i in infos)
    meta = {"tracks": len(tracks), "video_start_s": video_start, "seconds": round(secs, 3),
            "audio_seconds": round(total, 3), "realtime_factor": round(secs / total, 5) if total else None,
            "decode_errors": sum(t.decode_errors for t in tracks), "config": asdict(cfg)}
    return AudioPassResult(stats_df, loud_df, infos, speech, meta)


def _downmix(tracks: list[_Track], infos: list[dict]) -> None:
    """Each multichannel track's stereo downmix against the title's stereo track (channels.compare_downmix),
    into its info's `downmix` (None for other tracks, or without a stereo track)."""
    multi, stereo = {}, {}
    for t, i in zip(tracks, infos):
        i.setdefault("downmix", None)
        if not i.get("decoded"):
            continue
        if t.chan is not None and t.chan.downmix is not None:
            multi[t.track] = {"blocks": t.chan.downmix_blocks(), "start_s": i["start_s"], "language": i.get("language_tag")}
        elif t.channels == 2:
            stereo[t.track] = {"blocks": t.meter.result().block_power, "start_s": i["start_s"], "language": i.get("language_tag"),
                               "integrated_lufs": i.get("integrated_lufs")}
    if not multi or not stereo:
        return
    for k, d in compare_downmix(multi, stereo).items():
        infos[next(n for n, t in enumerate(tracks) if t.track == k)]["downmix"] = d
