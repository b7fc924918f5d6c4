"""Where the text is, and whether it changed: the crop and reuse steps of on-screen text OCR.

Method (on the picture at its pipeline size, longest side <= 640 px; ``s = longest side / 640``)
------
* ``tophat``: thin strokes on anything (white top-hat with a k x k square), stretched and inverted so the text is
  dark on white, what Tesseract binarises best; for dark text the picture is inverted first. Blocks are looked for in
  the light-text top-hat of every picture and, on a light picture (median > 160), in the dark-text one too (the
  whole-frame path reads one: dark text on a light picture, else light text; a white caption on a bright scene was
  lost there).
* ``text_blocks``: lines are looked for in three stroke maps of the top-hat (``_ink_maps``): strength >= 110 and
  >= 200 of 255 (the darker level separates text from a light box or picture behind it, which the first counts as
  ink too), and >= half the strongest stroke within 41 px (>= 50: a logo fainter than the frame's strongest text;
  there a line must be >= 8s px tall, >= 2.5 heights wide (a few glyphs, not a speck of grain) and stand out from the
  half line height above and below it, which texture does not). Each map is
  closed along rows (4 px); components ``6s..90s`` px tall are joined along rows (gap < one height) into lines; a
  line is kept when it is >= 1.2 heights (>= 8 px) wide with ink on 8-90 % of its box. Lines on one row less than 2.5
  heights apart, and lines stacked within 1.2 heights that overlap horizontally, join one block (a slate card, a
  credits block) so one read sees the layout. Each block gets a margin of ``MARGIN`` (1) line height (>= 6 px):
  Tesseract reads a tight crop worse (measured: "PRODUCED BY INGRID OKAFOR" read as "OKAFOR" with half a line
  height). A picture whose blocks cover most of it (> ``WHOLE_FRACTION``) is read whole: cropping saves nothing.
* ``ink_key`` / ``same_text``: a block is read again only when its text changed. Its key is the binarised ink
  inside the box at its place in the picture. Two keys hold the same text when the boxes agree within
  ``max(2 px, 0.15 line height)`` on each side, the ink differs on less than ``INK_CHANGE`` of the ink overall, and,
  over the union of the boxes, no cell of half a line height by a quarter of one has more than ``CELL_CHANGE`` of its
  pixels changed, once 1-px flicker is removed (a 2x2 opening of the difference where strokes are >= 2 px, lines
  >= 14 px). Measured (DejaVu Sans Bold, 24 px, 640x360): one changed glyph scores 0.21-1.0 (cat/cot 0.33,
  yes/yea 0.31, good/goad 0.21, TAKE 3/8 0.78, 00:01:12/13 0.75); the same card or subtitle on consecutive frames of
  the test titles, over moving mandelbrot and testsrc2 pictures, scores 0.0. Not told apart: glyphs differing by
  less than that (I/l in a bold sans), which Tesseract confuses too.

Limits: dark text on a light panel inside a dark or mid-grey picture is not found (one polarity there);
moving text (rolling credits) is read on every frame (its block moves); text touching clutter of similar stroke
width joins the clutter's block (it is still read, at the cost of a larger crop).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INK = 110             # top-hat ink level (0-255, after stretch) that counts as a stroke pixel (the reuse key)
LEVELS = (INK, 200)   # ink levels at which lines are looked for
LOCAL_PX, LOCAL_FLOOR = 41, 50  # ... and relative to the strongest stroke around (window px at 640-px scale, floor)
WHOLE_FRACTION = 0.6  # blocks covering more of the picture than this: read the whole picture
MARGIN = 1.0         # white kept around a block, in line heights
CELL_CHANGE = 0.10    # a glyph-part cell (half a line height tall, a quarter wide) differing more than this: changed
INK_CHANGE = 0.12     # ink pixels differing over this fraction of the ink: the text changed


def _cv2():
    """OpenCV, imported when text is read (not when the domains load: CLI commands that read no text never start its
    thread pool, whose teardown at interpreter exit once aborted a `prism catalog rebuild`)."""
    import cv2

    return cv2


def tophat(grey: np.ndarray, k: int, polarity: str = "auto") -> np.ndarray:
    """Thin strokes on anything: the white top-hat (grey - opening(grey), k x k square), stretched to 0..255 and inverted
    (dark text on white, what Tesseract binarises best). polarity: "bright" (light text), "dark" (dark text: the picture
    inverted first), "auto" (dark on a light picture, median > 160, else bright)."""
    cv2 = _cv2()
    g = np.ascontiguousarray(grey, dtype=np.float32)
    if polarity == "dark" or (polarity == "auto" and np.median(g) > 160):
        g = 255.0 - g
    kernel = np.ones((k, k), np.uint8)
    th = g - cv2.dilate(cv2.erode(g, kernel, borderType=cv2.BORDER_REPLICATE), kernel, borderType=cv2.BORDER_REPLICATE)
    th *= 255.0 / max(40.0, float(np.percentile(th, 99.5)))
    return (255.0 - np.clip(th, 0, 255)).astype(np.uint8)


@dataclass(frozen=True)
class Block:
    """A text block in picture pixels: x0, y0 inclusive, x1, y1 exclusive, with its margin; line_h: its median line height."""
    x0: int
    y0: int
    x1: int
    y1: int
    line_h: float

    @property
    def area(self) -> int:
        return (self.x1 - self.x0) * (self.y1 - self.y0)


def _ink_maps(th: np.ndarray, scale: float):
    """The stroke maps lines are looked for in: the top-hat's strength (255 - th) >= each of ``LEVELS``, and >= half the
    strongest stroke within ``LOCAL_PX`` (and >= ``LOCAL_FLOOR``): text much fainter than the picture's strongest
    strokes (a white logo on a pale sky beside a lower third) is ink there and nowhere else."""
    cv2 = _cv2()
    strength = 255 - th
    for level in LEVELS:
        yield (strength >= level).astype(np.uint8)
    k = max(3, int(round(LOCAL_PX * scale)))
    local = cv2.dilate(strength, np.ones((k, k), np.uint8))
    yield ((strength >= LOCAL_FLOOR) & (strength.astype(np.int16) * 2 >= local)).astype(np.uint8)


def _line_boxes(th: np.ndarray, scale: float) -> list[tuple[int, int, int, int]]:
    """Text-line boxes [(x, y, w, h)]: in each stroke map (``_ink_maps``), the ink closed along rows, its glyph-height
    components joined along rows into lines (``_join_rows``), the lines that look like text kept. The darker level
    separates text from a light box or picture behind it that the first level counts as ink too."""
    cv2 = _cv2()
    close = np.ones((1, max(3, int(round(4 * scale)))), np.uint8)
    lo, hi = 6 * scale, 90 * scale
    out = []
    for m, ink in enumerate(_ink_maps(th, scale)):
        n, _, stats, _ = cv2.connectedComponentsWithStats(cv2.morphologyEx(ink, cv2.MORPH_CLOSE, close), connectivity=8)
        pieces = [tuple(int(v) for v in stats[i][:4]) for i in range(1, n) if lo <= stats[i][3] <= hi]
        for x, y, w, h in _join_rows(pieces):
            dens = float(ink[y:y + h, x:x + w].mean())
            if h <= hi and w >= max(8, 1.2 * h) and 0.08 <= dens <= 0.9 and (
                    m < len(LEVELS) or (h >= 8 * scale and w >= 2.5 * h and _isolated(ink, x, y, w, h, dens))):
                out.append((x, y, w, h))
    return out


def _isolated(ink: np.ndarray, x: int, y: int, w: int, h: int, dens: float) -> bool:
    """A line stands out from what is above and below it (half a line height each side): < 0.3 of its ink density
    there. Texture is as dense around a 'line' as in it; text is not."""
    b = max(2, h // 2)
    around = np.concatenate([ink[max(0, y - b):y, x:x + w].ravel(), ink[y + h:y + h + b, x:x + w].ravel()])
    return around.size > 0 and float(around.mean()) < 0.3 * dens


def _join_rows(pieces: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Pieces on one row (vertical overlap >= 0.5 of the smaller height, horizontal gap < the larger height) as one box."""
    boxes = sorted(pieces)
    changed = True
    while changed:
        changed = False
        out: list[tuple[int, int, int, int]] = []
        for b in boxes:
            for k, a in enumerate(out):
                overlap = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
                gap = max(b[0] - (a[0] + a[2]), a[0] - (b[0] + b[2]))
                if overlap >= 0.5 * min(a[3], b[3]) and gap < max(a[3], b[3]):
                    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
                    out[k] = (x0, y0, max(a[0] + a[2], b[0] + b[2]) - x0, max(a[1] + a[3], b[1] + b[3]) - y0)
                    changed = True
                    break
            else:
                out.append(b)
        boxes = out
    return boxes


def _merge_lines(boxes: list[tuple[int, int, int, int]]) -> list[list[tuple[int, int, int, int]]]:
    """One block (union-find) for lines on one row less than 2.5 line heights apart (the words of a line, as
    ``ocr_lines`` groups them) and for lines stacked within 1.2 line heights that overlap horizontally."""
    parent = list(range(len(boxes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, (xa, ya, wa, ha) in enumerate(boxes):
        for j in range(i + 1, len(boxes)):
            xb, yb, wb, hb = boxes[j]
            h = max(ha, hb)
            gap_y = max(yb - (ya + ha), ya - (yb + hb))
            gap_x = max(xb - (xa + wa), xa - (xb + wb))
            same_row = min(ya + ha, yb + hb) - max(ya, yb) >= 0.5 * min(ha, hb) and gap_x < 2.5 * h
            stacked = gap_y <= 1.2 * h and gap_x < 0.5 * h
            if same_row or stacked:
                parent[root(i)] = root(j)
    groups: dict[int, list] = {}
    for i, b in enumerate(boxes):
        groups.setdefault(root(i), []).append(b)
    return list(groups.values())


def text_blocks(th: np.ndarray) -> list[Block]:
    """Blocks of likely text in a top-hat picture (dark text on white, ``tophat``), top to bottom; [] when none.
    One block covering the whole picture when the blocks would cover most of it."""
    H, W = th.shape  # noqa: N806
    scale = max(H, W) / 640.0
    boxes = _line_boxes(th, scale)
    if not boxes:
        return []
    blocks = []
    for group in _merge_lines(boxes):
        line_h = float(np.median([h for *_, h in group]))
        m = max(6, int(round(MARGIN * line_h)))
        x0 = max(0, min(x for x, *_ in group) - m)
        y0 = max(0, min(y for _, y, *_ in group) - m)
        x1 = min(W, max(x + w for x, _, w, _ in group) + m)
        y1 = min(H, max(y + h for _, y, _, h in group) + m)
        blocks.append(Block(x0, y0, x1, y1, line_h))
    blocks = _merge_overlapping(blocks)
    if sum(b.area for b in blocks) > WHOLE_FRACTION * H * W:
        return [Block(0, 0, W, H, float(np.median([b.line_h for b in blocks])))]
    return sorted(blocks, key=lambda b: (b.y0, b.x0))


def _merge_overlapping(blocks: list[Block]) -> list[Block]:
    """Blocks whose margins overlap become one (a glyph is never cut between two reads)."""
    blocks = list(blocks)
    merged = True
    while merged:
        merged = False
        for i in range(len(blocks)):
            for j in range(i + 1, len(blocks)):
                a, b = blocks[i], blocks[j]
                if a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1:
                    blocks[i] = Block(min(a.x0, b.x0), min(a.y0, b.y0), max(a.x1, b.x1), max(a.y1, b.y1), max(a.line_h, b.line_h))
                    del blocks[j]
                    merged = True
                    break
            if merged:
                break
    return blocks


# ------------------------------------------------------------------------------------------ same text as before


@dataclass(frozen=True)
class InkKey:
    """The binarised ink of one block at its place in the picture (bool, the block's shape)."""
    block: Block
    ink: np.ndarray


def ink_key(th: np.ndarray, block: Block) -> InkKey:
    return InkKey(block, th[block.y0:block.y1, block.x0:block.x1] <= 255 - INK)


def _place(key: InkKey, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    out = np.zeros((y1 - y0, x1 - x0), bool)
    b = key.block
    out[b.y0 - y0:b.y1 - y0, b.x0 - x0:b.x1 - x0] = key.ink
    return out


def same_text(a: InkKey, b: InkKey) -> bool:
    """True when the two blocks hold the same text at the same place (see the module docstring)."""
    cv2 = _cv2()
    ba, bb = a.block, b.block
    tol = max(2.0, 0.15 * max(ba.line_h, bb.line_h))
    if max(abs(ba.x0 - bb.x0), abs(ba.y0 - bb.y0), abs(ba.x1 - bb.x1), abs(ba.y1 - bb.y1)) > tol:
        return False
    x0, y0, x1, y1 = min(ba.x0, bb.x0), min(ba.y0, bb.y0), max(ba.x1, bb.x1), max(ba.y1, bb.y1)
    pa, pb = _place(a, x0, y0, x1, y1), _place(b, x0, y0, x1, y1)
    ink = max(int(pa.sum()), int(pb.sum()))
    diff = pa ^ pb
    if ink == 0:
        return not diff.any()
    if diff.sum() > INK_CHANGE * ink:
        return False
    line_h = max(ba.line_h, bb.line_h)
    d = diff.astype(np.uint8)
    if line_h >= 14:  # strokes >= 2 px: a 1-px flicker along an edge (compression, the picture behind) is not a change
        d = cv2.morphologyEx(d, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    ch = max(3, int(round(0.5 * line_h)))
    cw = max(2, ch // 2)
    cells = cv2.boxFilter(d.astype(np.float32), -1, (cw, ch), normalize=True, borderType=cv2.BORDER_CONSTANT)
    return float(cells.max()) <= CELL_CHANGE
