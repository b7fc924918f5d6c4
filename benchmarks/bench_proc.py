"""What the end-to-end benchmarks (e2e.py, feature.py) share: a child process timed with its rusage, the resident memory
and CPU of a whole process tree sampled from /proc, and the timeline of a Prism run's steps from the Dagster event log."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = REPO / ".venv" / "bin" / "python"
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def run_timed(cmd: list[str], *, env: dict | None = None, cwd: Path = REPO, log: Path | None = None, t0: float | None = None,
              sample: bool = False, interval_s: float = 1.0, timeout_s: float | None = None) -> dict:
    """Run `cmd` to its end: wall seconds, CPU seconds of it and every descendant it waited for (wait4's rusage), the
    peak RSS of its largest process, start/end offsets from `t0` (a perf_counter value) and, with `sample`, the tree's
    summed RSS over time (`TreeSampler`)."""
    t0 = time.perf_counter() if t0 is None else t0
    out = open(log, "wb") if log else subprocess.DEVNULL
    start = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL)
    sampler = TreeSampler(p.pid, interval_s).start() if sample else None
    timer = threading.Timer(timeout_s, p.kill) if timeout_s else None
    if timer:
        timer.start()
    _, status, ru = os.wait4(p.pid, 0)
    end = time.perf_counter()
    p.returncode = os.waitstatus_to_exitcode(status)
    if timer:
        timer.cancel()
    if log:
        out.close()
    res = {"rc": p.returncode, "wall_s": round(end - start, 2), "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
           "max_rss_one_process_mb": round(ru.ru_maxrss / 1024, 1), "start_s": round(start - t0, 2), "end_s": round(end - t0, 2)}
    if sampler:
        res.update(sampler.stop())
    return res


def _procs() -> dict[int, tuple[int, int, float]]:
    """pid -> (ppid, rss bytes, cpu seconds) of every readable process."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            fields = st[st.rindex(")") + 2:].split()
            out[int(d)] = (int(fields[1]), int(fields[21]) * PAGE, (int(fields[11]) + int(fields[12])) / TICK)
        except (OSError, ValueError, IndexError):
            continue
    return out


def _pss(pid: int) -> int:
    """Proportional set size in bytes (shared pages split between their processes), 0 when unreadable."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _machine_busy() -> tuple[float, float]:
    with open("/proc/stat") as f:
        v = [float(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0.0)
    return sum(v) - idle, sum(v)


class TreeSampler:
    """Every `interval_s`: the summed RSS and PSS (shared pages split: the tree's real footprint) of `root` and all its descendants (shared pages counted in each process, so an
    upper bound), the number of processes, the tree's CPU seconds (per pid the last value seen, summed: the processes
    alive at some sample) and the machine's busy fraction since the previous sample."""

    def __init__(self, root: int, interval_s: float = 1.0, exclude: set[int] | None = None):
        self.root, self.interval_s, self.exclude = root, interval_s, exclude or set()
        self.series: list[list] = []
        self.cpu_by_pid: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.t0 = time.perf_counter()

    def start(self) -> "TreeSampler":
        self._thread.start()
        return self

    def _loop(self) -> None:
        prev = _machine_busy()
        while not self._stop.is_set():
            procs = _procs()
            kids: dict[int, list[int]] = {}
            for pid, (ppid, _, _) in procs.items():
                kids.setdefault(ppid, []).append(pid)
            tree, todo = [], [self.root]
            while todo:
                pid = todo.pop()
                if pid in procs and pid not in self.exclude:
                    tree.append(pid)
                todo += kids.get(pid, [])
            for pid in tree:
                self.cpu_by_pid[pid] = procs[pid][2]
            now = _machine_busy()
            busy = (now[0] - prev[0]) / (now[1] - prev[1]) if now[1] > prev[1] else 0.0
            prev = now
            self.series.append([round(time.perf_counter() - self.t0, 1), round(sum(procs[p][1] for p in tree) / 2**20, 1), len(tree),
                                round(sum(self.cpu_by_pid.values()), 1), round(busy, 3), round(sum(_pss(p) for p in tree) / 2**20, 1)])
            self._stop.wait(self.interval_s)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(timeout=10)
        rss = [s[1] for s in self.series]
        peak = max(rss, default=0.0)
        q = len(rss) // 4
        return {"peak_rss_tree_mb": peak, "peak_pss_tree_mb": max((s[5] for s in self.series), default=0.0), "rss_tree_p50_mb": sorted(rss)[len(rss) // 2] if rss else 0.0,
                "rss_growth_after_first_quarter_mb": round(max(rss[q:], default=0.0) - max(rss[:q], default=0.0), 1) if q else None,
                "cpu_s_tree_sampled": round(sum(self.cpu_by_pid.values()), 1),
                "machine_busy_mean": round(sum(s[4] for s in self.series) / len(self.series), 3) if self.series else None,
                "samples": {"interval_s": self.interval_s, "columns": ["t_s", "rss_tree_mb", "processes", "cpu_s_tree", "machine_busy", "pss_tree_mb"],
                            "rows": self.series}}


TIMELINE_CODE = """import json,sys
from dagster import DagsterInstance, DagsterEventType as T, RunsFilter
i=DagsterInstance.get()
recs=i.get_run_records(RunsFilter(tags={'dagster/partition': sys.argv[1]}), limit=1)
if not recs: print('{}'); sys.exit(0)
r=recs[0]; tags=r.dagster_run.tags
out={'run_id': r.dagster_run.run_id, 'status': r.dagster_run.status.value, 'run_start': r.start_time, 'run_end': r.end_time, 'steps': {},
     'qc_verdict': tags.get('prism/qc_verdict'), 'qc_reason': tags.get('prism/qc_reason')}
kinds={T.STEP_START: 'start', T.STEP_SUCCESS: 'end', T.STEP_FAILURE: 'end', T.STEP_SKIPPED: 'end'}
for e in i.all_logs(r.dagster_run.run_id, of_type=set(kinds)):
    d=out['steps'].setdefault(e.step_key, {})
    d[kinds[e.dagster_event.event_type]]=e.timestamp
    if e.dagster_event.event_type==T.STEP_FAILURE: d['failed']=True
print(json.dumps(out))
"""


def run_timeline(dagster_home: Path, partition: str, origin_epoch: float | None = None) -> dict:
    """The latest run of `partition` on the instance at `dagster_home`: per step its start/end offsets (seconds from
    `origin_epoch`, else from the run's start) and duration, ordered by start; `steps_overlap` = sum of the step
    durations / the run's wall (1.0: one step at a time); the run's QC verdict and first reason (its `prism/qc_*` tags:
    a title that cannot ship ends its run failed at `release`, after every other step)."""
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "PYTHONPATH": str(REPO)}
    p = subprocess.run([str(PY), "-c", TIMELINE_CODE, partition], env=env, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        return {"error": p.stderr.strip()[-500:]}
    doc = json.loads(p.stdout or "{}")
    if not doc:
        return {"error": f"no run of {partition}"}
    origin = origin_epoch if origin_epoch is not None else doc["run_start"]
    steps = []
    for key, d in doc["steps"].items():
        if "start" in d and "end" in d:
            steps.append({"step": key, "start_s": round(d["start"] - origin, 2), "end_s": round(d["end"] - origin, 2),
                          "seconds": round(d["end"] - d["start"], 2), **({"failed": True} if d.get("failed") else {})})
    steps.sort(key=lambda s: s["start_s"])
    run_wall = (doc["run_end"] or 0) - (doc["run_start"] or 0)
    total = sum(s["seconds"] for s in steps)
    return {"run_id": doc["run_id"], "status": doc["status"], "qc_verdict": doc.get("qc_verdict"), "qc_reason": doc.get("qc_reason"),
            "run_start_s": round(doc["run_start"] - origin, 2) if doc["run_start"] else None,
            "run_wall_s": round(run_wall, 2), "steps_s": {s["step"]: s["seconds"] for s in steps}, "timeline": steps,
            "sum_step_s": round(total, 2), "steps_overlap_of_run": round(total / run_wall, 3) if run_wall > 0 else None}


def host_speed() -> dict:
    """What this host's CPU is and how fast, so results from different hosts can be set side by side (the same code took
    twice the CPU seconds on one 2-core host as on another): the CPU model and the vector extensions the encoders use,
    and the CPU seconds of a fixed single-threaded x264 encode (4 s of 720p24 testsrc2, veryfast)."""
    import resource

    flags, model = set(), None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model is None:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=24:duration=4",
                    "-c:v", "libx264", "-preset", "veryfast", "-threads", "1", "-f", "null", "-"], check=False, timeout=300)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"cpu_model": model, "vector_extensions": sorted(f for f in flags if f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")),
            "x264_calibration_cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 3)}


def environment() -> dict:
    import platform
    from datetime import datetime, timezone

    ff = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    return {"measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "ffmpeg": ff, "loadavg_start": list(os.getloadavg()), "host": host_speed(), "code": code_state()}


def code_state() -> dict:
    """The commit measured and whether the working tree differed from it (tracked files; results/ excluded)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            return ""
    changed = [ln[3:] for ln in git("status", "--porcelain", "--untracked-files=no").splitlines() if "benchmarks/results/" not in ln]
    return {"commit": git("rev-parse", "--short=12", "HEAD").strip() or None, "uncommitted_changes": changed[:20]}


def write_result(path: Path, result: dict, keep: int = 6) -> None:
    """`{"latest": result, "runs": [... the last `keep`]}`, as benchmarks/daemon_path.py writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    prev = json.loads(path.read_text()) if path.exists() else {}
    runs = prev.get("runs", []) if isinstance(prev, dict) else []
    runs.append(result)
    path.write_text(json.dumps({"latest": result, "runs": runs[-keep:]}, indent=1) + "\n")
