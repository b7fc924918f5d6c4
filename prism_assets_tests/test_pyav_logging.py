"""PyAV's log callback stays GIL-free (prism_assets/core/pyav_logging.py): torchvision (imported by open_clip) sets a
PyAV log level on import, which routes FFmpeg's decoder-thread log lines through a callback that takes the GIL; closing
a threaded decoder then deadlocked the process (a test worker hung in `probe_video`, beyond pytest-timeout's reach)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import MEDIA


def test_a_library_asking_for_a_pyav_log_level_gets_none():
    import av.logging

    import prism_assets.definitions  # noqa: F401  (installs the guard)

    av.logging.set_level(av.logging.ERROR)  # what torchvision/io/video.py does on import
    assert av.logging.get_level() is None
    assert getattr(av.logging.set_level, "prism_guard", False)


# Opens the shared clip with decoder threads, decodes a few frames and closes it, 200 times, after importing
# torchvision. Without the guard this hangs within seconds (the watchdog's exit code 1 after 90 s).
LOOP = """
import faulthandler, sys
{guard}
import torchvision  # noqa: F401
import av
faulthandler.dump_traceback_later(90, exit=True)
for i in range(200):
    with av.open(sys.argv[1], metadata_errors="ignore") as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for k, _ in enumerate(c.decode(s)):
            if k >= 5:
                break
    del s, c
print("level", av.logging.get_level(), "closed 200")
"""


@pytest.mark.integration
def test_threaded_decoders_close_after_torchvision_is_imported():
    proc = subprocess.run([sys.executable, "-c", LOOP.format(guard="import prism_assets.definitions"), str(MEDIA / "qc_composite.mp4")],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "level None closed 200", proc.stdout


@pytest.mark.integration
def test_torchvision_still_sets_a_level_without_the_guard():
    """The premise: if a torchvision release stops setting a level, this says the guard may go."""
    proc = subprocess.run([sys.executable, "-c", "import torchvision, av; print(av.logging.get_level())"], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and proc.stdout.strip() == str(16), (proc.stdout, proc.stderr[-2000:])  # av.logging.ERROR
