"""A run's models leave memory once no step left in the run needs them.

Model resources hold process-wide caches (Whisper, CLIP, diarization, the text model): loaded on first use and
kept for every later step of the process. In a one-title run each of them serves one or two steps, so keeping them
all made a title's memory the sum of its models (a 10-minute title peaked at 4.25 GB while its transcript model sat
idle through OCR, CLIP and the proxy: benchmarks/results/feature.json). A model resource that defines `release()`
(drop what its cache holds; True when something was held) is released by the threads executor as soon as no step of
the run still to run, or running, requires its resource key; then the freed memory is handed back to the operating
system (`trim`: the garbage collector, then glibc's `malloc_trim`). A step that needs the model again later (a
retry) loads it again: slower, never wrong. Every other finished step hands back the heap pages it freed
(`release_free_heap`: malloc_trim alone): glibc keeps a multi-threaded step's freed pages in its threads' arenas, and
on the 10-minute feature title that lowered the run's peak PSS by ~0.35 GB (benchmarks/results/feature.json `tried`).
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Iterable, Mapping


def release_free_heap() -> bool:
    """glibc's `malloc_trim` alone (no garbage collection): freed pages held in the threads' arenas (a visual pass decodes
    in several threads, a LanceDB scan in its own) back to the OS. False where the C library is not glibc."""
    try:
        return bool(ctypes.CDLL(None).malloc_trim(0))  # the C library the process already runs on (no search)
    except (OSError, AttributeError):
        return False


def trim() -> bool:
    """Collect garbage, then `release_free_heap` (glibc only; elsewhere: False)."""
    gc.collect()
    return release_free_heap()


class ModelReleaser:
    """Tracks which steps of a run are left and which resource keys they require."""

    def __init__(self, needs: Mapping[str, Iterable[str]], resources: Mapping[str, object]):
        self.needs = {step: frozenset(keys) for step, keys in needs.items()}  # step key -> its required resource keys
        self.releasable = {k: r for k, r in resources.items() if callable(getattr(r, "release", None))}

    @classmethod
    def for_plan(cls, job_def, execution_plan, resources: Mapping[str, object]) -> "ModelReleaser":
        needs = {step.key: job_def.get_node(step.node_handle).definition.required_resource_keys
                 for step in execution_plan.get_steps_to_execute_in_topo_order()}
        return cls(needs, resources)

    def step_done(self, step_key: str) -> list[str]:
        """`step_key` ended (its last attempt so far): the model resources no remaining step requires are released.
        Returns the keys released now (those that held a model)."""
        self.needs.pop(step_key, None)
        wanted = frozenset().union(*self.needs.values()) if self.needs else frozenset()
        now = [key for key, resource in self.releasable.items() if key not in wanted and resource.release()]
        if now:
            trim()
        else:
            release_free_heap()
        return now
