"""Loading the Whisper models, the VAD and their provenance, once per process."""

from __future__ import annotations

import functools
import os
import threading
import time
from dataclasses import dataclass, field

from ...core.models import ModelSourceError, packaged_file_record
from .config import WhisperConfig
from .sources import WhisperLoadError, WhisperSource

VAD_FILE = "whisperx/assets/pytorch_model.bin"  # the VAD model WhisperX ships (no download), recorded with its RECORD sha256


@dataclass
class LoadedWhisper:
    model: object  # whisperx.asr.WhisperModel (faster-whisper subclass)
    lang_model: object | None  # multilingual model for language ID (may be `model` itself)
    vad: object  # whisperx Pyannote VAD
    cfg: WhisperConfig
    device: str
    info: dict
    lock: threading.Lock = field(default_factory=threading.Lock)
    _align: dict = field(default_factory=dict)


def load_ct2(spec: str, device: str, compute_type: str, threads: int, family: str = "whisper"):
    from whisperx.asr import WhisperModel

    path, info = WhisperSource(spec, family).resolve(fetch=True)  # a local folder: hub names come from the cache or the hub
    try:
        m = WhisperModel(path, device=device, compute_type=compute_type, cpu_threads=threads, local_files_only=True)
    except Exception as exc:  # bad folder, unsupported compute type...
        raise WhisperLoadError(f"cannot load Whisper model {spec!r}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from None
    info.update({"multilingual": bool(m.model.is_multilingual), "compute_type": compute_type, "device": device})
    return m, info


@functools.lru_cache(maxsize=4)
def get_whisper(cfg: WhisperConfig, device: str) -> LoadedWhisper:
    from ...core.caches import import_contained
    from ...core.cpu_share import quiet_openmp_waits

    # before CTranslate2 and torch start their libgomp (read once, at load): idle OpenMP threads sleep instead of
    # spinning (PRISM_OMP_WAIT_POLICY; the threads executor sets it at the run's start already, this covers the
    # other executors and direct calls). Spinning beside one busy encoder made the transcript 3-17x slower and 3-19x
    # the CPU (benchmarks/results/executors.json, micro_transcript)
    quiet_openmp_waits()
    import_contained("onnxruntime")  # before faster-whisper / WhisperX import it: its cache goes to the data dir
    import ctranslate2
    import faster_whisper
    import torch
    from whisperx.vads import Pyannote

    ct = cfg.compute_type_for(device)
    threads = cfg.cpu_threads or (os.cpu_count() or 4)
    t0 = time.perf_counter()
    model, minfo = load_ct2(cfg.model, device, ct, threads)
    lang_model, linfo = (model, None) if minfo["multilingual"] else (None, None)
    if not minfo["multilingual"] and cfg.language_model and not cfg.language:
        lang_model, linfo = load_ct2(cfg.language_model, device, ct, threads, family="whisper_language")
        if not linfo["multilingual"]:
            raise WhisperLoadError(f"language_model {cfg.language_model!r} is English-only: it cannot detect languages")
    try:
        vad = Pyannote(torch.device(device), token=None, vad_onset=cfg.vad_onset, vad_offset=cfg.vad_offset, chunk_size=cfg.chunk_size)
    except Exception as exc:
        raise WhisperLoadError(f"cannot load the WhisperX VAD model: {str(exc).strip().splitlines()[0]}") from None
    from importlib import metadata

    try:
        vad_record = packaged_file_record("vad", "whisperx", VAD_FILE, name="whisperx bundled pyannote segmentation")
    except ModelSourceError as exc:
        raise WhisperLoadError(f"the WhisperX VAD model: {exc}") from None
    info = {
        "transcription": minfo,
        "language_detection": (linfo or minfo) if lang_model is not None else None,
        "language_detection_note": None if lang_model is not None else (
            f"forced language {cfg.language!r}" if cfg.language else "English-only model and no language_model: language assumed 'en', not detected"),
        "vad": {**vad_record, "method": "pyannote", "model": f"whisperx bundled segmentation ({VAD_FILE})",
                "onset": cfg.vad_onset, "offset": cfg.vad_offset, "chunk_size": cfg.chunk_size},
        "align_model": cfg.align_model,
        "batch_size": cfg.batch_size, "beam_size": cfg.beam_size, "compute_type": ct, "device": device, "cpu_threads": threads,
        "whisperx_version": metadata.version("whisperx"), "faster_whisper_version": faster_whisper.__version__,
        "ctranslate2_version": ctranslate2.__version__, "load_seconds": None,
    }
    info["load_seconds"] = round(time.perf_counter() - t0, 3)
    return LoadedWhisper(model=model, lang_model=lang_model, vad=vad, cfg=cfg, device=device, info=info)
