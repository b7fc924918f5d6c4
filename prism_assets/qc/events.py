"""QC events: the frame/time timeline of a title, event constructors, verdict and reasons, and the
validation of events contributed by other signals (core.signal `Output.qc_events`)."""

from __future__ import annotations

import numpy as np

SEVERITIES = ("info", "warn", "fail")
VERDICTS = ("pass", "warn", "fail")


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (first, last) index ranges where mask is True."""
    m = np.asarray(mask, dtype=bool)
    if not m.size:
        return []
    d = np.diff(np.concatenate([[0], m.astype(np.int8), [0]]))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1) - 1
    return list(zip(starts.tolist(), ends.tolist()))


class Timeline:
    """Frame <-> time on the title's real frame timestamps (VFR keeps its times)."""

    def __init__(self, t_s: np.ndarray, fps: float, duration_s: float | None = None):
        self.t = np.asarray(t_s, dtype=float)
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.n = len(self.t)
        last_end = float(self.t[-1] + 1.0 / self.fps) if self.n else 0.0
        self.duration = float(duration_s) if duration_s and duration_s > 0 else last_end
        self.duration = max(self.duration, last_end) if self.n else self.duration

    def start(self, i: int) -> float:
        return float(self.t[i])

    def end(self, i: int) -> float:
        """End of frame i = start of the next frame (the last frame lasts 1/fps)."""
        return float(self.t[i + 1]) if i + 1 < self.n else float(self.t[i] + 1.0 / self.fps)

    def frames_of(self, start_s: float, end_s: float) -> tuple[int | None, int | None]:
        """The frames shown during [start_s, end_s): first frame whose interval mostly lies after
        start_s, last frame starting before end_s (half a frame of slack either way)."""
        if not self.n:
            return None, None
        half = 0.5 / self.fps
        a = int(np.searchsorted(self.t, start_s - half, side="left"))
        b = int(np.searchsorted(self.t, end_s - half, side="left")) - 1
        a = min(max(a, 0), self.n - 1)
        b = min(max(b, a), self.n - 1)
        return a, b


def make_event(kind: str, severity: str, detail: str, *, start_s: float, end_s: float, start_frame=None, end_frame=None,
           track=None, metrics: dict | None = None) -> dict:
    return {
        "kind": kind,
        "track": None if track is None else int(track),
        "start_s": round(float(start_s), 4),
        "end_s": round(float(end_s), 4),
        "start_frame": None if start_frame is None else int(start_frame),
        "end_frame": None if end_frame is None else int(end_frame),
        "severity": severity,
        "detail": detail,
        "metrics": metrics or {},
    }


def frame_event(tl: Timeline, kind: str, severity: str, detail: str, a: int, b: int, metrics=None) -> dict:
    return make_event(kind, severity, detail, start_s=tl.start(a), end_s=tl.end(b), start_frame=a, end_frame=b, metrics=metrics)


def time_event(tl: Timeline, kind: str, severity: str, detail: str, start_s: float, end_s: float, track=None, metrics=None) -> dict:
    a, b = tl.frames_of(start_s, end_s)
    return make_event(kind, severity, detail, start_s=start_s, end_s=end_s, start_frame=a, end_frame=b, track=track, metrics=metrics)


def whole_event(tl: Timeline, kind: str, severity: str, detail: str, track=None, metrics=None) -> dict:
    return make_event(kind, severity, detail, start_s=0.0, end_s=tl.duration, start_frame=0 if tl.n else None,
                  end_frame=tl.n - 1 if tl.n else None, track=track, metrics=metrics)


def escalate(sev: str, length_s: float, long_s: float, duration: float, ratio: float) -> str:
    if length_s >= long_s or (duration > 0 and length_s >= ratio * duration):
        return "fail"
    return sev




def verdict_of(events: list[dict]) -> str:
    sev = {e["severity"] for e in events}
    return "fail" if "fail" in sev else "warn" if "warn" in sev else "pass"


def reasons_of(events: list[dict]) -> list[str]:
    """One line per (kind, severity) that drives the verdict (warn and fail), worst first."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for e in events:
        if e["severity"] in ("warn", "fail"):
            groups.setdefault((e["severity"], e["kind"]), []).append(e)
    out = []
    for (sev, kind), evs in sorted(groups.items(), key=lambda kv: (0 if kv[0][0] == "fail" else 1, kv[0][1])):
        if len(evs) == 1:
            out.append(f"{sev}: {kind}: {evs[0]['detail']}")
        else:
            total = sum(e["end_s"] - e["start_s"] for e in evs)
            out.append(f"{sev}: {kind}: {len(evs)} events, {total:.2f} s in all (first: {evs[0]['detail']})")
    return out


def validate_events(events: list, source: str) -> list[dict]:
    """Events contributed by another signal (its `Output.qc_events` hook), checked and normalized:
    kind, severity (info | warn | fail), detail, start_s <= end_s; frames and track optional."""
    out = []
    for i, e in enumerate(events or []):
        if not isinstance(e, dict):
            raise ValueError(f"{source}: QC event {i} is not a mapping")
        missing = [k for k in ("kind", "severity", "detail", "start_s", "end_s") if k not in e]
        if missing:
            raise ValueError(f"{source}: QC event {i} lacks {', '.join(missing)}")
        if e["severity"] not in SEVERITIES:
            raise ValueError(f"{source}: QC event {i} has severity {e['severity']!r} (one of {', '.join(SEVERITIES)})")
        if not float(e["start_s"]) <= float(e["end_s"]):
            raise ValueError(f"{source}: QC event {i} ends before it starts")
        ev = make_event(str(e["kind"]), e["severity"], str(e["detail"]), start_s=e["start_s"], end_s=e["end_s"],
                        start_frame=e.get("start_frame"), end_frame=e.get("end_frame"), track=e.get("track"),
                        metrics={**(e.get("metrics") or {}), "source": source})
        out.append(ev)
    return out
