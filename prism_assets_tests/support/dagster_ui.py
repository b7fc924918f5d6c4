"""The Dagster UI as the end-to-end tests meet it: `dagster dev` (webserver + daemon) or the webserver
alone in their own process group, its GraphQL API, and waits with a deadline that name what they
waited for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

LOCATION = "prism"

LOCATION_QUERY = """
query LocationStatus {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { name repositories { name } }
          ... on PythonError { message stack }
        }
      }
    }
    ... on PythonError { message stack }
  }
}
"""

RUNS_QUERY = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId jobName status tags { key value } } }
    ... on PythonError { message }
  }
}
"""


class UIError(AssertionError):
    pass


def tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError as exc:
        return f"<could not read {path}: {exc}>"


def gql(url: str, query: str, variables: dict | None = None, timeout: float = 30.0) -> dict:
    r = requests.post(url, json={"query": query, "variables": variables or {}}, timeout=timeout)
    r.raise_for_status()
    body = r.json()
    if body.get("errors"):
        raise UIError(f"GraphQL errors: {body['errors']}")
    return body["data"]


def wait_for_location(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180.0) -> None:
    """Until the GraphQL endpoint answers and the `prism` location is LOADED with a repository."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UIError(f"the server exited early with code {proc.returncode}; log tail:\n{tail(log)}")
        try:
            ws = gql(url, LOCATION_QUERY, timeout=10)["workspaceOrError"]
        except (requests.RequestException, ValueError, UIError) as exc:
            last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.5)
            continue
        entry = next((e for e in ws.get("locationEntries", []) if e["name"] == LOCATION), None)
        loaded = entry and entry["loadStatus"] == "LOADED" and entry["locationOrLoadError"]
        if loaded and loaded["__typename"] == "PythonError":
            raise UIError(f"code location {LOCATION!r} failed to load: {loaded['message']}\n{''.join(loaded['stack'] or [])}"
                          f"\nlog tail:\n{tail(log)}")
        if loaded and loaded.get("repositories"):
            return
        last = f"workspace: {ws.get('__typename')}, location entry: {entry and entry['loadStatus']}"
        time.sleep(0.5)
    raise UIError(f"no loaded {LOCATION!r} location within {timeout:.0f}s (last: {last}); log tail:\n{tail(log)}")


def wait_until(what: str, probe: Callable[[], object], timeout: float, every: float = 1.0, log: Path | None = None):
    """Calls `probe` until it returns something truthy (returned); fails naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(every)
    raise UIError(f"timed out after {timeout:.0f}s waiting for {what}; last: {value!r}" + (f"\nlog tail:\n{tail(log)}" if log else ""))


def runs(url: str, job: str | None = None, tags: dict | None = None) -> list[dict]:
    flt: dict = {}
    if job:
        flt["pipelineName"] = job
    if tags:
        flt["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
    res = gql(url, RUNS_QUERY, {"filter": flt})["runsOrError"]
    if res["__typename"] != "Runs":
        raise UIError(f"runsOrError: {res}")
    return [{**r, "tags": {t["key"]: t["value"] for t in r["tags"]}} for r in res["results"]]


class DagsterDev:
    """`dagster dev` (webserver + daemon, as `make ui` starts it) on a free port, in its own process group
    so that stopping it stops the code servers and run workers it started."""

    def __init__(self, cwd: Path, env: dict, port: int, log: Path, workspace: str = "workspace.yaml"):
        self.url = f"http://127.0.0.1:{port}"
        self.graphql = f"{self.url}/graphql"
        self.log = log
        exe = Path(sys.executable).parent / "dagster"  # the venv's, beside the interpreter running the tests
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([str(exe), "dev", "-w", workspace, "-h", "127.0.0.1", "-p", str(port)], cwd=cwd, env=env,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_loaded(self, timeout: float = 180.0) -> None:
        wait_for_location(self.graphql, self.proc, self.log, timeout)

    def stop(self, grace: float = 30.0) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        try:  # whatever is left of the group (run workers, code servers)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)


def processed(run: dict) -> bool:
    """A title's run went through: SUCCESS, or FAILURE because the title cannot ship (its QC verdict is fail: the run
    ends failed at `release`, or at `qc` with qc.gate=block), its verdict on the run as a tag."""
    return run["status"] == "SUCCESS" or (run["status"] == "FAILURE" and (run.get("tags") or {}).get("prism/qc_verdict") == "fail")
