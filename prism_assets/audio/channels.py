"""Per-channel measurements of a multichannel (or stereo) track, made in the one audio decode pass
(decode.py hands `ChannelMeter` the same float32 chunks the R128 meter gets), and the QC findings on
them. Nothing here decodes; memory is O(channels^2 + duration / 2.56 s).

`ChannelMeter` keeps, per channel:

- peak, whether any sample is non-zero, and the channel covariance (correlation of every pair, lag 0);
- a histogram of its 10 ms levels (0.5 dB bins): `p99_dbfs`, the level of its loudest 1 % (how loud
  the channel gets, whatever its duty cycle);
- `speech_depth_db`: the syllabic (2.5-8 Hz) part of its 10 ms level envelope, RMS in dB, per 2.56 s
  segment where the channel is active (levels floored 40 dB under the segment's top), 75th percentile
  over the segments (dialogue is on part of a title, not all of it). Speech is modulated at the syllable rate (espeak-ng or film dialogue: 5-15 dB); noise,
  tones, pads and most music are not (< 2 dB): the dialogue channel is the most speech-modulated one;
- for the LFE: the share of its energy above 200 Hz (4th-order Butterworth high pass). A real LFE is
  band-limited (< 120 Hz): a full-band channel routed to it puts most of its energy above;
- for a layout with FL and FR and more: the ITU-R BS.775 stereo downmix (Lo = L + 0.707 C + 0.707 Ls,
  Ro = R + 0.707 C + 0.707 Rs, LFE dropped) metered by BS.1770 (`R128Meter`, no true peak): its
  integrated loudness and 400 ms block powers, compared with the title's stereo track (`compare_downmix`).

QC events (`channel_events`, `downmix_events`; kinds in docs/schema.md "audio.json"): `channel_silent`,
`channel_swap` (`metrics.pattern`: `dialogue_off_centre`, `lfe_full_band`), `downmix_mismatch`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from .loudness import ABS_GATE_LUFS, R128Meter, gated_loudness, lufs

LEVEL_MIN_DB, LEVEL_BIN_DB, LEVEL_BINS = -150.0, 0.5, 340  # 10 ms level histogram: -150 .. +20 dBFS
SEGMENT_WINDOWS = 256  # 2.56 s of 10 ms windows per modulation segment
SYLLABLE_HZ = (2.5, 8.0)
ACTIVE_DBFS = -70.0  # a segment counts for a channel when its top 10 ms level is above this
FLOOR_BELOW_TOP_DB = 40.0
DEPTH_PERCENTILE = 75  # of the segments' depths: dialogue fills a fraction of a film, not all of it
LFE_CUT_HZ = 200.0
DOWNMIX_GAIN = 10 ** (-3 / 20)  # 0.707: centre and surrounds into Lo/Ro (ITU-R BS.775)
LEFT_SURROUNDS = ("BL", "SL", "TBL", "SDL", "LS")
RIGHT_SURROUNDS = ("BR", "SR", "TBR", "SDR", "RS")


@dataclass(frozen=True)
class ChannelThresholds:
    """The limits of the channel findings (audio_analysis config `channels:`; defaults below)."""

    silent_below_db: float = 40.0  # a channel whose loudest 1 % stays this far under the loudest main channel's is silent
    speech_depth_db: float = 3.0  # a channel this speech-modulated (or more) carries dialogue
    centre_margin_db: float = 3.0  # dialogue off centre: the centre this much less speech-modulated than the dialogue channel
    lfe_full_band_ratio: float = 0.5  # LFE with this share of its energy above 200 Hz carries a full-band channel
    downmix_max_diff_lu: float = 4.0  # downmix vs stereo track integrated loudness
    downmix_min_correlation: float = 0.7  # downmix vs stereo track 400 ms loudness envelopes (Pearson, dB)

    @classmethod
    def from_config(cls, cfg: dict | None) -> "ChannelThresholds":
        cfg = dict(cfg or {})
        unknown = set(cfg) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown audio channel settings: {', '.join(sorted(unknown))}")
        return cls(**{k: float(v) for k, v in cfg.items()})


def _db(x: float) -> float | None:
    return round(10 * math.log10(x), 2) if x > 0 else None


def segment_depth(levels: np.ndarray) -> np.ndarray:
    """Syllabic modulation depth (dB RMS of the 2.5-8 Hz part) of 10 ms level envelopes (channels, n);
    NaN for a channel not active in the segment."""
    n = levels.shape[1]
    top = levels.max(axis=1, keepdims=True)
    y = np.maximum(levels, top - FLOOR_BELOW_TOP_DB)
    y = y - y.mean(axis=1, keepdims=True)
    w = np.hanning(n)
    spec = np.abs(np.fft.rfft(y * w, axis=1)) ** 2
    f = np.fft.rfftfreq(n, 0.01)
    band = (f >= SYLLABLE_HZ[0]) & (f <= SYLLABLE_HZ[1])
    depth = np.sqrt(2.0 * spec[:, band].sum(axis=1) / (n * (w * w).sum()))
    return np.where(top[:, 0] > ACTIVE_DBFS, depth, np.nan)


class ChannelMeter:
    """See the module docstring; `feed` (channels, n) float32 chunks, then `report()`."""

    def __init__(self, rate: int, names: list[str]):
        self.rate, self.names = rate, list(names)
        ch = len(names)
        self.win = max(1, rate // 100)
        self.cov = np.zeros((ch, ch))
        self.peak = np.zeros(ch)
        self.nonzero = np.zeros(ch, bool)
        self.hist = np.zeros((ch, LEVEL_BINS), np.int64)
        self.rest = np.zeros((ch, 0), np.float32)
        self.seg: list[np.ndarray] = []
        self.seg_n = 0
        self.depths: list[np.ndarray] = []
        self.samples = 0
        self.lfe = next((i for i, n in enumerate(names) if "LFE" in n), None)
        self.lfe_e = self.lfe_hf_e = 0.0
        from scipy.signal import butter  # here, not at the top: scipy.signal costs ~0.5 s to import (every process imports this module)

        self._sos = butter(4, LFE_CUT_HZ, "highpass", fs=rate, output="sos") if self.lfe is not None and rate > 2 * LFE_CUT_HZ else None
        self._zi = np.zeros((len(self._sos), 2)) if self._sos is not None else None
        self.downmix = None
        idx = {n: i for i, n in enumerate(names)}
        if ch > 2 and "FL" in idx and "FR" in idx:  # (main channel, channels added at 0.707) per side
            self._mix = [(idx[front], [idx[n] for n in ("FC", *group) if n in idx]) for front, group in (("FL", LEFT_SURROUNDS), ("FR", RIGHT_SURROUNDS))]
            self.downmix = R128Meter(rate, np.ones(2), true_peak=False)

    def feed(self, x: np.ndarray) -> None:
        if x.shape[1] == 0:
            return
        self.samples += x.shape[1]
        # no BLAS here (its threads on these small products cost more than the work): einsum's own loops
        self.cov += np.einsum("in,jn->ij", x, x, optimize=False).astype(np.float64)
        self.peak = np.maximum(self.peak, np.abs(x).max(axis=1))
        self.nonzero |= (x != 0).any(axis=1)
        if self._sos is not None:
            from scipy.signal import sosfilt

            lfe = x[self.lfe].astype(np.float64)
            y, self._zi = sosfilt(self._sos, lfe, zi=self._zi)
            self.lfe_hf_e += float(np.einsum("n,n->", y, y))
            self.lfe_e += float(np.einsum("n,n->", lfe, lfe))
        if self.downmix is not None:
            self.downmix.feed(np.stack([x[main] + DOWNMIX_GAIN * x[others].sum(axis=0) if others else x[main] for main, others in self._mix]))
        self._windows(np.concatenate([self.rest, x], axis=1) if self.rest.shape[1] else x)

    def _windows(self, x: np.ndarray) -> None:
        k = x.shape[1] // self.win
        self.rest = x[:, k * self.win:]
        if not k:
            return
        blocks = x[:, : k * self.win].reshape(x.shape[0], k, self.win)
        with np.errstate(divide="ignore"):
            lev = 10 * np.log10(np.einsum("ckw,ckw->ck", blocks, blocks).astype(np.float64) / self.win)
        lev = np.where(np.isfinite(lev), lev, LEVEL_MIN_DB)
        idx = np.clip(((lev - LEVEL_MIN_DB) / LEVEL_BIN_DB).astype(np.int64), 0, LEVEL_BINS - 1)
        for c in range(x.shape[0]):
            self.hist[c] += np.bincount(idx[c], minlength=LEVEL_BINS)
        self.seg.append(lev)
        self.seg_n += k
        while self.seg_n >= SEGMENT_WINDOWS:
            allv = np.concatenate(self.seg, axis=1)
            self.depths.append(segment_depth(allv[:, :SEGMENT_WINDOWS]))
            self.seg, self.seg_n = [allv[:, SEGMENT_WINDOWS:]], allv.shape[1] - SEGMENT_WINDOWS

    def _p99(self, c: int) -> float | None:
        h = self.hist[c]
        if not h.sum():
            return None
        i = int(np.searchsorted(np.cumsum(h), 0.99 * h.sum()))
        lev = LEVEL_MIN_DB + (i + 1) * LEVEL_BIN_DB
        return None if i == 0 else round(lev, 1)

    def report(self) -> dict:
        """The channel report (JSON-ready): per channel levels and speech depth, pair correlations,
        the LFE's share above 200 Hz, the dialogue channel and the downmix's loudness."""
        if self.seg_n >= SEGMENT_WINDOWS // 2:  # the tail, when long enough to hold a few syllables
            self.depths.append(segment_depth(np.concatenate(self.seg, axis=1)))
        depth = None
        if self.depths:
            with warnings.catch_warnings():  # a channel never active: NaN, said as null
                warnings.simplefilter("ignore", RuntimeWarning)
                depth = np.nanpercentile(np.vstack(self.depths), DEPTH_PERCENTILE, axis=0)
        n = max(self.samples, 1)
        chans = []
        for c, name in enumerate(self.names):
            d = None if depth is None or not np.isfinite(depth[c]) else round(float(depth[c]), 2)
            chans.append({"name": name, "peak_dbfs": None if self.peak[c] <= 0 else round(20 * math.log10(self.peak[c]), 2),
                          "rms_dbfs": _db(self.cov[c, c] / n), "p99_dbfs": self._p99(c), "digital_silence": not bool(self.nonzero[c]),
                          "speech_depth_db": d})
        diag = np.sqrt(np.diag(self.cov))
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = self.cov / np.outer(diag, diag)
        corr = [[None if not np.isfinite(v) else round(float(v), 3) for v in row] for row in corr]
        out = {"names": self.names, "channels": chans, "correlation": corr,
               "lfe_above_200hz_ratio": round(self.lfe_hf_e / self.lfe_e, 4) if self.lfe_e > 0 and self._sos is not None else None,
               "downmix_lufs": None}
        if self.downmix is not None:
            r = self.downmix.result()
            out["downmix_lufs"] = round(r.integrated_lufs, 2) if math.isfinite(r.integrated_lufs) else None
        return out

    def downmix_blocks(self) -> np.ndarray | None:
        return self.downmix.result().block_power if self.downmix is not None else None


# ---------------------------------------------------------------------------------------------- findings


def _main(report: dict) -> list[dict]:
    return [c for c in report["channels"] if "LFE" not in c["name"]]


def silent_channels(report: dict, th: ChannelThresholds) -> list[tuple[dict, str]]:
    """(channel, why) for each channel digitally silent or whose loudest 1 % stays `silent_below_db` under
    the loudest main channel's; none when every main channel is quiet (a silent track is QC's `silence`)."""
    tops = [c["p99_dbfs"] for c in _main(report) if c["p99_dbfs"] is not None]
    if not tops or max(tops) < ACTIVE_DBFS:
        return []
    loudest = max(tops)
    out = []
    for c in report["channels"]:
        if c["digital_silence"]:
            out.append((c, "digitally silent (every sample zero)"))
        elif c["p99_dbfs"] is None or c["p99_dbfs"] < loudest - th.silent_below_db:
            lvl = "no level" if c["p99_dbfs"] is None else f"its loudest 1 % at {c['p99_dbfs']:.1f} dBFS"
            out.append((c, f"far below the others for the whole track ({lvl}, the loudest channel's at {loudest:.1f} dBFS)"))
    return out


def dialogue_channel(report: dict, th: ChannelThresholds) -> str | None:
    """The most speech-modulated main channel, when it is speech-modulated enough; else None."""
    cands = [c for c in _main(report) if c["speech_depth_db"] is not None]
    best = max(cands, key=lambda c: c["speech_depth_db"], default=None)
    return best["name"] if best is not None and best["speech_depth_db"] >= th.speech_depth_db else None


def swaps(report: dict, th: ChannelThresholds) -> list[dict]:
    """Swapped/misrouted channels: dialogue in another channel than the centre (the centre silent or far
    less speech-like), a full-band channel in the LFE. Each {pattern, detail, metrics}."""
    by = {c["name"]: c for c in report["channels"]}
    silent = {c["name"] for c, _ in silent_channels(report, th)}
    out = []
    dlg = dialogue_channel(report, th)
    fc = by.get("FC")
    if fc is not None and dlg is not None and dlg != "FC":
        depth = by[dlg]["speech_depth_db"]
        cd = fc["speech_depth_db"]
        if "FC" in silent or cd is None or cd <= depth - th.centre_margin_db:
            centre = "the centre is silent" if "FC" in silent or cd is None else f"the centre's {cd:.1f} dB"
            out.append({"pattern": "dialogue_off_centre", "detail": f"dialogue in {dlg}, not in the centre: {dlg} speech-modulated "
                        f"{depth:.1f} dB, {centre} (channels swapped or mis-ordered?)",
                        "metrics": {"dialogue_channel": dlg, "dialogue_depth_db": depth, "centre_depth_db": cd, "centre_silent": "FC" in silent}})
    ratio = report.get("lfe_above_200hz_ratio")
    lfe = next((c for c in report["channels"] if "LFE" in c["name"]), None)
    if lfe is not None and ratio is not None and lfe["name"] not in silent and ratio >= th.lfe_full_band_ratio:
        out.append({"pattern": "lfe_full_band", "detail": f"{lfe['name']} carries full-band content ({ratio:.0%} of its energy above "
                    f"{LFE_CUT_HZ:.0f} Hz): a main channel routed to the LFE?", "metrics": {"lfe_above_200hz_ratio": ratio}})
    return out


def centre_is_dialogue(report: dict | None, th: ChannelThresholds = ChannelThresholds()) -> bool:
    """The centre exists, is not silent and no other channel carries the dialogue instead: the track's
    dialogue source can be its centre."""
    if not report or "FC" not in report["names"]:
        return False
    if any(c["name"] == "FC" for c, _ in silent_channels(report, th)):
        return False
    return not any(s["pattern"] == "dialogue_off_centre" for s in swaps(report, th))


def _event(kind: str, severity: str, detail: str, track: dict, metrics: dict) -> dict:
    start = float(track.get("start_s") or 0.0)
    return {"kind": kind, "severity": severity, "start_s": max(0.0, start), "end_s": max(0.0, start + float(track.get("duration_s") or 0.0)),
            "track": track["track"], "detail": detail, "metrics": metrics}


def channel_events(track: dict, th: ChannelThresholds) -> list[dict]:
    """QC events of one track's channel report (audio.json track): `channel_silent` (warn; info for an
    LFE, which may carry nothing) and `channel_swap` (warn). None for a silent track."""
    report = track.get("channel_report")
    if not report or track.get("silent"):
        return []
    out = []
    for c, why in silent_channels(report, th):
        lfe = "LFE" in c["name"]
        out.append(_event("channel_silent", "info" if lfe else "warn", f"track {track['track']}: channel {c['name']} {why}", track,
                          {"channel": c["name"], "p99_dbfs": c["p99_dbfs"], "digital_silence": c["digital_silence"]}))
    for s in swaps(report, th):
        out.append(_event("channel_swap", "warn", f"track {track['track']}: {s['detail']}", track, {"pattern": s["pattern"], **s["metrics"]}))
    return out


def downmix_events(track: dict, th: ChannelThresholds) -> list[dict]:
    """`downmix_mismatch` (warn): the track's stereo downmix against the title's stereo track, loudness apart
    by more than `downmix_max_diff_lu` or envelopes correlated less than `downmix_min_correlation`."""
    d = track.get("downmix")
    if not d or d.get("against_track") is None or track.get("silent"):
        return []
    why = []
    if d.get("loudness_diff_lu") is not None and abs(d["loudness_diff_lu"]) > th.downmix_max_diff_lu:
        why.append(f"{d['loudness_diff_lu']:+.1f} LU louder than track {d['against_track']} (limit {th.downmix_max_diff_lu:.0f} LU)")
    if d.get("envelope_correlation") is not None and d["envelope_correlation"] < th.downmix_min_correlation:
        why.append(f"loudness envelope correlation {d['envelope_correlation']:.2f} with track {d['against_track']} "
                   f"(under {th.downmix_min_correlation:.2f}: another mix or cut?)")
    if not why:
        return []
    return [_event("downmix_mismatch", "warn", f"track {track['track']}: its stereo downmix is " + "; ".join(why), track, dict(d))]


# ---------------------------------------------------------------------------------------------- downmix vs stereo


def envelope_correlation(a: np.ndarray, b: np.ndarray, shift: int) -> tuple[float | None, int]:
    """Pearson correlation of two 400 ms block loudness envelopes (dB), b shifted by `shift` blocks
    (b's block j is at a's block j + shift); blocks where both pass the -70 LUFS gate. (r, blocks)."""
    if shift >= 0:
        a = a[shift:]
    else:
        b = b[-shift:]
    n = min(len(a), len(b))
    la, lb = lufs(a[:n]), lufs(b[:n])
    ok = np.isfinite(la) & np.isfinite(lb) & (la >= ABS_GATE_LUFS) & (lb >= ABS_GATE_LUFS)
    if ok.sum() < 10 or np.std(la[ok]) < 1e-6 or np.std(lb[ok]) < 1e-6:
        return None, int(ok.sum())
    return float(np.corrcoef(la[ok], lb[ok])[0, 1]), int(ok.sum())


def compare_downmix(multi: dict[int, dict], stereo: dict[int, dict]) -> dict[int, dict]:
    """Each multichannel track's downmix against a stereo track of the title: the one with its language tag
    (else any), the best correlated. Inputs per track: `blocks` (400 ms powers every 100 ms), `start_s`,
    `language`; stereo ones also `integrated_lufs`. Output per multichannel track: {against_track,
    downmix_lufs, stereo_lufs, loudness_diff_lu, envelope_correlation, blocks}."""
    out = {}
    for k, m in multi.items():
        pool = [s for s in stereo if stereo[s].get("language") == m.get("language")] or list(stereo)
        best = None
        for s in pool:
            shift = int(round(((m.get("start_s") or 0.0) - (stereo[s].get("start_s") or 0.0)) / 0.1))
            r, n = envelope_correlation(stereo[s]["blocks"], m["blocks"], shift)
            if best is None or (r is not None and (best[1] is None or r > best[1])):
                best = (s, r, n)
        dm = gated_loudness(m["blocks"])
        res = {"against_track": None, "downmix_lufs": round(dm, 2) if math.isfinite(dm) else None, "stereo_lufs": None,
               "loudness_diff_lu": None, "envelope_correlation": None, "blocks": 0}
        if best is not None:
            st = stereo[best[0]].get("integrated_lufs")
            res.update(against_track=best[0], stereo_lufs=st, envelope_correlation=None if best[1] is None else round(best[1], 3), blocks=best[2],
                       loudness_diff_lu=round(dm - st, 2) if st is not None and math.isfinite(dm) else None)
        out[k] = res
    return out


def thresholds_dict(th: ChannelThresholds) -> dict:
    return asdict(th)
