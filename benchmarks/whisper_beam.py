"""Whisper's beam size on CPU: word error rate against CPU seconds, beam 5 and beam 1 side by side.

    PYTHONPATH=. .venv/bin/python -m benchmarks.whisper_beam [--reps 2] [--lines 60] [--out benchmarks/results/whisper_beam.json]

The transcript step's own code (`get_whisper` + `transcribe_audio`, the profile's multilingual `base`, int8, batch 8)
on three inputs with exact or gold truth:

- ``jfk``: ../shared/media/jfk.flac (11 s, real speech, public domain), its reference transcript;
- ``mit_en``: the first 30 s of ../shared/media/multilingual.mp3 (real speech: the MIT licence read in English), the
  gold English reference of multilingual.txt;
- ``espeak``: `--lines` sentences of the feature benchmark's grammar (benchmarks/feature_media.py), each in one of its 8
  espeak-ng voices at 140-180 words a minute, 0.4-2.5 s apart over a quiet noise bed, the sentences as the truth.

Beam sizes run alternately (5, 1, 1, 5, ...) in one process with the model loaded once per beam size, so both see the
same host. Recorded per input and beam: the word error rate (words lower-cased, punctuation dropped; errors over all
reference words), the CPU seconds of the process (CTranslate2's threads included) and the wall seconds, min over reps.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO.parent / "shared" / "media"
OUT = REPO / "benchmarks" / "results" / "whisper_beam.json"
BEAMS = (5, 1)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _ffmpeg_wav(src: Path, dst: Path, seconds: float | None = None) -> Path:
    cut = ["-t", str(seconds)] if seconds else []
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), *cut, "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", str(dst)],
                   check=True, capture_output=True, timeout=120)
    return dst


def espeak_track(work: Path, lines: int, seed: int = 0) -> tuple[Path, str, float]:
    """`lines` sentences in the feature title's voices over a noise bed: the WAV, the truth, the seconds."""
    from benchmarks.feature_media import VOICES, sentence
    from prism_assets_tests.support.localization_media import SR, _wav, bed, speak

    rng = np.random.default_rng(seed)
    parts, truth = [], []
    for i in range(lines):
        text = sentence(rng)
        sig = speak(text, str(rng.choice(VOICES)), work / f"line{i}.wav", int(rng.integers(140, 181)))
        parts += [0.7 * sig, np.zeros(int(float(rng.uniform(0.4, 2.5)) * SR))]
        truth.append(text)
    speech = np.concatenate(parts)
    audio = speech + rng.normal(0, 2e-4, len(speech)) + np.pad(bed(len(speech) / SR, seed=seed, level=0.03), (0, len(speech)))[:len(speech)]
    path = _wav(work / "espeak.wav", audio)
    wav16 = _ffmpeg_wav(path, work / "espeak16.wav")
    return wav16, " ".join(truth), len(speech) / SR


def inputs(work: Path, lines: int) -> dict[str, tuple[Path, str]]:
    mit = [ln for ln in (MEDIA / "multilingual.txt").read_text().splitlines() if ln.strip() and not ln.startswith("#")][0]
    esp, truth, _ = espeak_track(work, lines)
    return {"jfk": (_ffmpeg_wav(MEDIA / "jfk.flac", work / "jfk.wav"), (MEDIA / "jfk.txt").read_text().strip()),
            "mit_en": (_ffmpeg_wav(MEDIA / "multilingual.mp3", work / "mit_en.wav", 30.0), mit),
            "espeak": (esp, truth)}


def main(argv=None) -> int:
    from benchmarks.audio_benchmark import wer
    from prism_assets.audio.whisper import WhisperConfig, get_whisper, load_wav16, transcribe_audio
    from prism_assets.audio.whisper.sources import PKG_BASE

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--lines", type=int, default=60)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="whisper_beam_"))
    media = inputs(work, args.lines)
    audio = {k: load_wav16(str(p), mmap=False) for k, (p, _) in media.items()}
    models = {b: get_whisper(WhisperConfig(model=PKG_BASE, batch_size=8, compute_type="int8", beam_size=b), "cpu") for b in BEAMS}
    runs: dict[int, dict[str, list]] = {b: {k: [] for k in media} for b in BEAMS}
    load0 = list(os.getloadavg())
    for rep in range(args.reps):
        for b in (BEAMS if rep % 2 == 0 else BEAMS[::-1]):
            for k, (_, truth) in media.items():
                c0, t0 = time.process_time(), time.perf_counter()
                r = transcribe_audio(models[b], audio[k])
                cpu, wall = time.process_time() - c0, time.perf_counter() - t0
                text = " ".join(s["text"].strip() for s in r["segments"])
                runs[b][k].append({"cpu_s": round(cpu, 2), "wall_s": round(wall, 2), "wer": round(wer(truth, text), 4), "text": text})
                print(f"beam {b} {k}: cpu {cpu:.2f} s, wall {wall:.2f} s, WER {runs[b][k][-1]['wer']}", flush=True)
    from benchmarks.audio_benchmark import _words

    res = {}
    for b in BEAMS:
        per = {}
        for k, (_, truth) in media.items():
            rr = runs[b][k]
            per[k] = {"wer": rr[0]["wer"], "wer_all_reps": [x["wer"] for x in rr], "cpu_s_min": min(x["cpu_s"] for x in rr),
                      "wall_s_min": min(x["wall_s"] for x in rr), "cpu_s_all": [x["cpu_s"] for x in rr], "ref_words": len(_words(truth)),
                      "text": rr[0]["text"]}
        words = sum(v["ref_words"] for v in per.values())
        res[f"beam_{b}"] = {"inputs": per, "cpu_s_total": round(sum(v["cpu_s_min"] for v in per.values()), 2),
                            "wer_pooled": round(sum(v["wer"] * v["ref_words"] for v in per.values()) / words, 4)}
    doc = {"benchmark": "whisper_beam", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
                       "loadavg_start_end": [load0, list(os.getloadavg())]},
           "model": models[BEAMS[0]].info.get("transcription"), "settings": {"compute_type": "int8", "batch_size": 8, "device": "cpu"},
           "audio_s": {k: round(len(a) / 16000, 1) for k, a in audio.items()}, "reps": args.reps, "results": res,
           "cpu_ratio_beam1_over_beam5": round(res["beam_1"]["cpu_s_total"] / res["beam_5"]["cpu_s_total"], 3),
           "method": __doc__.split("\n\n", 2)[2].strip()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, default=str))
    print(json.dumps({k: {"cpu_s_total": v["cpu_s_total"], "wer_pooled": v["wer_pooled"], **{i: x["wer"] for i, x in v["inputs"].items()}}
                      for k, v in res.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
