"""The one visual decode pass of a title (package: one concern per module).

Every frame is decoded once (PyAV) and scaled *inside libswscale* to a small analysis picture
(default 128 px wide, full-range YUV 4:2:0); full-resolution RGB is produced only for the few frames that are kept as pictures. From the
analysis pictures the pass computes, in batches of 16 frames (`batch_stats`), per frame:

* shot-boundary features: mean abs luma difference to the previous frame (`diff`), colour-histogram
  distance (`hist_diff`), the difference across the frame (`skip_diff`, F[t-1] vs F[t+1], separates
  flashes from cuts), and linear-blend features for gradual transitions: for lags k,
  `span_k` = |F[t-k] - F[t+k]|, `cov_k` = the fraction of pixels that changed by more than 20 across
  that span, `hspan_k` = the colour-histogram distance across it, and `blend_k` = |F[t] - (F[t-k] + F[t+k]) / 2| (a dissolve or fade is a linear blend, so
  `blend_k` ~ 0 while `span_k` is large; motion and cuts give blend_k >= span_k / 2);
* QC statistics: luma mean / std / min / max, fraction of black pixels (blackdetect's pix_th),
  letterbox / pillarbox bars (rows / columns of black at each edge), colour-bar test-pattern evidence,
  interlacing flag, corrupt flag, key frame;
* picture quality for keyframes and posters: sharpness (variance of the Laplacian), exposure,
  contrast, colourfulness (Hasler-Suesstrunk), saturation.

It also keeps three kinds of pictures, written as JPEG "packs" (concatenated JPEG bytes plus an index
of offsets; one file each, streamed to disk so memory stays flat whatever the duration):

* `samples.pack`: frames on a fixed time grid (`sample_fps`, default 1/s), resized so the short side
  is `sample_size` (bicubic, swscale) and center-cropped square: exactly CLIP's preprocessing;
* `keyframes.pack`: the best-quality frame of every window of at most `window_s` seconds; windows also
  break at every cut candidate and black/non-black change, so every shot owns candidates;
  stored at `keyframe_max_side`;
* `posters.pack`: a bounded pool (`poster_pool`) of the best-scoring keyframe candidates at full
  resolution (capped at `poster_max_side`), at most `poster_per_segment` per stretch between cut
  candidates, the lowest evicted. The pool holds the decoded frames themselves and converts only the
  survivors, once, at the end.

**Decode lanes.** Where the codec's GOPs are closed (H.264 and HEVC IDR, VP8/VP9 key frames,
intra-only codecs; `gop_start_test`), the stream is split at those points (at least `MIN_GOP`
packets apart) and `decode_lanes` decoders (default one per CPU, at most 4) decode GOPs side by
side, each on its own thread with its own demuxer (the other GOPs' packets are read and skipped).
A lane claims the next GOP when it is free, at most `2 x lanes` GOPs ahead of the one consumed, and
does everything that is decided inside a GOP: analysis pictures, `batch_stats`, colour-bar tests,
samples, keyframe windows (which also break at GOP starts) and poster candidates. The consumer takes
the GOPs in order and does what crosses them: the first frame's differences to the previous GOP's
last frame, the look-ahead features over a ring of recent frames, the poster pool. GOPs are split
the same way whatever the number of lanes, so one lane and four give identical outputs (tested).
Other codecs (HEVC CRA, MPEG-2, AV1, ...) are one GOP decoded by one lane with FFmpeg frame threads.
On 2 CPUs two single-threaded decoders use ~20 % less CPU than FFmpeg's frame threads and keep both
cores busy (frame threads wait on each other's reference rows).

Pictures are converted (swscale) and JPEG-encoded (libjpeg-turbo via simplejpeg) on one worker
thread, fed through a bounded queue, so decode and encode overlap and memory stays flat.

**Pictures that are not progressive SDR** (from the probe's title.json, `run_visual_pass(source=...)`):
PQ (HDR10) and HLG frames are tone-mapped to SDR BT.709 for every picture the pass makes, the
analysis pictures included, so the black / freeze / bars thresholds and CLIP see SDR (`tonemap`:
PyAV's FFmpeg has no zscale, so libswscale converts to 16-bit RGB and numpy applies the EOTF,
BT.2020 -> BT.709 and a Moebius roll-off); interlaced frames are deinterlaced (`bwdif`) and
telecined ones inverse-telecined (`fieldmatch` + `decimate`) by a libavfilter graph between the
decoder and the analysis (`scan`; such a title is one lane, one GOP).

Nothing here imports torch: the pass runs on a CPU decode pool; models run in later steps.

Modules: `config` (settings, result, errors), `stats` (per-frame measures), `pictures` (RGB
conversion and the JPEG writer thread; the pack format is `visual/packs.py`), `bitstream`
(closed-GOP split points), `system` (usable CPUs, lanes, allocator), `lanes` (the decoders),
`context` (what the lanes share), `consumer` (GOPs in order, cross-GOP features, poster pool),
`tonemap` (HDR -> SDR), `scan` (deinterlace / inverse telecine), `run` (`run_visual_pass`).
"""

from .bitstream import MIN_GOP, gop_start_test, nal_headers
from .config import DECODE_CODE_VERSION, SAMPLES_SCHEMA_VERSION, STATS_SCHEMA_VERSION, VisualDecodeError, VisualPass, VisualPassConfig
from .run import run_visual_pass
from .stats import LAG_BATCH, bars_of, batch_stats, colour_bars_score, exposure_score, quality_parts
from .system import decode_lanes_for, usable_cpus

__all__ = [
    "DECODE_CODE_VERSION", "LAG_BATCH", "MIN_GOP", "SAMPLES_SCHEMA_VERSION", "STATS_SCHEMA_VERSION", "VisualDecodeError", "VisualPass", "VisualPassConfig",
    "bars_of", "batch_stats", "colour_bars_score", "decode_lanes_for", "exposure_score", "gop_start_test", "nal_headers",
    "quality_parts", "run_visual_pass", "usable_cpus",
]
