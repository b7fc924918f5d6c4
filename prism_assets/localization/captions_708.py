"""CEA-708 (DTVCC) closed captions from A/53 `cc_data`, read into the one cue model (captions_embedded.py feeds it).

The layers, as CEA-708-E defines them:
- **DTVCC packets**: the cc_data triplets of type 3 (packet start) and 2 (packet data), in presentation order.
  A packet's first byte is `sequence(2) | size code(6)`; the packet is `size code * 2` bytes (128 for 0).
  A packet cut short by the next start, and one whose service blocks overrun it, is skipped and counted.
- **service blocks**: `service number(3) | block size(5)` (number 7: the extended number in the next byte),
  a block of number 0 ends the packet (padding). Each caption service (1..63; 1 is the primary language,
  2 the secondary) gets its own decoder.
- **the service's code space**: G0 (ASCII, 0x7F the music note), G1 (Latin-1), G2/G3 through EXT1 (the
  typographic marks, box drawing, fractions, the [CC] icon); C0 (ETX, BS, FF, CR, HCR, P16: a 16-bit character),
  C1 (CW0-7, CLW, DSW, HDW, TGW, DLW, DLY, DLC, RST, SPA, SPC, SPL, SWA, DF0-7), C2/C3 skipped by their length.
  Every code has its fixed length (C3's variable codes say theirs), so a code we do not act on is skipped
  whole; a code cut off by the end of its service block is dropped and counted.

Cues: what is on screen is looked at after each service block (at the time of the picture that completed
its packet; later when a DLY holds the service): each visible window's text (its rows, trailing blanks and
empty rows dropped) is keyed by its window and text, and a key on screen over consecutive looks is one cue,
from when its window was shown (DFn visible, DSW, TGW) or its text written, to when it was hidden, cleared,
deleted or rewritten: the rule captions.py applies to TTML/SCC states. A window's region is its position
as TTML would write it (`w<n> origin x%,y% extent w%xh%`), from its anchor (relative, or on the 210x75
grid of a 16:9 picture, 160x75 for 4:3) and its size in character cells (42 or 32 columns, 15 rows).
Pen and window styles (colours, fonts, justification, print direction) are read over, not kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .subtitles import MAX_CUES, Cue

MANY_BAD = 0.1  # share of damaged packets from which the 708 captions are said to be unreliable
MAX_ROWS, MAX_COLS = 16, 64  # what the DFn fields can say (4 and 6 bits)
G2 = {0x20: " ", 0x21: "\u00a0", 0x25: "\u2026", 0x2A: "\u0160", 0x2C: "\u0152", 0x30: "\u2588", 0x31: "\u2018", 0x32: "\u2019",
      0x33: "\u201c", 0x34: "\u201d", 0x35: "\u2022", 0x39: "\u2122", 0x3A: "\u0161", 0x3C: "\u0153", 0x3D: "\u2120", 0x3F: "\u0178",
      0x76: "\u215b", 0x77: "\u215c", 0x78: "\u215d", 0x79: "\u215e", 0x7A: "\u2502", 0x7B: "\u2510", 0x7C: "\u2514", 0x7D: "\u2500",
      0x7E: "\u2518", 0x7F: "\u250c"}
G3 = {0xA0: "[CC]"}
UNKNOWN_CHAR = "_"  # what CEA-708 asks a decoder to show for a character it lacks
C1_LENGTH = {**{c: 1 for c in range(0x80, 0x88)}, 0x88: 2, 0x89: 2, 0x8A: 2, 0x8B: 2, 0x8C: 2, 0x8D: 2, 0x8E: 1, 0x8F: 1,
             0x90: 3, 0x91: 4, 0x92: 3, 0x93: 1, 0x94: 1, 0x95: 1, 0x96: 1, 0x97: 5, **{c: 7 for c in range(0x98, 0xA0)}}


def code_length(data: bytes, i: int) -> int | None:
    """Length in bytes of the code starting at `data[i]` (None: it needs bytes past the end of `data`)."""
    c, n = data[i], len(data)
    if c < 0x20:
        length = 1 if c < 0x10 else 2 if c < 0x18 else 3
        if c == 0x10:  # EXT1: the extended code spaces C2, G2, C3, G3
            if i + 1 >= n:
                return None
            e = data[i + 1]
            if e < 0x20:
                length = 2 + (0 if e < 0x08 else 1 if e < 0x10 else 2 if e < 0x18 else 3)
            elif 0x80 <= e < 0x88:
                length = 6
            elif 0x88 <= e < 0x90:
                length = 7
            elif 0x90 <= e < 0xA0:  # variable length: a header byte whose low 6 bits count the bytes after it
                if i + 2 >= n:
                    return None
                length = 3 + (data[i + 2] & 0x3F)
    elif 0x80 <= c < 0xA0:
        length = C1_LENGTH[c]
    else:
        length = 1
    return length if i + length <= n else None


def commands(block: bytes) -> tuple[list[bytes], bool]:
    """(the codes of one service block, each whole, in order; whether the last one was cut off by its end)."""
    out, i = [], 0
    while i < len(block):
        length = code_length(block, i)
        if length is None:
            return out, True
        out.append(block[i:i + length])
        i += length
    return out, False


def service_blocks(packet: bytes) -> tuple[list[tuple[int, bytes]], bool]:
    """((service number, block data) of a DTVCC packet's data (its header byte removed), damaged): damaged when a
    block runs past the packet or a block of service 0 has a size."""
    out, i, n = [], 0, len(packet)
    while i < n:
        number, size = packet[i] >> 5, packet[i] & 0x1F
        i += 1
        if number == 0:
            return out, size != 0  # the null block: the rest is padding
        if number == 7:  # extended service number
            if i >= n:
                return out, True
            number = packet[i] & 0x3F
            i += 1
        if i + size > n:
            return out, True
        if size:
            out.append((number, packet[i:i + size]))
        i += size
    return out, False


def _pct(x: float) -> str:
    return f"{round(min(max(x, 0.0), 100.0), 2):g}%"


@dataclass
class Window:
    visible: bool
    rows: int
    cols: int
    anchor: tuple[bool, int, int, int]  # (relative, vertical, horizontal, anchor point 0..8)
    grid: list[list[str]] = field(default_factory=list)
    row: int = 0
    col: int = 0

    def __post_init__(self):
        self.grid = self.grid or [[" "] * MAX_COLS for _ in range(self.rows)]

    def resize(self, rows: int) -> None:
        self.grid = (self.grid + [[" "] * MAX_COLS for _ in range(rows)])[:rows]
        self.rows, self.row = rows, min(self.row, rows - 1)

    def clear(self) -> None:
        self.grid = [[" "] * MAX_COLS for _ in range(self.rows)]
        self.row = self.col = 0

    def put(self, ch: str) -> None:
        if self.col < MAX_COLS:
            self.grid[self.row][self.col] = ch
            self.col += 1

    def carriage_return(self) -> None:
        self.col = 0
        if self.row + 1 < self.rows:
            self.row += 1
        else:  # at the bottom: the rows roll up
            self.grid = self.grid[1:] + [[" "] * MAX_COLS]

    def text(self) -> str:
        lines = ("".join(r).replace("\u00a0", " ").strip() for r in self.grid)
        return "\n".join(" ".join(ln.split()) for ln in lines if ln.strip())

    def region(self, n: int, wide: bool) -> str:
        relative, v, h, point = self.anchor
        cols_on_screen = 42 if wide else 32
        x, y = (h, v) if relative else (h * 100 / (210 if wide else 160), v * 100 / 75)
        w, ht = min(self.cols, cols_on_screen) * 100 / cols_on_screen, self.rows * 100 / 15
        x -= w * (point % 3) / 2
        y -= ht * (point // 3) / 2
        return f"w{n} origin {_pct(x)},{_pct(y)} extent {_pct(w)}x{_pct(ht)}"


class Service:
    """One caption service's eight windows and the cues they showed."""

    def __init__(self, number: int, wide: bool = True):
        self.number, self.wide = number, wide
        self.windows: list[Window | None] = [None] * 8
        self.current: int | None = None
        self.delay_until: float | None = None
        self.last = float("-inf")  # time of the last look at the screen
        self.shown: dict[tuple[str, str], float] = {}  # (region, text) on screen -> since
        self.cues: list[Cue] = []
        self.dropped = 0  # codes cut off by the end of their block
        self.too_many = False

    def block(self, t: float, data: bytes) -> None:
        """One service block's codes, received with the picture at `t` (s)."""
        now = t if self.delay_until is None or t >= self.delay_until else self.delay_until
        if self.delay_until is not None and t >= self.delay_until:
            self.delay_until = None
        codes, cut = commands(data)
        self.dropped += cut
        for code in codes:
            c = code[0]
            if c == 0x8D:  # DLY: what follows waits tenths of a second
                self.look(now)
                self.delay_until = now + code[1] / 10
                now = self.delay_until
            elif c == 0x8E:  # DLC
                self.look(now)
                self.delay_until, now = None, max(t, self.last)
            else:
                self.code(code)
        self.look(now)

    def code(self, code: bytes) -> None:
        c, w = code[0], self.windows[self.current] if self.current is not None else None
        if c >= 0x20 and not 0x80 <= c < 0xA0:  # G0 / G1
            if w:
                w.put("\u266a" if c == 0x7F else chr(c))
        elif c == 0x10:  # EXT1
            e = code[1]
            if w and 0x20 <= e < 0x80:
                w.put(G2.get(e, UNKNOWN_CHAR))
            elif w and e >= 0xA0:
                w.put(G3.get(e, UNKNOWN_CHAR))
        elif c == 0x18:  # P16: a 16-bit character
            u = code[1] << 8 | code[2]
            if w and u >= 0x20 and not 0xD800 <= u < 0xE000:
                w.put(chr(u))
        elif c < 0x20:  # C0
            if not w:
                return
            if c == 0x08 and w.col > 0:  # BS
                w.col -= 1
                w.grid[w.row][w.col] = " "
            elif c == 0x0C:  # FF
                w.clear()
            elif c == 0x0D:  # CR
                w.carriage_return()
            elif c == 0x0E:  # HCR
                w.grid[w.row] = [" "] * MAX_COLS
                w.col = 0
        elif c < 0x88:  # CW0-7
            if self.windows[c & 7] is not None:
                self.current = c & 7
        elif c <= 0x8C:  # CLW DSW HDW TGW DLW: a bitmap of windows
            for n in range(8):
                if not code[1] >> n & 1 or self.windows[n] is None:
                    continue
                win = self.windows[n]
                if c == 0x88:
                    win.clear()
                elif c in (0x89, 0x8A, 0x8B):
                    win.visible = c == 0x89 or (c == 0x8B and not win.visible)
                else:
                    self.windows[n] = None
                    self.current = None if self.current == n else self.current
        elif c == 0x8F:  # RST
            self.windows, self.current, self.delay_until = [None] * 8, None, None
        elif c == 0x92 and w:  # SPL
            w.row, w.col = min(code[1] & 0x0F, w.rows - 1), min(code[2] & 0x3F, MAX_COLS - 1)
        elif c >= 0x98:  # DF0-7
            self.define(c & 7, code[1:])

    def define(self, n: int, p: bytes) -> None:
        rows, cols = min((p[3] & 0x0F) + 1, MAX_ROWS), (p[4] & 0x3F) + 1
        anchor = (bool(p[1] & 0x80), p[1] & 0x7F, p[2], p[3] >> 4)
        w = self.windows[n]
        if w is None:
            self.windows[n] = Window(bool(p[0] & 0x20), rows, cols, anchor)
        else:  # an existing window keeps its text
            w.visible, w.cols, w.anchor = bool(p[0] & 0x20), cols, anchor
            if rows != w.rows:
                w.resize(rows)
        self.current = n

    def look(self, t: float) -> None:
        """What is on screen at `t`: cues end for what left it, begin for what came."""
        t = max(t, self.last)
        self.last = t
        now = {}
        for n, w in enumerate(self.windows):
            if w is not None and w.visible:
                text = w.text()
                if text:
                    now[(w.region(n, self.wide), text)] = t
        for key in [k for k in self.shown if k not in now]:
            self._cue(self.shown.pop(key), t, key)
        for key in now:
            self.shown.setdefault(key, t)

    def _cue(self, start: float, end: float, key: tuple[str, str]) -> None:
        if end <= start:
            return
        if len(self.cues) >= MAX_CUES:
            self.too_many = True
            return
        self.cues.append(Cue(round(start, 3), round(end, 3), key[1], key[1], None, key[0]))

    def finish(self, t: float) -> list[str]:
        """The cues still on screen end at `t` (the last caption data); the service's warnings."""
        warnings = [f"SERVICE{self.number}: a caption at {s:.3f} s was still on screen when the caption data ended: ended there"
                    for s in self.shown.values() if t > s]
        for key, start in list(self.shown.items()):
            self._cue(start, max(t, self.last), key)
        self.shown = {}
        self.cues.sort(key=lambda c: (c.start, c.end))
        if self.dropped:
            warnings.append(f"SERVICE{self.number}: {self.dropped} CEA-708 code(s) cut off by the end of their service block dropped")
        if self.too_many:
            warnings.append(f"SERVICE{self.number}: more than {MAX_CUES} captions, the rest not read")
        return warnings


@dataclass
class Dtvcc:
    """DTVCC packets put together from cc_data triplets (`feed`, in presentation order), decoded service by service."""

    wide: bool = True  # a 16:9 picture (the 210-wide anchor grid); False for 4:3
    services: dict[int, Service] = field(default_factory=dict)
    packets: int = 0
    bad: int = 0  # packets cut short, or whose service blocks overran them
    lost: int = 0  # gaps in the packet sequence numbers
    last_t: float = 0.0
    _buf: bytearray | None = None
    _size: int = 0
    _seq: int | None = None

    def feed(self, t: float, start: bool, b1: int, b2: int) -> None:
        """One valid DTVCC triplet (`start`: cc_type 3) of the picture at `t` (s)."""
        self.last_t = t
        if start:
            if self._buf is not None:  # the previous packet never reached its size
                self.packets += 1
                self.bad += 1
            seq = b1 >> 6
            if self._seq is not None and seq != (self._seq + 1) % 4:
                self.lost += 1
            self._seq, self._size, self._buf = seq, (b1 & 0x3F) * 2 or 128, bytearray((b1, b2))
        elif self._buf is None:
            return  # data with no packet start (joined mid-packet, or after a damaged start): nothing to put it in
        else:
            self._buf += bytes((b1, b2))
        if len(self._buf) >= self._size:
            packet, self._buf = bytes(self._buf[1:self._size]), None
            self.packets += 1
            blocks, damaged = service_blocks(packet)
            if damaged:  # a packet whose blocks do not add up is not trusted at all
                self.bad += 1
                return
            for number, data in blocks:
                if number not in self.services:
                    self.services[number] = Service(number, self.wide)
                self.services[number].block(t, data)

    def finish(self, end: float | None = None) -> tuple[list[tuple[int, list[Cue], list[str]]], list[str]]:
        """((service number, cues, warnings) of each service that sent data, by number; warnings about the packets).
        Captions still on screen end at `end` (the last picture with caption data), else at the last DTVCC triplet."""
        if self._buf is not None:
            self.packets += 1
            self.bad += 1
            self._buf = None
        notes = []
        if self.bad:
            many = self.packets and self.bad / self.packets >= MANY_BAD
            notes.append(f"{self.bad} of {self.packets} CEA-708 (DTVCC) packet(s) damaged or cut short, skipped"
                         + ("; so many that the CEA-708 captions are unreliable" if many else ""))
        if self.lost:
            notes.append(f"{self.lost} gap(s) in the CEA-708 packet sequence numbers (packets lost)")
        out = []
        for n, service in sorted(self.services.items()):
            warnings = service.finish(max(self.last_t, end if end is not None else self.last_t))
            out.append((n, service.cues, warnings))
        return out, notes


# -- the caption service descriptor (ATSC A/65, tag 0x86) of an MPEG-TS PMT ------------------------------------
VIDEO_STREAM_TYPES = frozenset({0x02, 0x1B, 0x24})  # MPEG-2, H.264, HEVC


def mpeg_crc32(data: bytes) -> int:
    """The CRC-32 of MPEG-2 sections (polynomial 0x04C11DB7, no reflection); 0 over a whole section when it is intact."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def _descriptor_languages(descriptors: bytes, out: dict[int, str]) -> None:
    i = 0
    while i + 2 <= len(descriptors):
        tag, length = descriptors[i], descriptors[i + 1]
        body = descriptors[i + 2:i + 2 + length]
        if tag == 0x86 and body:
            k = 1
            for _ in range(body[0] & 0x1F):
                if k + 6 > len(body):
                    break
                if body[k + 3] & 0x80:  # digital_cc: a 708 service number follows
                    out.setdefault(body[k + 3] & 0x3F, body[k:k + 3].decode("latin-1"))
                k += 6
        i += 2 + length


def ts_service_languages(path: str, limit: int = 4 << 20) -> dict[int, str]:
    """CEA-708 service number -> ISO 639-2 code, from the caption service descriptors of the PMTs in the first
    `limit` bytes of an MPEG-TS (188-byte packets) or M2TS (192) file; {} when there are none. Only sections that
    start and end in one TS packet and pass their CRC are read."""
    with open(path, "rb") as f:
        data = f.read(limit)
    start, stride = next(((s, n) for s, n in ((0, 188), (4, 192)) if len(data) > s + n and data[s] == data[s + n] == 0x47), (None, 0))
    if start is None:
        return {}
    pmt_pids: set[int] = set()
    out: dict[int, str] = {}
    for i in range(start, len(data) - 187, stride):
        p = data[i:i + 188]
        if p[0] != 0x47 or not p[1] & 0x40:  # lost sync, or no section starts here
            continue
        pid, afc, j = (p[1] & 0x1F) << 8 | p[2], p[3] >> 4 & 3, 4
        if afc & 2:
            j += 1 + p[4]
        if not afc & 1 or j >= 188:
            continue
        sec = p[j + 1 + p[j]:]
        if len(sec) < 3 or (pid != 0 and pid not in pmt_pids):
            continue
        end = 3 + ((sec[1] & 0x0F) << 8 | sec[2])
        if end > len(sec) or end < 16 or mpeg_crc32(sec[:end]) != 0:
            continue
        if pid == 0 and sec[0] == 0x00:  # PAT: program number, PMT PID
            pmt_pids |= {(sec[k + 2] & 0x1F) << 8 | sec[k + 3] for k in range(8, end - 4, 4) if sec[k] << 8 | sec[k + 1]}
        elif sec[0] == 0x02:  # PMT: program descriptors, then (stream type, PID, ES descriptors)
            info = (sec[10] & 0x0F) << 8 | sec[11]
            _descriptor_languages(sec[12:12 + info], out)
            k = 12 + info
            while k + 5 <= end - 4:
                es_len = (sec[k + 3] & 0x0F) << 8 | sec[k + 4]
                if sec[k] in VIDEO_STREAM_TYPES:
                    _descriptor_languages(sec[k + 5:k + 5 + es_len], out)
                k += 5 + es_len
            return out
    return out
