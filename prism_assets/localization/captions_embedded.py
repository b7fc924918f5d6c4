"""CEA-608 and CEA-708 closed captions carried with the picture, read into the one cue model (the same QC rules apply).

Two carriages, one decoder:
- **in the video stream** ("A53 closed captions"): ATSC A/53 `cc_data` in H.264/HEVC SEI messages
  (`user_data_registered_itu_t_t35`: country 0xB5, provider 0x0031, `GA94`, type 3) and MPEG-2 picture
  user data (`00 00 01 B2 GA94 03`). Found by demuxing the video stream only, never decoding it: each
  packet's NAL units are walked (length-prefixed as in MP4/MKV, or Annex B start codes as in MPEG-TS)
  and only SEI units are unescaped and read. Detected on the first `DETECT_S` seconds of the video, as
  a probe does (`ffmpeg -i` then says `Closed Captions` on the video stream; `video_has_captions` is that
  check alone, for a probe); a video without caption data there is not read further.
- **a MOV/MP4 `c608` closed-caption track**: FFmpeg's MOV demuxer hands its `cdat`/`cdt2` atoms out as
  the same `cc_data` triplets (streams.py feeds them here).

Decoding: the 608 byte pairs are put back in presentation order (packets come in decode order: B-frames),
split into the four caption channels (CC1/CC2 in field 1, CC3/CC4 in field 2; XDS packets and text-mode
(TR/RTD) data left out), each channel written as an SCC document (frame-numbered 29.97 fps timecodes,
one line per frame) and read by ttconv's SCC reader like an `.scc` sidecar (captions.py): pop-on
captions start when their EOC arrives, roll-up and paint-on as a player shows them, row and column kept
as the cue's `region`. Each pair is a 29.97 fps frame (1001/30000 s) after the previous pair of its field,
as the standard sends them, so a video at 23.976 fps carrying several pairs in a frame keeps its timing.

CEA-708 (DTVCC): the triplets of type 2/3 of the same cc_data go, in presentation order, to captions_708.py,
which decodes each caption service into cues; each service with data is a channel `SERVICE<n>` (codec
`eia_708`) beside the 608 channels (codec `eia_608`). Real streams often carry the same captions in CC1
and service 1: both are kept, each named for what it is. The 708 window positions are laid on the picture's
aspect (16:9 or 4:3, from the video stream). A 708 service's language is the one its caption service descriptor
gives in an MPEG-TS PMT (the video stream's tag otherwise, as for 608). Damaged or cut-short 708 packets are skipped and counted
(one warning on each 708 channel, saying so when they are many).
Bad input is a one-line warning, never a crash: damaged SEI (counted), pairs with a parity error
(dropped, counted), a channel with data but no caption; the whole read stops at `MAX_SCAN_S` of wall
time (the cues up to there are kept, with a warning).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .captions import parse_scc
from .captions_708 import Dtvcc, ts_service_languages
from .subtitles import MAX_CUES, Cue, SubtitleError

FRAME = 1001 / 30000  # one CEA-608 byte pair per field per 29.97 fps frame
A53 = b"GA94\x03"  # ATSC user identifier + user_data_type_code cc_data
T35_A53 = b"\xb5\x00\x31" + A53  # itu_t_t35 country code (USA), provider code (ATSC), then A53
MPEG2_USER_DATA = b"\x00\x00\x01\xb2" + A53
VIDEO_CODECS = frozenset({"h264", "hevc", "mpeg2video"})
CC_CODECS = frozenset({"eia_608", "cc_dec"})  # a MOV c608 track (codec id / FFmpeg's decoder name)
DETECT_S = 30.0  # seconds of video read for caption data before deciding there is none (A53 encoders send it in every picture)
MAX_SCAN_S = 600.0  # wall time for reading one title's video stream
FORMAT = "CEA-608 (embedded)"
FORMAT_708 = "CEA-708 (embedded)"
CODEC_608, CODEC_708 = "eia_608", "eia_708"  # the codec of a caption channel's track (FFmpeg names 608 `eia_608`)
CHANNELS = ("CC1", "CC2", "CC3", "CC4")
_ODD = bytes(0x80 * (bin(b).count("1") % 2 == 0) | b for b in range(128))  # 7-bit value -> byte with odd parity


def _parity_ok(b: int) -> bool:
    return bin(b).count("1") % 2 == 1


@dataclass
class CaptionData:
    """CEA-608 byte pairs of one carriage, as they come (`add`), its CEA-708 packets (decoded as they come), and
    what was wrong with them."""

    pairs: list[tuple[float, int, int, int]] = field(default_factory=list)  # (time s, field, b1, b2), 7-bit, in the order sent
    dtvcc: int = 0  # CEA-708 triplets with data
    wide: bool = True  # the picture is 16:9 (the CEA-708 window anchor grid); False for 4:3
    dtvcc_packets: Dtvcc | None = None  # the CEA-708 decoder, from the first 708 triplet on
    parity_errors: int = 0
    bad_sei: int = 0
    units: int = 0  # pictures / samples that carried cc_data
    last_t: float = 0.0  # time of the last of them (s)

    def add(self, t: float, triplets: bytes) -> None:
        """The cc_data triplets (`marker|valid|type`, byte 1, byte 2) carried by a picture or sample at `t` (s);
        called in presentation order."""
        self.units += 1
        self.last_t = max(self.last_t, t)
        index = {1: 0, 2: 0}
        for i in range(0, len(triplets) - 2, 3):
            head, b1, b2 = triplets[i], triplets[i + 1], triplets[i + 2]
            if not head & 0x04:  # cc_valid
                continue
            kind = head & 0x03
            if kind >= 2:
                self.dtvcc += bool(b1 or b2)
                if self.dtvcc_packets is None:
                    self.dtvcc_packets = Dtvcc(self.wide)
                self.dtvcc_packets.feed(t, kind == 3, b1, b2)
                continue
            fld = kind + 1
            k = index[fld]
            index[fld] += 1
            if (b1 & 0x7F) == 0 and (b2 & 0x7F) == 0:
                continue  # padding
            if not (_parity_ok(b1) and _parity_ok(b2)):
                self.parity_errors += 1
                continue
            self.pairs.append((t + k * FRAME, fld, b1 & 0x7F, b2 & 0x7F))

    def channels(self) -> dict[str, list[tuple[float, int, int]]]:
        """Pairs per caption channel (`CC1`..`CC4`) in presentation order, control codes rewritten as CC1's
        (what an SCC reader reads); XDS and text-mode data left out."""
        out: dict[str, list] = {c: [] for c in CHANNELS}
        for fld in (1, 2):
            current, xds, text_mode = None, False, {1: False, 2: False}
            for t, _, b1, b2 in (p for p in self.pairs if p[1] == fld):  # in the order sent (not by time: see scc_of)
                if fld == 2 and 0x01 <= b1 <= 0x0F:  # XDS: start/continue (0x01-0x0E), end (0x0F)
                    xds = b1 != 0x0F
                    continue
                if 0x10 <= b1 <= 0x1F:
                    xds = False
                    current = 2 if b1 & 0x08 else 1
                    code = b1 & ~0x08
                    if code in (0x14, 0x15) and 0x20 <= b2 <= 0x2F:  # miscellaneous control code (field 2 uses 0x15)
                        code = 0x14
                        if b2 in (0x2A, 0x2B):  # TR, RTD: text service from here
                            text_mode[current] = True
                        elif b2 in (0x20, 0x25, 0x26, 0x27, 0x29):  # RCL, RU2-4, RDC: captions again
                            text_mode[current] = False
                    if not text_mode[current]:
                        out[CHANNELS[(fld - 1) * 2 + current - 1]].append((t, code, b2))
                elif current is not None and not xds and not text_mode[current] and (b1 >= 0x20 or (b1 == 0 and b2 >= 0x20)):
                    pair = (t, b1, b2) if b1 >= 0x20 else (t, b2, 0)  # a null then a character: the character
                    out[CHANNELS[(fld - 1) * 2 + current - 1]].append(pair)
        return {c: v for c, v in out.items() if v}


def scc_of(pairs: list[tuple[float, int, int]]) -> tuple[str, float]:
    """(SCC document, its time zero in s) of one channel's pairs (7-bit, CC1 codes): each pair on the 29.97 fps
    frame nearest its time counted from the first pair (no rounding at all for 29.97 fps pictures), never before
    the frame after the previous pair."""
    t0 = min(p[0] for p in pairs)
    lines, last = ["Scenarist_SCC V1.0", ""], -1
    for t, b1, b2 in pairs:
        n = max(round((t - t0) / FRAME), last + 1)
        last = n
        tc = f"{n // 108000:02d}:{n // 1800 % 60:02d}:{n // 30 % 60:02d}:{n % 30:02d}"  # NDF labels: frame n at n * 1001/30000 s
        lines.append(f"{tc}\t{_ODD[b1]:02x}{_ODD[b2]:02x}")
        lines.append("")
    return "\n".join(lines), t0


@dataclass
class CaptionChannel:
    channel: str  # CC1..CC4 (CEA-608), SERVICE1..SERVICE63 (CEA-708)
    cues: list[Cue]
    warnings: list[str]
    codec: str = CODEC_608  # CODEC_708 for a CEA-708 service
    language: str | None = None  # a 708 service's language from the caption service descriptor (MPEG-TS), as sent


def decode(data: CaptionData) -> tuple[list[CaptionChannel], list[str]]:
    """(channels with cues or with a warning, warnings about the carriage as a whole)."""
    notes = []
    if data.bad_sei:
        notes.append(f"{data.bad_sei} damaged caption SEI/user data message(s) skipped")
    if data.parity_errors:
        notes.append(f"{data.parity_errors} CEA-608 byte pair(s) with a parity error dropped")
    chans = data.channels()
    out = []
    for name, pairs in chans.items():
        scc, t0 = scc_of(pairs)
        try:
            subs = parse_scc(scc)
        except SubtitleError as exc:
            out.append(CaptionChannel(name, [], [f"{name}: {len(pairs)} caption byte pair(s) but no caption ({exc})"]))
            continue
        cues = [Cue(round(c.start + t0, 3), round(c.end + t0, 3), c.text, c.raw, c.style, c.region) for c in subs.cues]
        notes_here = [] if cues else [f"{name}: {len(pairs)} caption byte pair(s) but no caption shown"]
        if len(cues) > MAX_CUES:
            notes_here.append(f"{name}: {len(cues)} captions: more than {MAX_CUES}, the rest not read")
            del cues[MAX_CUES:]
        out.append(CaptionChannel(name, cues, notes_here + list(subs.warnings)))
    if data.dtvcc_packets is not None:
        services, packet_notes = data.dtvcc_packets.finish(data.last_t)
        for number, cues, warnings in services:
            name = f"SERVICE{number}"
            empty = [] if cues else [f"{name}: CEA-708 caption data but no caption shown"]
            out.append(CaptionChannel(name, cues, packet_notes + empty + warnings, CODEC_708))
        if not services:
            notes += packet_notes + [f"CEA-708 (DTVCC) data in {data.dtvcc} triplet(s) but no caption service in it"]
    return out, notes


# -- the video stream's SEI / user data --------------------------------------------------------------------
def unescape(rbsp: bytes) -> bytes:
    """An H.264/HEVC NAL unit's payload without its emulation-prevention bytes (00 00 03 -> 00 00)."""
    if b"\x00\x00\x03" not in rbsp:
        return rbsp
    out, i = bytearray(), 0
    while True:
        j = rbsp.find(b"\x00\x00\x03", i)
        if j < 0:
            out += rbsp[i:]
            return bytes(out)
        out += rbsp[i:j + 2]
        i = j + 3


def _sei_number(rbsp: bytes, i: int) -> tuple[int | None, int]:
    """An SEI payload type or size at `i` (0xFF bytes each add 255, the next byte ends it): (value, next index), or
    (None, i) when the unit ends inside it."""
    v, n = 0, len(rbsp)
    while i < n and rbsp[i] == 0xFF:
        v += 255
        i += 1
    if i >= n:
        return None, i
    return v + rbsp[i], i + 1


def sei_cc_data(rbsp: bytes) -> tuple[bytes, bool]:
    """(cc_data triplets, damaged) of one SEI NAL unit's payload (header removed, unescaped)."""
    out, i, n = b"", 0, len(rbsp)
    while i < n and not (rbsp[i] == 0x80 and i == n - 1):
        ptype, i = _sei_number(rbsp, i)
        psize, i = _sei_number(rbsp, i) if ptype is not None else (None, i)
        if psize is None:
            return out, True
        if i + psize > n:
            return out, True
        if ptype == 4 and rbsp[i:i + 8] == T35_A53:
            trip, bad = a53_cc_data(rbsp[i + 8:i + psize])
            if bad:
                return out, True
            out += trip
        i += psize
    return out, False


def a53_cc_data(body: bytes) -> tuple[bytes, bool]:
    """(triplets, damaged) of an A/53 cc_data() body: flags|cc_count, em_data, cc_count triplets."""
    if len(body) < 2:
        return b"", True
    if not body[0] & 0x40:  # process_cc_data_flag
        return b"", False
    count = body[0] & 0x1F
    trip = body[2:2 + 3 * count]
    return trip, len(trip) < 3 * count


def nal_units(data: bytes, length_size: int | None):
    """NAL units of a packet: length-prefixed (MP4/MKV, `length_size` bytes) or Annex B (start codes)."""
    if length_size:
        i, n = 0, len(data)
        while i + length_size <= n:
            size = int.from_bytes(data[i:i + length_size], "big")
            i += length_size
            if size <= 0 or i + size > n:
                return
            yield data[i:i + size]
            i += size
        return
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        j = data.find(b"\x00\x00\x01", i + 3)
        yield data[i + 3:j if j >= 0 else len(data)].rstrip(b"\x00")
        i = j


def packet_cc_data(data: bytes, codec: str, length_size: int | None) -> tuple[bytes, int]:
    """(cc_data triplets, damaged messages) of one video packet."""
    if codec == "mpeg2video":
        out, bad, i = b"", 0, data.find(MPEG2_USER_DATA)
        while i >= 0:
            trip, damaged = a53_cc_data(data[i + len(MPEG2_USER_DATA):i + len(MPEG2_USER_DATA) + 2 + 3 * 31])
            out, bad = out + trip, bad + damaged
            i = data.find(MPEG2_USER_DATA, i + 1)
        return out, bad
    out, bad = b"", 0
    if T35_A53 not in data:  # the ATSC identifier never straddles an emulation-prevention byte (no 00 00 in it)
        return out, bad
    for nal in nal_units(data, length_size):
        if not nal:
            continue
        if codec == "h264" and nal[0] & 0x1F == 6:
            body = nal[1:]
        elif codec == "hevc" and len(nal) > 2 and (nal[0] >> 1) & 0x3F in (39, 40):
            body = nal[2:]
        else:
            continue
        trip, damaged = sei_cc_data(unescape(body))
        out, bad = out + trip, bad + damaged
    return out, bad


def length_size(codec: str, extradata: bytes | None) -> int | None:
    """NAL length field size of MP4/MKV H.264 (avcC) / HEVC (hvcC) extradata; None for Annex B."""
    if not extradata or extradata[:3] == b"\x00\x00\x01" or extradata[:4] == b"\x00\x00\x00\x01":
        return None
    if codec == "h264" and len(extradata) > 4 and extradata[0] == 1:
        return (extradata[4] & 0x03) + 1
    if codec == "hevc" and len(extradata) > 21:
        return (extradata[21] & 0x03) + 1
    return None


@dataclass
class VideoCaptions:
    stream_index: int
    codec: str
    language: str | None  # the video stream's language tag, as muxed
    title: str | None
    channels: list[CaptionChannel]
    warnings: list[str]


def _video_stream(container):
    """The first H.264/HEVC/MPEG-2 video stream that is not a cover picture, or None."""
    import av

    return next((s for s in container.streams.video if s.codec_context and s.codec_context.name in VIDEO_CODECS
                 and not (s.disposition and s.disposition & av.stream.Disposition.attached_pic)), None)


def _wide(video) -> bool:
    """Whether the picture is wider than 3:2 (16:9 rather than 4:3: the CEA-708 anchor grid); True when unknown."""
    cc = video.codec_context
    sar = video.sample_aspect_ratio or 1
    return not (cc.width and cc.height) or cc.width * float(sar) / cc.height >= 1.5


def video_has_captions(path: str, detect_s: float = DETECT_S) -> bool:
    """Whether the video stream carries A53 caption data in its first `detect_s` seconds (demux only)."""
    import av

    with av.open(str(path)) as container:
        video = _video_stream(container)
        if video is None:
            return False
        codec = video.codec_context.name
        nal_len, first = length_size(codec, video.codec_context.extradata), None
        for packet in container.demux(video):
            if packet.size == 0 or packet.pts is None:
                continue
            t = float(packet.pts * packet.time_base)
            first = t if first is None else min(first, t)
            if packet_cc_data(bytes(packet), codec, nal_len)[0]:
                return True
            if t - first > detect_s:
                return False
    return False


def read_video_captions(path: str, detect_s: float = DETECT_S, max_scan_s: float = MAX_SCAN_S) -> VideoCaptions | None:
    """The CEA-608 and CEA-708 captions in the first H.264/HEVC/MPEG-2 video stream of a file, or None when it has
    none in its first `detect_s` seconds (or no such stream). Demux only: no frame is decoded."""
    import av

    with av.open(str(path)) as container:
        video = _video_stream(container)
        if video is None:
            return None
        codec, index, meta = video.codec_context.name, video.index, dict(video.metadata or {})
        mpegts = container.format.name == "mpegts"
        nal_len = length_size(codec, video.codec_context.extradata)
        data, found, first, frames = CaptionData(wide=_wide(video)), [], None, 0
        deadline, stopped = time.monotonic() + max_scan_s, None
        for packet in container.demux(video):
            if packet.size == 0 or packet.pts is None:
                continue
            t = float(packet.pts * packet.time_base)
            first = t if first is None else min(first, t)
            frames += 1
            trip, bad = packet_cc_data(bytes(packet), codec, nal_len)
            data.bad_sei += bad
            if trip or bad:
                found.append((t, trip))
            elif not found and t - first > detect_s:
                return None
            if time.monotonic() > deadline:
                stopped = t
                break
    if not found:
        return None
    for t, trip in sorted(found, key=lambda x: x[0]):  # presentation order
        data.add(t, trip)
    channels, notes = decode(data)
    languages = ts_service_languages(str(path)) if mpegts and data.dtvcc_packets is not None else {}
    for ch in channels:
        if ch.codec == CODEC_708:
            ch.language = languages.get(int(ch.channel.removeprefix("SERVICE")))
    if stopped is not None:
        notes.append(f"caption data read up to {stopped:.1f} s only: the {max_scan_s:g} s time limit for reading the video ran out")
    if not channels and not data.dtvcc:
        notes.append(f"caption data in {data.units} of {frames} pictures but no CEA-608 or CEA-708 caption in it")
    return VideoCaptions(index, codec, meta.get("language"), meta.get("title"), channels, notes)
