"""`prism serve` as a process for tests and benchmarks: started on a port, waited for on /v1/health."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PRISM = str(REPO / ".venv" / "bin" / "prism")


def start_serve(env: dict, port: int, log_path: Path, workers: int = 1, timeout: float = 60.0) -> tuple[subprocess.Popen, str]:
    """The server process (its own session: stop it with os.killpg or terminate) and its URL, once /v1/health answers;
    its output goes to `log_path` (never an unread pipe). RuntimeError with the log's tail if it does not come up."""
    import httpx

    log = open(log_path, "w")
    proc = subprocess.Popen([PRISM, "serve", "--port", str(port), "--workers", str(workers)], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(url + "/v1/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.terminate()
    proc.wait(timeout=30)
    raise RuntimeError("prism serve did not answer: " + Path(log_path).read_text()[-2000:])
