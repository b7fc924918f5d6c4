"""Reading a file found in a delivery without ever blocking on it: only regular files are opened.

A delivery folder is written by others. Beside `movie.mp4` there may be a named pipe (FIFO) called
`movie.en.srt`, a socket, a device node or a link to one: `open()` on a FIFO blocks until a writer
comes, for ever, and SIGTERM does not end the read. So a delivery file is opened only when it is a
regular file:

- local store: `os.open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY)` (a FIFO opened so returns at once
  and is never read), then `fstat` on that very descriptor must say `S_ISREG` (no race between a
  check and the open); anything else raises `NotRegularFile` with one line.
- symbolic links: followed, like `LocalStore.list` does, and accepted when they end at a regular file
  (the store lists a link only when it stays inside the delivery root); a link to a FIFO or device is
  refused like the FIFO itself.
- S3: every object is a byte string; read as before.
"""

from __future__ import annotations

import os
import stat


class NotRegularFile(OSError):
    """A delivery path that is not a regular file (FIFO, socket, device, folder): never opened for reading."""


def kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def read_regular_path(path, max_bytes: int | None = None) -> bytes:
    """At most `max_bytes` (all when None) of a local file that must be a regular file."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(str(path), flags)
    except IsADirectoryError:
        raise NotRegularFile(f"{os.path.basename(str(path))} is a folder, not a file: not read") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(f"{os.path.basename(str(path))} is {kind_of(st.st_mode)}, not a regular file: not read")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=True) as fh:
            fd = -1
            return fh.read() if max_bytes is None else fh.read(max_bytes)
    finally:
        if fd >= 0:
            os.close(fd)


def is_regular(store, key: str) -> bool:
    """Whether a delivery key is a regular file (links followed); True for stores without local paths (S3)."""
    path = local_path(store, key)
    if path is None:
        return True
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def local_path(store, key: str):
    from ..core.store import LocalStore

    return store.path(key) if isinstance(store, LocalStore) else None


def read_delivery_file(store, key: str, max_bytes: int | None = None) -> bytes:
    """`store.get_bytes(key, max_bytes)`, but a local key is opened only as a regular file
    (`NotRegularFile` otherwise, one line; never a blocking open)."""
    path = local_path(store, key)
    if path is None:
        return store.get_bytes(key, max_bytes=max_bytes)
    return read_regular_path(path, max_bytes)
