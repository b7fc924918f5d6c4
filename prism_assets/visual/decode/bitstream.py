"""Where a video stream may be split for decode lanes: closed-GOP starts from the bitstream."""

from __future__ import annotations

from typing import Callable

# a key frame of these codecs resets every reference (VP8/VP9), or every frame is a key frame
_KEY_IS_CLOSED = {"vp8", "vp9", "prores", "mjpeg", "dnxhd", "rawvideo", "png", "v210", "qtrle", "utvideo"}


def nal_headers(data: bytes, length_size: int | None):
    """First header byte of each NAL unit of an H.264/HEVC packet (length-prefixed or Annex B)."""
    if length_size:
        i, n = 0, len(data)
        while i + length_size < n:
            ln = int.from_bytes(data[i : i + length_size], "big")
            i += length_size
            if ln <= 0 or i + ln > n:
                return  # malformed: whatever was read so far
            yield data[i]
            i += ln
        return
    i = data.find(b"\x00\x00\x01")
    while 0 <= i and i + 3 < len(data):
        yield data[i + 3]
        i = data.find(b"\x00\x00\x01", i + 3)


def gop_start_test(codec: str, extradata: bytes | None) -> Callable | None:
    """A function telling whether a key packet starts a *closed* GOP: no frame from it on refers to
    an earlier frame, and every earlier frame is presented before it (H.264 IDR, HEVC IDR, VP8/VP9 key
    frames, intra-only codecs). Such GOPs decode independently, so lanes can decode them side by side.
    None for codecs whose key frames may open a GOP (HEVC CRA, MPEG-2, AV1, ...): one lane decodes
    all of those."""
    codec = (codec or "").lower()
    if codec in _KEY_IS_CLOSED:
        return lambda packet: bool(packet.is_keyframe)
    ex = bytes(extradata or b"")
    if codec == "h264":
        size = (ex[4] & 3) + 1 if len(ex) > 4 and ex[0] == 1 else None  # avcC or Annex B
        return lambda packet: bool(packet.is_keyframe) and any(b & 0x1F == 5 for b in nal_headers(bytes(packet), size))
    if codec == "hevc":
        size = (ex[21] & 3) + 1 if len(ex) > 22 and ex[0] == 1 else None  # hvcC or Annex B
        return lambda packet: bool(packet.is_keyframe) and any((b >> 1) & 0x3F in (19, 20) for b in nal_headers(bytes(packet), size))
    return None


MIN_GOP = 24  # packets: the least a split GOP holds (intra-only streams are not split frame by frame)
