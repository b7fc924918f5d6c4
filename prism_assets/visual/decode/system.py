"""The machine the pass runs on: usable CPUs (affinity and cgroup quota), decode lanes and threads,
picture memory, and the allocator tuning."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import VisualPassConfig

def usable_cpus(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota (ECS and
    Kubernetes limits show up there, not in the affinity mask)."""
    import os

    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def frame_mb(frame) -> float:
    """MB of one decoded picture (4:2:0; twice that for >8-bit formats)."""
    return max(1, frame.width * frame.height) * 1.5 * (2 if "10" in frame.format.name or "12" in frame.format.name else 1) / 2**20


def decode_lanes_for(cfg: "VisualPassConfig", closed_gops: bool, frame_mb: float = 3.0) -> tuple[int, int]:
    """(lanes, decoder threads per lane). One lane with FFmpeg frame threads where GOPs cannot be
    split; otherwise `decode_lanes` (0 = one per usable CPU, at most 4, and no more than ~6
    reference pictures per decoder fit in 512 MB: one lane at 8K), the CPUs shared between them."""
    cpus = usable_cpus()
    lanes = cfg.decode_lanes or min(4, cpus, max(1, int(512 // (6 * frame_mb))))
    if not closed_gops:
        lanes = 1
    lanes = max(1, int(lanes))
    threads = cfg.threads if cfg.threads else (0 if lanes == 1 else max(1, cpus // lanes))
    return lanes, threads



_ALLOCATOR_TUNED = False


def tune_allocator() -> None:
    """Keep freed large blocks in the process heap (glibc only, once per process).

    The pass allocates and frees frame-sized buffers at frame rate (swscale outputs, numpy work
    arrays). By default glibc hands blocks over its adaptive mmap threshold back to the kernel and
    trims the heap top, so every reuse costs fresh zeroed pages: ~100 page faults per 1080p frame,
    ~8 % of the pass's CPU on two cores. A fixed 32 MB mmap threshold and a 256 MB trim threshold
    keep them for reuse (resident memory stays bounded by the pass's own working set).
    `PRISM_MALLOC_TUNING=0` turns this off."""
    global _ALLOCATOR_TUNED
    import os

    if _ALLOCATOR_TUNED or os.environ.get("PRISM_MALLOC_TUNING", "1") == "0":
        return
    _ALLOCATOR_TUNED = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)
        libc.mallopt(m_trim_threshold, 256 * 1024 * 1024)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass
