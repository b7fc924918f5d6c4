"""The OCR read path: text blocks, 'same text as before', reads scheduled on an engine and mapped back, engine choice.

Unit tests draw pictures with PIL and use a fake engine (no process); the in-process tesserocr engine (``inproc``) is
tested where tesserocr is installed (skipped otherwise). The worker-process engine (``tesserocr``, the default where
installed) and the command-line engine start processes: integration tests at the end."""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import signal
import threading
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from prism_assets.structure import ocr as O
from prism_assets.structure import ocr_engine as E
from prism_assets.structure import ocr_read as RD
from prism_assets.structure import ocr_regions as R

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
FONT_CJK = "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"
HAS_TESSEROCR = importlib.util.find_spec("tesserocr") is not None


def _picture(texts, bg=40, noise=0, seed=0, box=None, font=FONT, size=24) -> np.ndarray:
    """640x360 greyscale: texts [(x, y, text)] in white; optional noise texture and a translucent dark box."""
    rng = np.random.default_rng(seed)
    a = np.full((360, 640), bg, np.float32)
    if noise:
        a += rng.normal(0, noise, a.shape)
    im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    if box:
        x0, y0, x1, y1 = box
        arr = np.asarray(im).astype(np.float32)
        arr[y0:y1, x0:x1] *= 0.45
        im = Image.fromarray(arr.astype(np.uint8))
    d = ImageDraw.Draw(im)
    f = ImageFont.truetype(font, size)
    for x, y, text in texts:
        d.text((x, y), text, font=f, fill=255)
    return np.asarray(im)


def _jpeg(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).convert("RGB").save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def _blocks(a: np.ndarray) -> list[R.Block]:
    return R.text_blocks(R.tophat(a, 13))


def _inside(block: R.Block, x0, y0, x1, y1) -> bool:
    return block.x0 <= x0 and block.y0 <= y0 and block.x1 >= x1 and block.y1 >= y1


def _text_box(x, y, text, font=FONT, size=24):
    return ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((x, y), text, font=ImageFont.truetype(font, size))


# ------------------------------------------------------------------------------------------ blocks


def test_blocks_hold_each_line_with_a_margin_and_little_else():
    texts = [(120, 60, "PLATFORM 4"), (140, 300, "I never said that to anyone")]
    blocks = _blocks(_picture(texts, noise=6))
    for x, y, t in texts:
        bx = _text_box(x, y, t)
        assert any(_inside(b, bx[0] - 4, bx[1] - 4, bx[2] + 4, bx[3] + 4) for b in blocks), (t, blocks)
    assert sum(b.area for b in blocks) < 0.25 * 640 * 360


def test_a_stacked_card_and_spaced_words_are_one_block():
    texts = [(80, 120, "PROD 4809   SCENE 33   TAKE 4"), (80, 160, "ROLL A007   DATE 2024-05-25")]
    blocks = _blocks(_picture(texts))
    assert len(blocks) == 1
    b = blocks[0]
    assert _inside(b, *_text_box(*texts[0])) and _inside(b, *_text_box(*texts[1]))


def test_text_in_a_box_over_thin_bright_detail_is_found():
    """Thin bright detail (stripes) seen through a translucent box is ink at the first level, the whole box one solid
    blob; the darker level separates the text (the end-credits subtitle over the mandelbrot's filaments)."""
    text = (150, 300, "Tell me what happened")
    for period in (4, 5, 6):
        a = np.full((360, 640), 40, np.float32)
        a[:, ::period] = a[:, 1::period] = 255
        a[290:336, 130:480] *= 0.5
        im = Image.fromarray(a.astype(np.uint8))
        ImageDraw.Draw(im).text(text[:2], text[2], font=ImageFont.truetype(FONT, 24), fill=255)
        assert any(_inside(b, *_text_box(*text)) for b in _blocks(np.asarray(im))), period


def test_flat_and_empty_pictures_have_no_blocks():
    assert _blocks(_picture([])) == []
    assert _blocks(np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (360, 1))) == []


# ------------------------------------------------------------------------------------------ same text


def _key(a: np.ndarray) -> R.InkKey:
    th = R.tophat(a, 13)
    blocks = R.text_blocks(th)
    assert len(blocks) == 1, blocks
    return R.ink_key(th, blocks[0])


@pytest.mark.parametrize("a,b,font", [
    ("SCENE 12 TAKE 3", "SCENE 12 TAKE 8", FONT), ("cat in the hat", "cot in the hat", FONT), ("He said yes", "He said yea", FONT),
    ("good morning", "goad morning", FONT), ("00:00:01:12", "00:00:01:13", FONT), ("5 apples", "6 apples", FONT),
    ("안녕하세요 여러분", "안녕하세오 여러분", FONT_CJK), ("こんにちは皆さん", "こんばんは皆さん", FONT_CJK),
])
def test_one_changed_glyph_is_read_again(a, b, font):
    assert not R.same_text(_key(_picture([(120, 300, a)], font=font)), _key(_picture([(120, 300, b)], font=font)))


def test_the_same_text_over_a_changing_picture_is_reused():
    text = [(150, 300, "Nobody knows the way back home")]
    k0 = _key(_picture(text, bg=60, noise=12, seed=1, box=(130, 292, 520, 336)))
    for seed in (2, 3, 4):
        assert R.same_text(k0, _key(_picture(text, bg=60, noise=12, seed=seed, box=(130, 292, 520, 336))))
    moved = _key(_picture([(150, 260, text[0][2])], bg=60, noise=12, seed=2))
    assert not R.same_text(k0, moved)  # the same words elsewhere (rolling text): read again, at their new place


# ------------------------------------------------------------------------------------------ read path (fake engine)


class FakeReader:
    """Answers every image with one word covering the middle of the image; counts images and records the psm."""

    def __init__(self, fail_every: int = 0):
        self.images, self.psms, self.fail_every = [], [], fail_every
        self.lock = threading.Lock()

    def read_many(self, imgs, timeout_s, psm):
        out = []
        for img in imgs:
            with self.lock:
                self.images.append(img.shape)
                self.psms.append(psm)
                n = len(self.images)
            if self.fail_every and n % self.fail_every == 0:
                out.append(E.ReadTimeout(f"tesseract timed out after {timeout_s:g} s"))
                continue
            h, w = img.shape
            out.append(E.TSV_HEADER + f"5\t1\t1\t1\t1\t1\t{w // 4}\t{h // 4}\t{w // 2}\t{h // 2}\t96\tWORD{n}\n")
        return out


def _frames(texts_per_frame, **kw) -> list[tuple[int, float, bytes]]:
    return [(i * 25, float(i), _jpeg(_picture(texts, seed=i, **kw))) for i, texts in enumerate(texts_per_frame)]


def test_unchanged_blocks_share_one_read_and_keep_its_boxes():
    sub, card = [(140, 300, "The train is late again")], [(120, 80, "MUSIC BY SAMUEL ORTIZ")]
    frames = _frames([card, card + sub, card + sub, sub, [(140, 300, "Where did you put the keys")]], noise=4)
    fake = FakeReader()
    out, warnings, stats = RD.read_frames(frames, O.OcrConfig(workers=2, batch=2), fake)
    assert warnings == [] and [f["frame"] for f in out] == [0, 25, 50, 75, 100]
    assert stats.blocks == 7 and stats.reads == 3 and stats.reused_blocks == 4 and stats.frames_fully_reused == 2
    assert len(fake.images) == 3 and set(fake.psms) == {O.OcrConfig().crop_psm}
    texts = [[ln["text"] for ln in f["lines"]] for f in out]
    assert texts[1] == texts[2] and texts[0][0] == texts[1][0] and texts[3] == texts[1][1:] and texts[4] != texts[3]
    for f in out:  # every box lies in the frame, the card's above the subtitle's
        for ln in f["lines"]:
            assert 0 <= ln["x"] and ln["x"] + ln["w"] <= 1 and 0 <= ln["y"] and ln["y"] + ln["h"] <= 1
    card_box, sub_box = out[1]["lines"]
    bx = _text_box(*card[0])
    assert card_box["y"] < sub_box["y"] and abs(card_box["x"] * 640 + card_box["w"] * 320 - (bx[0] + bx[2]) / 2) < 20


def test_old_path_reads_whole_frames_once_each():
    card = [(120, 80, "MUSIC BY SAMUEL ORTIZ")]
    fake = FakeReader()
    out, _, stats = RD.read_frames(_frames([card, card, []]), O.OcrConfig(crop=False, reuse=False, workers=1), fake)
    assert stats.reads == 3 and fake.images == [(720, 1280)] * 3 and set(fake.psms) == {11}  # upscaled 2x, psm 11
    assert stats.as_dict()["read_fraction_of_pixels"] == 1.0


def test_a_timed_out_read_skips_every_frame_that_uses_it_with_a_warning_and_progress_ends_complete():
    card = [(120, 80, "MUSIC BY SAMUEL ORTIZ")]
    calls = []
    out, warnings, stats = RD.read_frames(_frames([card, card, card, [(100, 200, "ANOTHER CARD HERE")]]), O.OcrConfig(workers=1),
                                          FakeReader(fail_every=1), progress=lambda d, t: calls.append((d, t)))
    assert stats.reads == 2 and len(warnings) == 4 and all("timed out" in w and "skipped" in w for w in warnings)
    assert all(f["lines"] == [] for f in out)
    assert calls[-1] == (4, 4) and all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))


def test_a_broken_jpeg_is_one_warning():
    out, warnings, _ = RD.read_frames([(0, 0.0, b"not a jpeg")], O.OcrConfig(workers=1), FakeReader())
    assert out[0]["lines"] == [] and len(warnings) == 1 and "frame 0" in warnings[0]


# ------------------------------------------------------------------------------------------ engine choice and batches


def test_split_pages_of_a_batch():
    tsv = E.TSV_HEADER + "5\t1\t1\t1\t1\t1\t0\t0\t5\t5\t90\tA\n5\t3\t1\t1\t1\t1\t0\t0\t5\t5\t90\tC\n"
    pages = E.split_pages(tsv, 3)
    assert [p.splitlines()[1:] for p in pages] == [["5\t1\t1\t1\t1\t1\t0\t0\t5\t5\t90\tA"], [], ["5\t3\t1\t1\t1\t1\t0\t0\t5\t5\t90\tC"]]
    assert all(p.startswith("level\t") for p in pages)


def test_auto_engine_is_tesserocr_only_on_the_binarys_libtesseract(monkeypatch):
    monkeypatch.setattr(E, "tesserocr_version", lambda: None)
    assert E.resolve("auto", "/usr/bin/tesseract") == "cli"
    monkeypatch.setattr(E, "tesserocr_version", lambda: ("2.13.0", "5.5.4"))
    monkeypatch.setattr(E, "cli_langs", lambda exe: ("/td", "5.3.0", "1.82.0", frozenset({"eng"})))
    assert E.resolve("auto", "/usr/bin/tesseract") == "cli"  # another libtesseract reads differently: the binary's results
    monkeypatch.setattr(E, "cli_langs", lambda exe: ("/td", "5.5.4", "1.82.0", frozenset({"eng"})))
    assert E.resolve("auto", "/usr/bin/tesseract") == "tesserocr" and E.resolve("auto", None) == "tesserocr"
    assert E.resolve("cli") == "cli"
    with pytest.raises(E.EngineError) as e:
        E.resolve("paddle")
    assert "\n" not in str(e.value)


def test_config_keys_for_the_read_path():
    cfg = O.OcrConfig.from_config({"engine": "cli", "crop": False, "reuse": False, "batch": 1, "crop_psm": 11})
    assert (cfg.engine, cfg.crop, cfg.reuse, cfg.batch, cfg.crop_psm) == ("cli", False, False, 1, 11)


# ------------------------------------------------------------------------------------------ in-process engine


needs_tesserocr = pytest.mark.skipif(not HAS_TESSEROCR, reason="tesserocr not installed (the command-line engine reads instead)")


@needs_tesserocr
def test_tesserocr_reads_blocks_and_reuses_them(monkeypatch):
    tessdata = E.tessdata_dir(None)
    if not tessdata:
        pytest.skip("no traineddata folder")
    reader = E.make_reader("inproc", None, tessdata, ("eng",))
    lines = ["PLATFORM 4", "Central Station"]
    frames = _frames([[(360, 80, lines[0]), (360, 118, lines[1])]] * 3, bg=50, noise=5)
    out, warnings, stats = RD.read_frames(frames, O.OcrConfig(languages=("eng",), workers=2), reader)
    assert warnings == [] and stats.reads == 1 and stats.reused_blocks == 2
    for f in out:
        assert [ln["text"] for ln in f["lines"]] == lines
        assert 0.5 < f["lines"][0]["x"] < 0.6 and 0.2 < f["lines"][0]["y"] < 0.26
    whole, _, _ = RD.read_frames(frames[:1], O.OcrConfig(languages=("eng",), crop=False, reuse=False, workers=1), reader)
    assert [ln["text"] for ln in whole[0]["lines"]] == lines
    for a, b in zip(whole[0]["lines"], out[0]["lines"]):  # the same boxes, cropped or not (within 2 px)
        assert all(abs(a[k] - b[k]) * 640 < 2 for k in ("x", "w")) and all(abs(a[k] - b[k]) * 360 < 2 for k in ("y", "h"))


@needs_tesserocr
def test_tesserocr_timeout_is_a_read_timeout():
    tessdata = E.tessdata_dir(None)
    if not tessdata:
        pytest.skip("no traineddata folder")
    reader = E.make_reader("inproc", None, tessdata, ("eng",))
    img = RD.crop_image(R.tophat(_picture([(20, 40 * i, "THE QUICK BROWN FOX JUMPS OVER") for i in range(8)]), 13),
                        R.Block(0, 0, 640, 360, 24.0), 1000)
    res = reader.read_many([img], 0.001, 11)
    assert isinstance(res[0], E.ReadTimeout)


# ------------------------------------------------------------------------------------------ command-line engine (processes)


@pytest.mark.integration
@pytest.mark.skipif(not shutil.which("tesseract"), reason="tesseract not installed")
def test_cli_batch_reads_like_one_process_per_image():
    reader = E.CliReader(shutil.which("tesseract"), ("eng",))
    imgs = [RD.crop_image(R.tophat(_picture([(100, 150, t)]), 13), R.Block(80, 130, 500, 190, 24.0), 1000)
            for t in ("PLATFORM 4", "EXIT ONLY", "GATE 12")]
    batch = reader.read_many(imgs, 20, 6)
    single = [reader.read(i, 20, 6) for i in imgs]
    from prism_assets.structure import ocr_lines as L

    def texts(tsv, img):
        return [ln["text"] for ln in L.lines_from_tsv(tsv, img.shape[1], img.shape[0], 55)]

    assert [texts(b, i) for b, i in zip(batch, imgs)] == [texts(s, i) for s, i in zip(single, imgs)] == [["PLATFORM 4"], ["EXIT ONLY"], ["GATE 12"]]
    if HAS_TESSEROCR and E.resolve("auto", shutil.which("tesseract")) == "tesserocr":  # the same libtesseract in workers
        workers = E.make_reader("tesserocr", None, E.tessdata_dir(shutil.which("tesseract")), ("eng",))
        assert [texts(b, i) for b, i in zip(workers.read_many(imgs, 20, 6), imgs)] == [texts(s, i) for s, i in zip(single, imgs)]


@pytest.mark.integration
@needs_tesserocr
def test_worker_processes_time_out_and_are_replaced_when_they_die():
    tessdata = E.tessdata_dir(shutil.which("tesseract"))
    reader = E.ProcReader(tessdata, ("eng",))
    big = RD.crop_image(R.tophat(_picture([(20, 40 * i, "THE QUICK BROWN FOX JUMPS OVER") for i in range(8)]), 13),
                        R.Block(0, 0, 640, 360, 24.0), 1000)
    assert isinstance(reader.read_many([big], 0.001, 11)[0], E.ReadTimeout)
    small = RD.crop_image(R.tophat(_picture([(100, 150, "GATE 12")]), 13), R.Block(80, 130, 300, 190, 24.0), 1000)
    assert "GATE" in reader.read(small, 20, 6)  # the same worker, after its timeout
    for pid in reader.pids():
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    assert "GATE" in reader.read(small, 20, 6)  # a dead worker is replaced
    reader.close()
    info = E.tesserocr_versions()
    assert info["tesseract"].startswith("5.") and info["tesserocr"]


@pytest.mark.integration
def test_a_wedged_worker_is_killed_and_the_read_fails_in_one_line(tmp_path, monkeypatch):
    """A tesserocr worker that stops answering (its own read timeout did not fire) never blocks the step: killed after
    the read's timeout and a grace, the read fails with one line."""
    import time

    import numpy as np

    from prism_assets.structure import ocr_engine

    fake = tmp_path / "wedged.py"
    fake.write_text('import sys, json, time\nsys.stdout.write(json.dumps({"ready": True}) + "\\n"); sys.stdout.flush()\ntime.sleep(3600)\n')
    monkeypatch.setattr(ocr_engine, "WORKER", fake)
    monkeypatch.setattr(ocr_engine, "ANSWER_GRACE_S", 1.0)
    w = ocr_engine._Worker("/nonexistent", "eng")
    t0 = time.monotonic()
    with pytest.raises(ocr_engine.EngineError, match="exited"):
        w.read(np.zeros((8, 8), np.uint8), 0.5, 7)
    assert time.monotonic() - t0 < 10 and not w.alive()
