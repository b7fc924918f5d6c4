"""The threads executor (core/step_threads.py): independent steps of one run at once in the run worker's
process, Dagster's own bookkeeping for the rest (dependencies, failures and skips, retries, pools,
priorities). Concurrency is proven with barriers (two steps that each wait for the other can only finish
together), never with timings."""

from __future__ import annotations

import threading

import pytest
from dagster import (
    ConfigurableResource,
    DagsterEventType,
    Definitions,
    Failure,
    RetryPolicy,
    asset,
    build_reconstructable_job,
    define_asset_job,
    execute_job,
    instance_for_test,
)

from prism_assets.core.step_threads import threads_executor_def

pytestmark = pytest.mark.unit

LOG: list[tuple[str, str]] = []  # (event, step) in the order the steps did them
LOCK = threading.Lock()
BARRIER = threading.Barrier(2, timeout=20)
ATTEMPTS = {"flaky": 0}


def note(what: str, step: str):
    with LOCK:
        LOG.append((what, step))


@asset
def source():
    note("start", "source")
    return 1


@asset
def left(source):
    note("start", "left")
    BARRIER.wait()  # returns only when `right` has reached it too: both steps are running
    return source + 1


@asset
def right(source):
    note("start", "right")
    BARRIER.wait()
    return source + 2


@asset
def joined(left, right):
    note("start", "joined")
    return left + right


@asset
def broken(source):
    raise Failure(description="broken on purpose")


@asset
def after_broken(broken):
    note("start", "after_broken")


@asset
def survivor(source):
    note("start", "survivor")
    return 3


@asset(retry_policy=RetryPolicy(max_retries=2))
def flaky(source):
    ATTEMPTS["flaky"] += 1
    if ATTEMPTS["flaky"] < 2:
        raise RuntimeError("transient")
    return 4


def pooled(name: str):
    @asset(name=name, pool="decode")
    def _pooled(source):
        note("start", name)
        with LOCK:
            busy = sum(1 for w, _ in LOG if w == "start" and _.startswith("p")) - sum(1 for w, _ in LOG if w == "end" and _.startswith("p"))
        assert busy == 1, f"{busy} steps of the decode pool at once"
        note("end", name)

    return _pooled


def prioritised(name: str, priority: int):
    @asset(name=name, op_tags={"dagster/priority": str(priority)})
    def _p(source):
        note("start", name)

    return _p


def laned(name: str, lane: str, barrier: bool, pool: str | None = None, priority: int = 0, exclusive: bool = True):
    """A step of CPU lane `lane` (`prism/cpu`); with `barrier`, it waits for the other barrier step to be running too;
    with `exclusive`, it asserts that no other foreground step runs while it (a foreground one) does."""
    @asset(name=name, pool=pool, op_tags={"prism/cpu": lane, "dagster/priority": str(priority)})
    def _laned(source):
        note("start", name)
        if lane == "foreground" and exclusive:
            with LOCK:
                fg = [s for w, s in LOG if w == "start" and s.startswith("fg")]
                done = [s for w, s in LOG if w == "end" and s.startswith("fg")]
            assert len(fg) - len(done) == 1, f"foreground steps at once: {fg} started, {done} ended"
        if barrier:
            BARRIER.wait()
        note("end", name)

    return _laned


HELD: dict[str, int] = {}  # model name -> loads held (a fake process-wide model cache)


class FakeModel(ConfigurableResource):
    name: str

    def get(self) -> str:
        with LOCK:
            HELD[self.name] = HELD.get(self.name, 0) + 1
        return self.name

    def release(self) -> bool:
        with LOCK:
            return HELD.pop(self.name, None) is not None


@asset(op_tags={"dagster/priority": "9"})
def transcribe(source, model_a: FakeModel):
    model_a.get()
    note("holds", ",".join(sorted(HELD)))


@asset(op_tags={"dagster/priority": "5"})
def transcribe_again(transcribe, model_a: FakeModel):
    note("holds", ",".join(sorted(HELD)))  # model_a still held: this step needs it too
    model_a.get()


@asset(op_tags={"dagster/priority": "1"})
def embed(source, model_b: FakeModel):
    model_b.get()
    note("holds", ",".join(sorted(HELD)))


@asset
def summary(transcribe_again, embed):
    note("holds", ",".join(sorted(HELD)))


def make_job(kind: str, max_concurrent: int = 4):
    assets = {
        "fanout": [source, left, right, joined],
        "failure": [source, broken, after_broken, survivor],
        "retry": [source, flaky, survivor],
        "pool": [source, pooled("p1"), pooled("p2"), pooled("p3")],
        "priority": [source, prioritised("low", -5), prioritised("high", 5), prioritised("middle", 0)],
        "models": [source, transcribe, transcribe_again, embed, summary],
        "lanes": [source, laned("fg_a", "foreground", True), laned("fg_b", "foreground", False), laned("fg_c", "foreground", False),
                  laned("bg", "background", True)],
        "lanes_pool": [source, laned("fg_pa", "foreground", True, "decode", 9, False), laned("fg_pb", "foreground", False, "decode", 5, False),
                       laned("fg_c", "foreground", True, None, 0, False), laned("bg", "background", False, None, -5)],
    }[kind]
    defs = Definitions(assets=assets, jobs=[define_asset_job("job", selection=[a.key for a in assets])],
                       executor=threads_executor_def(max_concurrent),
                       resources={"model_a": FakeModel(name="a"), "model_b": FakeModel(name="b")} if kind == "models" else {})
    return defs.resolve_job_def("job")


def run(kind: str, max_concurrent: int = 4, instance_overrides: dict | None = None):
    LOG.clear()
    recon = build_reconstructable_job("prism_assets_tests.test_step_threads", "make_job", reconstructable_args=(kind, max_concurrent))
    with instance_for_test(overrides=instance_overrides) as instance:
        with execute_job(recon, instance=instance, raise_on_error=False) as result:
            events = result.all_events
            steps = {e.step_key: e.event_type for e in events if e.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE,
                                                                                 DagsterEventType.STEP_SKIPPED)}
            skipped = {e.step_key for e in events if e.event_type == DagsterEventType.STEP_SKIPPED}
            RUN_MESSAGES[:] = [e.message for e in events if e.event_type == DagsterEventType.ENGINE_EVENT]
            return result.success, steps, skipped, list(LOG)


RUN_MESSAGES: list[str] = []


def fresh_barrier(timeout_s: float):
    global BARRIER
    BARRIER = threading.Barrier(2, timeout=timeout_s)


def test_independent_steps_run_at_the_same_time():
    fresh_barrier(20)
    ok, steps, _, log = run("fanout")
    assert ok, steps
    assert all(steps[k] == DagsterEventType.STEP_SUCCESS for k in ("source", "left", "right", "joined"))
    order = [s for _, s in log]
    assert order[0] == "source" and order[-1] == "joined"


def test_one_step_at_a_time_cannot_pass_the_barrier():
    """The same graph with max_concurrent 1: `left` waits for `right`, which never starts: the barrier breaks (the
    test above would break the same way if the executor ran steps one after another)."""
    fresh_barrier(1.0)
    ok, steps, _, _ = run("fanout", max_concurrent=1)
    assert not ok and DagsterEventType.STEP_FAILURE in steps.values()


def test_a_failed_step_skips_its_descendants_only():
    ok, steps, _, log = run("failure")
    assert not ok
    assert steps["broken"] == DagsterEventType.STEP_FAILURE
    assert steps["survivor"] == DagsterEventType.STEP_SUCCESS
    assert ("start", "after_broken") not in log and "after_broken" not in steps  # abandoned: never started, never waited for


def test_retries_are_dagsters():
    ATTEMPTS["flaky"] = 0
    ok, steps, _, _ = run("retry")
    assert ok and ATTEMPTS["flaky"] == 2 and steps["flaky"] == DagsterEventType.STEP_SUCCESS


def test_pool_limit_holds_inside_the_run():
    ok, steps, _, log = run("pool", max_concurrent=4, instance_overrides={"concurrency": {"pools": {"default_limit": 1}}})
    assert ok, steps
    assert sorted(s for w, s in log if w == "end") == ["p1", "p2", "p3"]


def test_ready_steps_start_by_priority():
    ok, _, _, log = run("priority", max_concurrent=1)
    assert ok
    assert [s for _, s in log] == ["source", "high", "middle", "low"]


def test_a_background_step_runs_beside_the_foreground_limit():
    """max_concurrent 1 with a background step (`prism/cpu: background`, the niced proxy): the background step and a
    foreground one run at once (they meet at the barrier), while the foreground steps still run one at a time."""
    fresh_barrier(20)
    ok, steps, _, log = run("lanes", max_concurrent=1)
    assert ok, (steps, log)
    assert sorted(s for w, s in log if w == "end") == ["bg", "fg_a", "fg_b", "fg_c"]


def test_a_step_waiting_for_its_pool_does_not_hold_a_slot():
    """Two foreground slots, a background step in the run, the decode pool one at a time: `fg_pa` holds the pool and
    waits for `fg_c`; `fg_pb` (ranked above `fg_c`) waits for the pool. `fg_c` must get the second slot (Dagster's
    run-scoped tag limits counted `fg_pb` as started and kept `fg_c` out until the barrier broke)."""
    fresh_barrier(20)
    ok, steps, _, log = run("lanes_pool", max_concurrent=2, instance_overrides={"concurrency": {"pools": {"default_limit": 1}}})
    assert ok, (steps, log)
    assert sorted(s for w, s in log if w == "end") == ["bg", "fg_c", "fg_pa", "fg_pb"]


def test_a_model_leaves_memory_when_no_step_left_needs_it():
    """Model resources with `release()` (core/model_release.py): model a is held while a later step still needs
    it, released after its last step, before the steps that do not use it; b likewise; the run log says so."""
    HELD.clear()
    ok, steps, _, log = run("models", max_concurrent=1)
    assert ok, steps
    assert log == [("start", "source"), ("holds", "a"), ("holds", "a"), ("holds", "b"), ("holds", "")]
    assert HELD == {}
    released = [m for m in RUN_MESSAGES if m.startswith("Released")]
    assert released == ["Released model_a: no step left in this run needs it (memory handed back)",
                        "Released model_b: no step left in this run needs it (memory handed back)"]


def test_trim_hands_memory_back():
    from prism_assets.core.model_release import trim

    assert trim() in (True, False)  # glibc: 1 when memory was released, 0 when none could be; never an error


def test_every_finished_step_hands_its_freed_heap_back(monkeypatch):
    """A step that released no model still returns the heap pages it freed (malloc_trim alone, no garbage collection):
    the pages a multi-threaded step (the visual pass) leaves in its threads' arenas; a released model gets the full trim."""
    from prism_assets.core import model_release

    calls = []
    monkeypatch.setattr(model_release, "release_free_heap", lambda: calls.append("heap") or True)
    monkeypatch.setattr(model_release, "trim", lambda: calls.append("trim") or True)

    class Model:
        held = True

        def release(self):
            was, self.held = self.held, False
            return was

    r = model_release.ModelReleaser({"a": [], "b": ["m"], "c": []}, {"m": Model(), "plain": object()})
    assert r.step_done("a") == [] and calls == ["heap"]  # b still needs m: only the heap
    assert r.step_done("b") == ["m"] and calls == ["heap", "trim"]  # m released: the full trim
    assert r.step_done("c") == [] and calls == ["heap", "trim", "heap"]
