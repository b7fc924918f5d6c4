"""Closed captions carried in the video stream, written by the tests with exact truth (test_captions_embedded.py,
test_captions_708.py).

- CEA-608: an SRT made into an SCC by ttconv's writer; the SCC's byte pairs on their 29.97 fps frames.
- CEA-708: caption service codes written here (`Codes`) from the CEA-708 tables, packed into DTVCC packets
  (one service block per packet, a packet never split over pictures) and scheduled on 29.97 fps frames
  (`Dtvcc708.at` returns the time of the picture whose data completes the packet: when a decoder acts on it).
- Both carried as A/53 cc_data SEI in the packets of an x264/x265 MP4 (`embed_a53`): FFmpeg can only pass A53
  through from a source that has it, so the SEI NAL units are written here.
"""

from __future__ import annotations

import io
import math
import re
import subprocess

FRAME = 1001 / 30000
MAX_TRIPLETS = 31  # cc_count is 5 bits
PACKET_TRIPLETS = 17  # a packet of one 31-byte service block, padded: 34 bytes


def srt_of(cues) -> str:
    def ts(t):
        ms = round(t * 1000)
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"
    return "".join(f"{i}\n{ts(a)} --> {ts(b)}\n{text}\n\n" for i, (a, b, text) in enumerate(cues, 1))


def scc_of(cues) -> str:
    from ttconv.scc.writer import from_model
    from ttconv.srt.reader import to_model

    return from_model(to_model(io.StringIO(srt_of(cues))))


def scc_words(scc: str) -> dict[int, bytes]:
    """29.97 fps frame number -> the byte pair (with parity) an SCC file sends on it."""
    from ttconv.time_code import FPS_29_97, SmpteTimeCode

    words = {}
    for line in scc.splitlines():
        if "\t" in line:
            tc, ws = line.split("\t")
            n = SmpteTimeCode.parse(tc, FPS_29_97).to_frames()
            for i, w in enumerate(ws.split()):
                words[n + i] = bytes.fromhex(w)
    return words


def escape(b: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for x in b:
        if zeros >= 2 and x <= 3:
            out.append(3)
            zeros = 0
        out.append(x)
        zeros = zeros + 1 if x == 0 else 0
    return bytes(out)


def sei_nal(triplets: bytes, hevc: bool) -> bytes:
    """An H.264 (type 6) / HEVC (prefix SEI, type 39) NAL unit with one A/53 cc_data message."""
    assert len(triplets) // 3 <= MAX_TRIPLETS
    payload = b"\xb5\x00\x31GA94\x03" + bytes([0x40 | len(triplets) // 3, 0xFF]) + triplets + b"\xff"
    return (b"\x4e\x01" if hevc else b"\x06") + escape(bytes([4, len(payload)]) + payload + b"\x80")


def embed_a53(src, dst, words: dict[int, bytes], hevc=False, dtvcc: dict[int, bytes] | None = None) -> bool:
    """Copy of `src` (MP4, 4-byte NAL lengths) whose every picture carries A/53 cc_data: the field-1 pairs of the
    29.97 fps frames it covers (padding when none), a field-2 padding pair, then the CEA-708 triplets of those
    frames (`dtvcc`: frame -> triplets). True when the pictures are reordered."""
    import av

    dtvcc = dtvcc or {}
    with av.open(str(src)) as i:
        packets = [p for p in i.demux(i.streams.video[0]) if p.size]
        shown = sorted(float(p.pts * p.time_base) for p in packets)
        frame_s = shown[1] - shown[0]
        with av.open(str(dst), "w") as o:
            vo = o.add_stream_from_template(i.streams.video[0])
            for p in packets:
                t = float(p.pts * p.time_base)
                first, end = math.ceil(t / FRAME - 1e-6), math.ceil((t + frame_s) / FRAME - 1e-6)
                trip = b"".join(b"\xfc" + words.get(n, b"\x80\x80") for n in range(first, end)) + b"\xfd\x80\x80"
                trip += b"".join(dtvcc.get(n, b"") for n in range(first, end))
                nal = sei_nal(trip, hevc)
                q = av.Packet(len(nal).to_bytes(4, "big") + nal + bytes(p))
                q.pts, q.dts, q.duration, q.time_base, q.is_keyframe, q.stream = p.pts, p.dts, p.duration, p.time_base, p.is_keyframe, vo
                o.mux(q)
    decode_order = [p.pts for p in packets]
    return decode_order != sorted(decode_order)


# -- CEA-708 ------------------------------------------------------------------------------------------------
G2_OF = {"\u2026": 0x25, "\u2018": 0x31, "\u2019": 0x32, "\u201c": 0x33, "\u201d": 0x34, "\u2022": 0x35, "\u2122": 0x39, "\u0153": 0x3C}


class Codes:
    """CEA-708 service codes (CEA-708-E 7.1), as bytes."""

    CR, ETX, BS, FF, HCR, DLC, RST = b"\x0d", b"\x03", b"\x08", b"\x0c", b"\x0e", b"\x8e", b"\x8f"
    SPA = b"\x90\x05\x00"  # pen size standard, italics off...: read over
    SPC = b"\x91\x3f\x00\x00"  # pen colours: read over
    SWA = b"\x97\x00\x00\x00\x00"  # window attributes: read over

    @staticmethod
    def df(n, visible=False, rows=2, cols=32, v=90, h=50, relative=True, point=7, priority=0) -> bytes:
        """DefineWindow n (0-7): anchored at (v, h) (percent when `relative`), `point` 0..8 (7: bottom centre)."""
        return bytes([0x98 | n, (0x20 if visible else 0) | priority, (0x80 if relative else 0) | v, h, point << 4 | (rows - 1), cols - 1, 0x09])

    @staticmethod
    def cw(n) -> bytes:
        return bytes([0x80 | n])

    @staticmethod
    def windows(code, *ns) -> bytes:
        """CLW 0x88, DSW 0x89, HDW 0x8A, TGW 0x8B, DLW 0x8C with the window bitmap."""
        return bytes([code, sum(1 << n for n in ns)])

    @staticmethod
    def dly(tenths) -> bytes:
        return bytes([0x8D, tenths])

    @staticmethod
    def spl(row, col) -> bytes:
        return bytes([0x92, row, col])

    @staticmethod
    def text(s: str) -> bytes:
        """Characters: G0 (ASCII; the music note is 0x7F), G1 (Latin-1), G2 marks after EXT1, others as P16; `\\n` is CR."""
        out = bytearray()
        for ch in s:
            c = ord(ch)
            if ch == "\n":
                out += b"\x0d"
            elif ch == "\u266a":
                out.append(0x7F)
            elif 0x20 <= c < 0x7F or 0xA0 <= c <= 0xFF:
                out.append(c)
            elif ch in G2_OF:
                out += bytes([0x10, G2_OF[ch]])
            else:
                out += bytes([0x18, c >> 8, c & 0xFF])
        return bytes(out)


def service_blocks(service: int, codes: list[bytes]) -> list[bytes]:
    """Service blocks (at most 31 bytes of codes each, a code never split) of one service."""
    blocks, cur = [], b""
    for code in codes:
        assert len(code) <= 31
        if len(cur) + len(code) > 31:
            blocks.append(cur)
            cur = b""
        cur += code
    blocks.append(cur)
    head = (lambda n: bytes([service << 5 | n])) if service < 7 else (lambda n: bytes([7 << 5 | n, service]))
    return [head(len(b)) + b for b in blocks if b]


def packet_triplets(seq: int, data: bytes) -> bytes:
    """One DTVCC packet (`data`: its service blocks) as cc_data triplets: a start (cc_type 3), then data (type 2)."""
    size = len(data) + 1
    size += size % 2
    packet = bytes([(seq & 3) << 6 | (size // 2 & 0x3F)]) + data + bytes(size - 1 - len(data))
    return b"".join(bytes([0xFF if i == 0 else 0xFE]) + packet[i:i + 2] for i in range(0, len(packet), 2))


class Dtvcc708:
    """CEA-708 packets scheduled on 29.97 fps frames: `frames` (frame -> triplets) is what `embed_a53` takes."""

    def __init__(self):
        self.frames: dict[int, bytes] = {}
        self.seq = 0

    def at(self, t: float, service: int, *codes: bytes) -> float:
        """Send `codes` of `service` from the first free frame at or after `t` (one packet per frame); the time of the
        frame whose picture completes the last packet."""
        n = math.ceil(t / FRAME - 1e-6)
        for block in service_blocks(service, list(codes)):
            while n in self.frames:
                n += 1
            self.frames[n] = packet_triplets(self.seq, block)
            self.seq += 1
        return round(n * FRAME, 6)

    def raw(self, t: float, triplets: bytes) -> None:
        """Put triplets as they are (damaged packets) on the first free frame at or after `t`; a packet start gets the
        next sequence number."""
        if triplets[:1] == b"\xff":
            triplets = bytes([0xFF, (self.seq & 3) << 6 | (triplets[1] & 0x3F)]) + triplets[2:]
            self.seq += 1
        n = math.ceil(t / FRAME - 1e-6)
        while n in self.frames:
            n += 1
        self.frames[n] = triplets


# -- FFmpeg, the witness ------------------------------------------------------------------------------------
def ffmpeg(*args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, args)], check=True, capture_output=True, timeout=timeout)


def ffmpeg_subcc(path) -> list[tuple[float, float, str]]:
    """FFmpeg's own reading of the A53 captions of a file (its CEA-608 decoder), as (start, end, text)."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"movie={path}[out+subcc]", "-map", "0:1", "-f", "srt", "-"],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    cues = []
    for block in out.strip().split("\n\n"):
        lines = block.split("\n")
        a, b = [sum(float(x) * m for x, m in zip(ts.replace(",", ".").split(":"), (3600, 60, 1))) for ts in lines[1].split(" --> ")]
        cues.append((a, b, re.sub(r"<[^>]+>|\{[^}]*\}", "", "\n".join(lines[2:]))))
    return cues


def ffmpeg_says_closed_captions(path) -> bool:
    err = subprocess.run(["ffmpeg", "-hide_banner", "-i", str(path)], capture_output=True, text=True, timeout=60).stderr
    return any("Video:" in ln and "Closed Captions" in ln for ln in err.splitlines())


def with_caption_service_descriptor(ts: bytes, services: list[tuple[str, int]], pmt_pid: int = 0x1000) -> bytes:
    """An MPEG-TS (as FFmpeg writes it: its PMT on PID 0x1000, in one packet) whose PMT gives its H.264 stream an
    ATSC caption service descriptor (tag 0x86) naming `services` (ISO 639-2 code, 708 service number)."""
    from prism_assets.localization.captions_708 import mpeg_crc32

    body = bytes([0xE0 | len(services)]) + b"".join(lang.encode() + bytes([0xC0 | n, 0x7F, 0xFF]) for lang, n in services)
    desc = bytes([0x86, len(body)]) + body
    out, patched = bytearray(ts), 0
    for i in range(0, len(out) - 187, 188):
        p = out[i:i + 188]
        if (p[1] & 0x1F) << 8 | p[2] != pmt_pid or not p[1] & 0x40 or p[3] >> 4 != 1:
            continue
        j = 5 + p[4]
        sec = bytearray(p[j:j + 3 + ((p[j + 1] & 0x0F) << 8 | p[j + 2])])
        k = 12 + ((sec[10] & 0x0F) << 8 | sec[11])
        while k < len(sec) - 4 and sec[k] != 0x1B:
            k += 5 + ((sec[k + 3] & 0x0F) << 8 | sec[k + 4])
        es_len = ((sec[k + 3] & 0x0F) << 8 | sec[k + 4]) + len(desc)
        sec[k + 3:k + 5] = bytes([0xF0 | es_len >> 8, es_len & 0xFF])
        sec[k + 5:k + 5] = desc
        sec = sec[:-4]
        length = len(sec) + 4 - 3
        sec[1:3] = bytes([0xB0 | length >> 8, length & 0xFF])
        sec += mpeg_crc32(bytes(sec)).to_bytes(4, "big")
        out[i + j:i + 188] = bytes(sec) + b"\xff" * (188 - j - len(sec))
        patched += 1
    assert patched
    return bytes(out)
