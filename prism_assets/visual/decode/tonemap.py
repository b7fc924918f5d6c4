"""HDR (PQ / HLG) pictures tone-mapped to SDR BT.709 for the analysis pictures, the CLIP samples,
keyframes and posters.

The pass decodes in-process with PyAV, whose bundled FFmpeg 8 has no `zscale` (libzimg) and no
`libplacebo` (the Debian ffmpeg CLI has both; the tests use it as the reference); its `tonemap`
filter needs linear-light float input that only those produce, `colorspace` knows no PQ or HLG, and
the `scale` filter's own transfer conversion is an unconfigurable mapping. So the mapping is done here, on the (small) pictures the pass keeps, after libswscale has scaled the frame
and converted it to 16-bit planar RGB with the source's matrix (BT.2020):

1. EOTF to display light, in units of the HDR reference white (BT.2408: 203 cd/m2 = 1.0):
   PQ (SMPTE ST 2084) per channel; HLG (ARIB STD-B67) inverse OETF then the BT.2100 OOTF
   (system gamma 1.2 at a 1000 cd/m2 nominal peak, on BT.2020 luminance);
2. BT.2020 -> BT.709 primaries (3x3 in linear light; out-of-gamut negatives clipped);
3. a hue-preserving roll-off on max(R, G, B): identity up to `knee` (0.75 = 152 cd/m2; shadows and
   mid-tones are kept as graded, so black stays black and the SDR thresholds of the black /
   freeze detectors apply unchanged), then the Moebius curve (FFmpeg `tonemap=mobius`) that meets
   1.0 at the content peak (MaxCLL, else the mastering display's maximum, else 1000 cd/m2; HLG
   1000 cd/m2): highlights are compressed, not clipped, and nothing is washed out;
4. BT.1886 inverse EOTF (gamma 1/2.4) to 8-bit RGB, or to full-range BT.709 Y'CbCr 4:2:0 for the
   analysis pictures.

A Dolby Vision profile 5 stream (IPTPQc2, no HDR10 base layer) is not reconstructed: its pictures
are mapped as if BT.2020 PQ (wrong colours); profile 8 has an HDR10 base layer and maps correctly.

The EOTF and the output encoding are lookup tables (65536 entries each), so a picture costs a few
numpy passes over its pixels: ~0.9 ms for a 128 x 72 analysis picture (with its libswscale step),
~1.5-2 ms per 1080p frame in all for the pass. The result matches FFmpeg's own zscale (libzimg) +
`tonemap=mobius` rendering with the same knee and peak within ~4/255 per pixel (tested).
"""

from __future__ import annotations

import numpy as np

REF_WHITE_NITS = 203.0  # BT.2408 HDR reference white (graphics white)
DEFAULT_PEAK_NITS = 1000.0  # PQ without MaxCLL / mastering metadata; the HLG nominal peak
KNEE = 0.75  # identity below this (relative to reference white), roll-off above

# linear BT.2020 RGB -> linear BT.709 RGB (BT.2087)
BT2020_TO_BT709 = np.array([[1.660491, -0.587641, -0.072850],
                            [-0.124550, 1.132900, -0.008349],
                            [-0.018151, -0.100579, 1.118730]], dtype=np.float32)
_Y2020 = np.array([0.2627, 0.6780, 0.0593], dtype=np.float32)
_SWS_CS_BT2020 = 9  # libswscale's BT.2020 coefficients (SWS_CS_BT2020)

TRANSFERS = {"smpte2084": "pq", "arib-std-b67": "hlg"}


def pq_eotf(e: np.ndarray) -> np.ndarray:
    """SMPTE ST 2084: signal 0..1 -> cd/m2."""
    m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 4096 * 128, 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    p = np.power(np.clip(e, 0.0, 1.0), 1.0 / m2)
    return 10000.0 * np.power(np.maximum(p - c1, 0.0) / (c2 - c3 * p), 1.0 / m1)


def pq_oetf(nits: np.ndarray) -> np.ndarray:
    """Inverse of `pq_eotf` (cd/m2 -> signal 0..1)."""
    m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 4096 * 128, 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    y = np.power(np.clip(np.asarray(nits, dtype=np.float64) / 10000.0, 0.0, 1.0), m1)
    return np.power((c1 + c2 * y) / (1.0 + c3 * y), m2)


def hlg_inverse_oetf(e: np.ndarray) -> np.ndarray:
    """ARIB STD-B67 / BT.2100 HLG: signal 0..1 -> normalized scene light 0..1."""
    a, b, c = 0.17883277, 0.28466892, 0.55991073
    e = np.clip(np.asarray(e, dtype=np.float64), 0.0, 1.0)
    return np.where(e <= 0.5, e * e / 3.0, (np.exp((e - c) / a) + b) / 12.0)


def mobius(x: np.ndarray, peak: float, knee: float = KNEE) -> np.ndarray:
    """FFmpeg's `tonemap=mobius`: identity up to `knee`, then a smooth curve reaching 1.0 at `peak`."""
    if peak <= 1.0:
        return np.minimum(x, 1.0)
    j = knee
    a = -j * j * (peak - 1.0) / (j * j - 2.0 * j + peak)
    b = (j * j - 2.0 * j * peak + peak) / max(peak - 1.0, 1e-6)
    scale = (b * b + 2.0 * b * j + j * j) / (b - a)
    return np.where(x <= j, x, np.float32(scale) * (x + np.float32(a)) / (x + np.float32(b))).astype(np.float32, copy=False)


def peak_nits(hdr: dict | None, transfer: str) -> float:
    """The content peak the curve maps to SDR white: MaxCLL, else the mastering display's maximum
    luminance, else 1000 cd/m2 (HLG: its nominal 1000 cd/m2 display)."""
    if transfer == "hlg" or not hdr:
        return DEFAULT_PEAK_NITS
    cll = hdr.get("max_cll")
    if cll:
        return float(cll)
    md = (hdr.get("mastering_display") or {}).get("max_luminance")
    return float(md) if md else DEFAULT_PEAK_NITS


class ToneMap:
    """HDR -> SDR BT.709 for one title (`transfer` "pq" or "hlg")."""

    def __init__(self, transfer: str, peak: float = DEFAULT_PEAK_NITS, primaries: str | None = "bt2020", matrix_cs: int | None = None):
        if transfer not in ("pq", "hlg"):
            raise ValueError(f"no tone mapping for transfer {transfer!r}")
        self.transfer, self.peak_nits = transfer, float(peak)
        self.peak = max(1.0, self.peak_nits / REF_WHITE_NITS)
        self.matrix_cs = matrix_cs  # libswscale coefficients of the source's Y'CbCr; None: the frame's own (BT.2020 when unspecified)
        self.to709 = BT2020_TO_BT709 if primaries in (None, "bt2020") else None
        code = np.arange(65536, dtype=np.float64) / 65535.0
        if transfer == "pq":
            lin = pq_eotf(code) / REF_WHITE_NITS
        else:  # scene light; the OOTF (luminance dependent) is applied per pixel
            lin = hlg_inverse_oetf(code)
        self.eotf = lin.astype(np.float32)
        # output: index = sqrt(linear) * 65535 (fine steps near black) -> gamma 1/2.4
        s = np.arange(65536, dtype=np.float64) / 65535.0
        self.encode = np.power(s * s, 1.0 / 2.4).astype(np.float32)

    @classmethod
    def for_title(cls, hdr: dict | None, stream_trc: int | None = None) -> "ToneMap | None":
        """The title's tone map from the probe's `hdr` block (or, for an older probe, the stream's
        transfer characteristic: 16 = PQ, 18 = HLG); None for SDR."""
        if hdr:
            transfer = TRANSFERS.get(hdr.get("transfer") or "")
            primaries = hdr.get("primaries")
        else:
            transfer = {16: "pq", 18: "hlg"}.get(int(stream_trc or 0))
            primaries = "bt2020"
        if transfer is None:
            return None
        return cls(transfer, peak_nits(hdr, transfer), primaries)

    def describe(self) -> dict:
        return {"transfer": self.transfer, "peak_nits": round(self.peak_nits, 1), "reference_white_nits": REF_WHITE_NITS,
                "knee": KNEE, "curve": "mobius", "output": "bt709 (bt1886 gamma 2.4)"}

    # -- pictures (planar float32 work: a 3x3 matrix as nine multiply-adds beats matmul on (..., 3) arrays)
    def planes16(self, reformatter, frame, w: int, h: int, interpolation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The frame at w x h as 16-bit full-range R', G', B' planes (still HDR-encoded), converted by
        libswscale with the source's matrix (BT.2020 where the frame does not say)."""
        from av.video.reformatter import ColorRange

        cs = self.matrix_cs if self.matrix_cs is not None else (int(frame.colorspace) if int(frame.colorspace) in (1, 5, 6, 7, 9, 10) else _SWS_CS_BT2020)
        src_range = ColorRange.JPEG if int(frame.color_range) == 2 else ColorRange.MPEG
        # planar gbrp16le (packed rgb48le from 10-bit Y'CbCr comes out wrong, green lost, in this libswscale); the
        # RGB side's table is unused but must differ from the source's, or libswscale keeps its BT.601 default
        out = reformatter.reformat(frame, w, h, "gbrp16le", src_colorspace=cs, dst_colorspace=1 if cs != 1 else 5,
                                   interpolation=interpolation, src_color_range=src_range, dst_color_range=ColorRange.JPEG)
        g, b, r = (np.frombuffer(p, np.uint16).reshape(p.height, p.line_size // 2)[:, : p.width] for p in out.planes)
        return r, g, b

    def linear709(self, r16: np.ndarray, g16: np.ndarray, b16: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """HDR R'G'B' code values (uint16, any shape) -> tone-mapped linear BT.709 R, G, B in 0..1 (float32)."""
        lut = self.eotf
        r, g, b = lut[r16], lut[g16], lut[b16]
        if self.transfer == "hlg":  # BT.2100 OOTF: Fd = Lw * Ys^(gamma - 1) * E, in units of reference white
            k = np.power(np.maximum(_Y2020[0] * r + _Y2020[1] * g + _Y2020[2] * b, 1e-6), np.float32(0.2))
            k *= np.float32(DEFAULT_PEAK_NITS / REF_WHITE_NITS)
            r, g, b = r * k, g * k, b * k
        if self.to709 is not None:
            m = self.to709
            r, g, b = (m[0, 0] * r + m[0, 1] * g + m[0, 2] * b, m[1, 0] * r + m[1, 1] * g + m[1, 2] * b,
                       m[2, 0] * r + m[2, 1] * g + m[2, 2] * b)
        out = []
        for c in (r, g, b):
            np.maximum(c, 0.0, out=c)
            out.append(c)
        mx = np.maximum(np.maximum(out[0], out[1]), out[2])
        ratio = mobius(mx, self.peak) / np.maximum(mx, np.float32(1e-6))
        for c in out:
            c *= ratio
            np.minimum(c, 1.0, out=c)
        return out[0], out[1], out[2]

    def encoded(self, lin: np.ndarray) -> np.ndarray:
        """Linear 0..1 -> BT.1886-encoded 0..1 (float32)."""
        return self.encode[(np.sqrt(lin) * np.float32(65535.0) + np.float32(0.5)).astype(np.uint16)]

    def rgb(self, reformatter, frame, w: int, h: int, interpolation) -> np.ndarray:
        """SDR 8-bit RGB (h, w, 3) of an HDR frame."""
        chans = self.linear709(*self.planes16(reformatter, frame, w, h, interpolation))
        out = np.empty((h, w, 3), np.uint8)
        for i, c in enumerate(chans):
            out[..., i] = self.encoded(c) * np.float32(255.0) + np.float32(0.5)
        return out

    def yuv420(self, reformatter, frame, w: int, h: int, interpolation) -> list[np.ndarray]:
        """SDR full-range BT.709 Y, U, V (4:2:0, uint8) of an HDR frame: the analysis picture."""
        r, g, b = (self.encoded(c) for c in self.linear709(*self.planes16(reformatter, frame, w, h, interpolation)))
        y = np.float32(0.2126) * r + np.float32(0.7152) * g + np.float32(0.0722) * b
        h2, w2 = (h // 2) * 2, (w // 2) * 2

        def sub(x):  # 2 x 2 mean (4:2:0)
            x = x[:h2, :w2]
            return np.float32(0.25) * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])

        cb = (sub(b) - sub(y)) * np.float32(255.0 / 1.8556) + np.float32(128.5)
        cr = (sub(r) - sub(y)) * np.float32(255.0 / 1.5748) + np.float32(128.5)
        y = y * np.float32(255.0) + np.float32(0.5)
        return [np.clip(x, 0, 255).astype(np.uint8) for x in (y, cb, cr)]
