"""CPU sharing while a title's steps overlap (the threads executor, core/step_threads.py): idle OpenMP threads of
CTranslate2 and torch sleep instead of spinning (`quiet_openmp_waits`), and the subprocesses off a title's critical path
(the proxy's ffmpeg, the OCR's tesseract) start with a lower priority (`background`). Measured in
benchmarks/results/executors.json; the settings are PRISM_OMP_WAIT_POLICY and PRISM_BACKGROUND_NICE (settings.py)."""

from __future__ import annotations

import os
import shutil
import sys

# native libraries that start an OpenMP runtime (GNU libgomp: ctranslate2.libs/, torch/lib/) when imported
OPENMP_MODULES = ("ctranslate2", "torch")


def quiet_openmp_waits(env=None, policy: str | None = None) -> dict:
    """Before any step of the run loads CTranslate2 or torch: OMP_WAIT_POLICY from PRISM_OMP_WAIT_POLICY
    (settings.omp_wait_policy; default passive), unless the environment already sets it. libgomp reads it once, when
    it loads; with its default (spin ~300,000 rounds after each parallel region) Whisper's idle threads burn the
    cores the run's other steps are waiting for. Returns what was done (for the run's engine event): {policy, set,
    late: the OpenMP libraries already loaded in this process, which keep the policy they started with}."""
    from ..settings import omp_wait_policy

    env = os.environ if env is None else env
    policy = policy or omp_wait_policy(env)
    late = [m for m in OPENMP_MODULES if m in sys.modules]
    if policy == "library" or env.get("OMP_WAIT_POLICY"):
        return {"policy": env.get("OMP_WAIT_POLICY") or "library", "set": False, "late": late}
    env["OMP_WAIT_POLICY"] = policy.upper()
    return {"policy": policy.upper(), "set": True, "late": late}


def background(cmd: list[str], nice: int | None = None) -> list[str]:
    """`cmd` for a subprocess off the title's critical path (the proxy's ffmpeg, tesseract): started through
    `nice -n N` (settings.background_nice, PRISM_BACKGROUND_NICE; default 10), so that while a run's steps overlap
    the critical path (the transcript) gets the cores first. The niceness is set before exec, so every thread of the
    process has it (setpriority on a started pid reaches only its first thread; preexec_fn is unsafe in a process with
    threads). 0, or no `nice` binary: `cmd` unchanged."""
    if nice is None:
        from ..settings import background_nice

        nice = background_nice()
    exe = _nice_exe() if nice > 0 else None
    return [exe, "-n", str(int(nice)), *cmd] if exe else list(cmd)


def _nice_exe() -> str | None:
    return shutil.which("nice")
