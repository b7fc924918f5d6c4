"""A persistent Tesseract reader process (the ``tesserocr`` engine of ``ocr_engine``): one model loaded, images in, TSV out.

Run as a script (no package import: only tesserocr loads), with OMP_THREAD_LIMIT=1 in its
environment from the start: libtesseract's OpenMP threads spin when idle, and in a process where another library
(torch) already started libgomp the limit cannot be applied any more (measured: 4x the CPU for the same reads).

    python ocr_worker.py --version                  -> one JSON line {"tesserocr", "tesseract", "leptonica"}
    python ocr_worker.py TESSDATA LANGS             -> {"ready": true, ...} then, per request on stdin:
        one JSON line {"psm": N, "w": W, "h": H, "timeout_ms": T} then W*H bytes of 8-bit greyscale;
        answer: one JSON line {"tsv": "..."} | {"timeout": true} | {"error": "..."}
"""

from __future__ import annotations

import json
import re
import sys


def _versions() -> dict:
    import importlib.metadata

    import tesserocr

    text = tesserocr.tesseract_version()
    t, lep = re.search(r"tesseract\s+v?(\S+)", text), re.search(r"leptonica-(\S+)", text)
    return {"tesserocr": importlib.metadata.version("tesserocr"), "tesseract": t.group(1) if t else None, "leptonica": lep.group(1) if lep else None}


def _send(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def serve(tessdata: str, langs: str) -> None:
    import tesserocr

    if hasattr(tesserocr, "set_leptonica_log_level"):  # "Error in boxClipToRectangle" on small crops: internal, harmless
        tesserocr.set_leptonica_log_level(tesserocr.LeptLogLevel.NONE)
    try:
        api = tesserocr.PyTessBaseAPI(path=tessdata.rstrip("/") + "/", lang=langs, oem=tesserocr.OEM.LSTM_ONLY)
    except RuntimeError as e:
        _send({"error": f"tesserocr cannot load {langs} from {tessdata}: {str(e).splitlines()[0]}"})
        return
    api.SetVariable("debug_file", "/dev/null")  # Tesseract's own notes ("Estimating resolution ...") off stderr
    _send({"ready": True, **_versions()})
    stdin = sys.stdin.buffer
    while True:
        line = stdin.readline()
        if not line:
            return
        req = json.loads(line)
        w, h = int(req["w"]), int(req["h"])
        data = stdin.read(w * h)
        try:
            api.SetPageSegMode(int(req["psm"]))
            api.SetImageBytes(data, w, h, 1, w)
            api.SetSourceResolution(70)  # what the command line falls back to for a PNG without a resolution
            if not api.Recognize(timeout=int(req["timeout_ms"])):
                api.Clear()
                _send({"timeout": True})
                continue
            _send({"tsv": api.GetTSVText(0)})
        except RuntimeError as e:
            _send({"error": str(e).splitlines()[0] if str(e) else type(e).__name__})


if __name__ == "__main__":
    if sys.argv[1:] == ["--version"]:
        try:
            _send(_versions())
        except ImportError:
            _send({})
    else:
        serve(sys.argv[1], sys.argv[2])
