"""The Tesseract engine behind on-screen text: models loaded once and kept, not one ``tesseract`` process per frame.

Engines (``OcrConfig.engine``):

* ``tesserocr``: the Tesseract C++ API (the ``tesserocr`` package) in persistent worker processes
  (``ocr_worker.py``, ``ProcReader``), one per concurrent caller, each with the model loaded once and kept for the
  pipeline process's life; a crop goes over a pipe as raw greyscale bytes (no PNG, no model load per image);
  ``Recognize(timeout)`` bounds each image. Workers start with OMP_THREAD_LIMIT=1 (see ``ocr_worker``).
* ``inproc``: the same API in this process (``TesserocrReader``): for measurements only. In a process where torch
  already started libgomp, libtesseract's OpenMP threads cannot be limited any more and spin: 2.62 s of CPU against
  0.68 s for the same 12 frames (measured here).
* ``cli``: the ``tesseract`` binary; a batch of images is one process (``tesseract LIST stdout tsv`` reads the
  images named in LIST with one model load; TSV rows carry the page number), with ``timeout_s`` per image for the
  batch; a batch that fails or times out is read again one image per process so one bad image costs only itself.
* ``auto`` (default): ``tesserocr`` where it is installed *and* links the same libtesseract version as the system
  binary (or there is no binary), else ``cli``. The PyPI wheel of tesserocr 2.13 bundles libtesseract 5.5.4, which
  reads differently from Debian's 5.3.0: on the test titles it lost the Japanese line that 5.3.0 reads (eng+jpn:
  "CAKSISESA" for "こんにちは皆さん"; character accuracy 0.74 against 0.95). Built from source against the system
  library (``libtesseract-dev libleptonica-dev``, ``pip install --no-binary tesserocr tesserocr``) it reads exactly
  as the binary does.

Measured (2 shared cores, test titles, whole frames): a model load costs 0.13-0.26 s, which one process per frame
pays on every frame, against 0.04-0.3 s of recognition per whole frame. All engines read the traineddata of the
system Tesseract (``tesseract --list-langs`` names the folder; else ``TESSDATA_PREFIX`` or the Debian/usr-local
folders).
"""

from __future__ import annotations

import atexit
import functools
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
from PIL import Image

TESSDATA_DIRS = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata", "/usr/local/share/tessdata",
                 "/usr/share/tessdata")
DPI = 70  # what the command line falls back to for a PNG without a resolution (Tesseract then estimates it from the text)
TSV_HEADER = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"


class EngineError(RuntimeError):
    """The engine cannot run (missing binary, library or language). str() is one line."""


class ReadTimeout(RuntimeError):
    """One image took longer than its timeout."""


def env() -> dict:
    return {**os.environ, "OMP_THREAD_LIMIT": "1"}


WORKER = Path(__file__).with_name("ocr_worker.py")


def import_tesserocr():
    """tesserocr in this process (the ``inproc`` engine, for measurements), None when not installed. Not used by
    ``auto``: libtesseract's OpenMP threads spin unless OMP_THREAD_LIMIT=1 was set before libgomp started, which a
    pipeline process that ran torch first can no longer do (measured: 4x the CPU for the same reads); and setting it
    before would cap torch's threads in the same process."""
    global _TESSEROCR
    if _TESSEROCR is None:
        try:
            import tesserocr

            if hasattr(tesserocr, "set_leptonica_log_level"):  # leptonica's "Error in boxClipToRectangle" on small crops:
                tesserocr.set_leptonica_log_level(tesserocr.LeptLogLevel.NONE)  # internal, harmless, on stderr
            _TESSEROCR = tesserocr
        except ImportError:
            _TESSEROCR = False
    return _TESSEROCR or None


_TESSEROCR = None


def worker_env() -> dict:
    return {**env(), "OMP_WAIT_POLICY": "PASSIVE"}


@functools.lru_cache(maxsize=1)
def tesserocr_versions() -> dict | None:
    """{tesserocr, tesseract, leptonica} versions of the worker processes' tesserocr (asked of a probe process, so this
    process never loads libtesseract), None when tesserocr is not installed."""
    import importlib.util

    if importlib.util.find_spec("tesserocr") is None:
        return None
    try:
        r = subprocess.run([sys.executable, str(WORKER), "--version"], capture_output=True, text=True, timeout=60, env=worker_env())
        got = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 and r.stdout.strip() else {}
    except (OSError, subprocess.TimeoutExpired, ValueError):
        got = {}
    return got if got.get("tesseract") else None


def tesserocr_version() -> tuple[str, str] | None:
    """(tesserocr package version, the libtesseract version it links) or None when tesserocr is not installed."""
    v = tesserocr_versions()
    return (v["tesserocr"], v["tesseract"]) if v else None


def resolve(engine: str, exe: str | None = None) -> str:
    """'tesserocr', 'inproc' or 'cli' for a configured engine name (see the module docstring for 'auto'); exe: the binary."""
    if engine == "auto":
        tv = tesserocr_version()
        if not tv:
            return "cli"
        if not exe:
            return "tesserocr"
        try:
            return "tesserocr" if cli_langs(exe)[1] == tv[1] else "cli"
        except EngineError:
            return "tesserocr"
    if engine not in ("tesserocr", "inproc", "cli"):
        raise EngineError(f"unknown OCR engine {engine!r}: auto, tesserocr, inproc or cli")
    if engine != "cli" and not tesserocr_version():
        raise EngineError("OCR engine tesserocr is not installed (pip install tesserocr)")
    return engine


@functools.lru_cache(maxsize=4)
def cli_langs(exe: str) -> tuple[str | None, str, str | None, frozenset]:
    """(tessdata folder, tesseract version, leptonica version, available languages) of a tesseract binary."""
    try:
        ver = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30, env=env())
        lst = subprocess.run([exe, "--list-langs"], capture_output=True, text=True, timeout=30, env=env())
    except (OSError, subprocess.TimeoutExpired) as e:
        raise EngineError(f"tesseract does not run: {type(e).__name__}: {e}".splitlines()[0]) from None
    text = ver.stdout + ver.stderr
    m = re.search(r"tesseract\s+v?(\S+)", text)
    lep = re.search(r"leptonica-(\S+)", text)
    if ver.returncode or not m:
        raise EngineError(f"tesseract --version failed (rc {ver.returncode})")
    out = (lst.stdout + lst.stderr).splitlines()
    where = re.search(r'"([^"]+)"', out[0]) if out else None
    return (where.group(1) if where else None), m.group(1), (lep.group(1) if lep else None), frozenset(s.strip() for s in out[1:] if s.strip())


def tessdata_dir(exe: str | None) -> str | None:
    """The folder of the system traineddata: the binary's, else TESSDATA_PREFIX, else the first known folder with eng."""
    if exe:
        try:
            found = cli_langs(exe)[0]
            if found:
                return found
        except EngineError:
            pass
    for d in ([os.environ["TESSDATA_PREFIX"]] if os.environ.get("TESSDATA_PREFIX") else []) + list(TESSDATA_DIRS):
        if (Path(d) / "eng.traineddata").exists():
            return d
    return None


# ------------------------------------------------------------------------------------------ in-process


class TesserocrReader:
    """Loaded PyTessBaseAPIs, one per concurrent caller: a caller takes an idle one (or loads one), reads, puts it back,
    so the models stay loaded across calls and threads, and at most `workers` of them exist."""

    def __init__(self, tessdata: str, languages: tuple[str, ...]):
        self._t = import_tesserocr()
        self.tessdata, self.languages = tessdata.rstrip("/") + "/", "+".join(languages)
        self._idle: list = []
        self._lock = threading.Lock()

    def _take(self):
        with self._lock:
            if self._idle:
                return self._idle.pop()
        t = self._t
        try:
            api = t.PyTessBaseAPI(path=self.tessdata, lang=self.languages, oem=t.OEM.LSTM_ONLY)
        except RuntimeError as e:
            raise EngineError(f"tesserocr cannot load {self.languages} from {self.tessdata}: {str(e).splitlines()[0]}") from None
        api.SetVariable("debug_file", os.devnull)  # Tesseract's own notes ("Estimating resolution ...") off stderr
        return api

    def _give(self, api) -> None:
        with self._lock:
            self._idle.append(api)

    @staticmethod
    def _read(api, img: np.ndarray, timeout_s: float, psm: int) -> str:
        a = np.ascontiguousarray(img, dtype=np.uint8)
        api.SetPageSegMode(psm)
        api.SetImageBytes(a.tobytes(), a.shape[1], a.shape[0], 1, a.shape[1])
        api.SetSourceResolution(DPI)
        if not api.Recognize(timeout=max(1, int(round(timeout_s * 1000)))):
            api.Clear()
            raise ReadTimeout(f"tesseract timed out after {timeout_s:g} s")
        return TSV_HEADER + api.GetTSVText(0)

    def read(self, img: np.ndarray, timeout_s: float, psm: int) -> str:
        """TSV (with its header row) of one greyscale uint8 picture."""
        api = self._take()
        try:
            return self._read(api, img, timeout_s, psm)
        finally:
            self._give(api)

    def read_many(self, imgs: list[np.ndarray], timeout_s: float, psm: int) -> list[str | Exception]:
        """TSVs of the pictures (a ReadTimeout in place of one that timed out), on one loaded model."""
        api = self._take()
        out: list[str | Exception] = []
        try:
            for img in imgs:
                try:
                    out.append(self._read(api, img, timeout_s, psm))
                except ReadTimeout as e:
                    out.append(e)
        finally:
            self._give(api)
        return out

    def close(self) -> None:
        with self._lock:
            for api in self._idle:
                api.End()
            self._idle.clear()


# ------------------------------------------------------------------------------------------ worker processes


START_S = 60.0  # a worker loads its model within this, or is killed
ANSWER_GRACE_S = 15.0  # beyond a read's own timeout: a worker still silent is wedged, and killed


class _Worker:
    def __init__(self, tessdata: str, languages: str):
        from ..core.cpu_share import background  # off the critical path: a lower CPU priority (PRISM_BACKGROUND_NICE)

        self.proc = subprocess.Popen(background([sys.executable, str(WORKER), tessdata, languages]), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=worker_env())
        hello = self._answer(START_S)
        if not hello.get("ready"):
            self.close()
            raise EngineError(hello.get("error") or "the tesserocr worker did not start")

    def _answer(self, deadline_s: float) -> dict:
        """The worker's next line; a worker silent past `deadline_s` (wedged: its own read timeout did not fire) is
        killed, so a read never blocks for ever."""
        watchdog = threading.Timer(deadline_s, self.proc.kill)
        watchdog.daemon = True
        watchdog.start()
        try:
            line = self.proc.stdout.readline()
        finally:
            watchdog.cancel()
        if not line:
            try:
                rc = self.proc.wait(timeout=5)  # reaped: a killed worker is never taken for a live one
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = None
            raise EngineError(f"the tesserocr worker exited (rc {rc})")
        return json.loads(line)

    def read(self, img: np.ndarray, timeout_s: float, psm: int) -> str:
        a = np.ascontiguousarray(img, dtype=np.uint8)
        head = {"psm": psm, "w": a.shape[1], "h": a.shape[0], "timeout_ms": max(1, int(round(timeout_s * 1000)))}
        try:
            self.proc.stdin.write(json.dumps(head).encode() + b"\n" + a.tobytes())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise EngineError(f"the tesserocr worker exited (rc {self.proc.poll()})") from None
        ans = self._answer(timeout_s + ANSWER_GRACE_S)
        if ans.get("timeout"):
            raise ReadTimeout(f"tesseract timed out after {timeout_s:g} s")
        if "tsv" not in ans:
            raise EngineError(f"tesserocr: {ans.get('error')}")
        return TSV_HEADER + ans["tsv"]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


class ProcReader:
    """tesserocr in persistent worker processes (``ocr_worker.py``), one per concurrent caller, each with the model
    loaded once: a caller takes an idle worker (or starts one), sends its images, puts it back. Workers live as long
    as the reader (the process: ``ocr._reader`` keeps it); a worker that died is replaced on the next call."""

    def __init__(self, tessdata: str, languages: tuple[str, ...]):
        self.tessdata, self.languages = tessdata, "+".join(languages)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        atexit.register(self.close)

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                w = self._idle.pop()
                if w.alive():
                    return w
        return _Worker(self.tessdata, self.languages)

    def read(self, img: np.ndarray, timeout_s: float, psm: int) -> str:
        out = self.read_many([img], timeout_s, psm)[0]
        if isinstance(out, Exception):
            raise out
        return out

    def read_many(self, imgs: list[np.ndarray], timeout_s: float, psm: int) -> list[str | Exception]:
        """TSVs of the pictures (the exception in place of one that timed out or failed), on one worker."""
        w = self._take()
        out: list[str | Exception] = []
        for img in imgs:
            try:
                out.append(w.read(img, timeout_s, psm))
            except (ReadTimeout, EngineError) as e:
                out.append(e)
                if not w.alive():
                    w = self._take()
        with self._lock:
            self._idle.append(w)
        return out

    def pids(self) -> list[int]:
        """Process ids of the idle workers."""
        with self._lock:
            return [w.proc.pid for w in self._idle]

    def close(self) -> None:
        with self._lock:
            for w in self._idle:
                w.close()
            self._idle.clear()


# ------------------------------------------------------------------------------------------ command line


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img, dtype=np.uint8)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class CliReader:
    """The tesseract binary: a batch of images per process (one model load), one image per process as the fallback."""

    def __init__(self, exe: str, languages: tuple[str, ...]):
        self.exe, self.languages = exe, "+".join(languages)

    def _args(self, src: str, psm: int) -> list[str]:
        """The command; off the critical path: a lower CPU priority (`nice`, PRISM_BACKGROUND_NICE)."""
        from ..core.cpu_share import background

        return background([self.exe, src, "stdout", "-l", self.languages, "--psm", str(psm), "tsv"])

    def read(self, img: np.ndarray, timeout_s: float, psm: int) -> str:
        try:
            r = subprocess.run(self._args("stdin", psm), input=_png(img), capture_output=True, timeout=timeout_s, env=env())
        except subprocess.TimeoutExpired:
            raise ReadTimeout(f"tesseract timed out after {timeout_s:g} s") from None
        if r.returncode:
            raise EngineError(f"tesseract failed (rc {r.returncode}): {r.stderr.decode(errors='replace').strip().splitlines()[-1:]}")
        return r.stdout.decode("utf-8", errors="replace")

    def read_many(self, imgs: list[np.ndarray], timeout_s: float, psm: int) -> list[str | Exception]:
        """TSVs of the pictures (the exception in place of one that failed or timed out), one process for all."""
        if len(imgs) <= 1:
            return [self._one(img, timeout_s, psm) for img in imgs]
        with tempfile.TemporaryDirectory(prefix="prism-ocr-") as td:
            names = []
            for i, img in enumerate(imgs):
                p = Path(td) / f"{i:05d}.png"
                p.write_bytes(_png(img))
                names.append(str(p))
            lst = Path(td) / "list.txt"
            lst.write_text("\n".join(names) + "\n")
            try:
                r = subprocess.run(self._args(str(lst), psm), capture_output=True, timeout=timeout_s * len(imgs), env=env())
                ok = r.returncode == 0
            except subprocess.TimeoutExpired:
                ok = False
            if not ok:  # one slow or broken image: read each on its own so only that one is lost
                return [self._one(img, timeout_s, psm) for img in imgs]
        return split_pages(r.stdout.decode("utf-8", errors="replace"), len(imgs))

    def _one(self, img: np.ndarray, timeout_s: float, psm: int) -> str | Exception:
        try:
            return self.read(img, timeout_s, psm)
        except (ReadTimeout, EngineError, OSError) as e:
            return e

    def close(self) -> None:
        pass


def split_pages(tsv: str, n: int) -> list[str]:
    """The TSV of a multi-image run as one TSV per image (page_num 1..n), each with the header row."""
    lines = tsv.splitlines()
    header = lines[0] if lines and lines[0].startswith("level") else "level\tpage_num"
    pages: list[list[str]] = [[] for _ in range(n)]
    for row in lines[1:] if lines and lines[0].startswith("level") else lines:
        p = row.split("\t", 2)
        if len(p) >= 2 and p[1].isdigit() and 1 <= int(p[1]) <= n:
            pages[int(p[1]) - 1].append(row)
    return ["\n".join([header, *rows]) for rows in pages]


def make_reader(engine: str, exe: str | None, tessdata: str | None, languages: tuple[str, ...]):
    """A reader for a resolved engine name ('tesserocr': worker processes, 'inproc': this process, 'cli': the binary)."""
    if engine in ("tesserocr", "inproc"):
        if not tessdata:
            raise EngineError("no tessdata folder found for tesserocr (install tesseract-ocr or set TESSDATA_PREFIX)")
        return ProcReader(tessdata, languages) if engine == "tesserocr" else TesserocrReader(tessdata, languages)
    if not exe or not shutil.which(exe):
        raise EngineError(f"{exe} not found: install tesseract-ocr")
    return CliReader(exe, languages)
