"""Process and host resource readings (psutil), fork-safe.

psutil.Process() caches the pid it was made with, so a Process made before fork() would keep
reporting the parent: every reading goes through :func:`process`, which remakes it when the pid
changed.
"""

from __future__ import annotations

import os

import psutil

_proc: psutil.Process | None = None
_proc_pid = -1


def process() -> psutil.Process:
    """The psutil Process of the current pid (remade after fork)."""
    global _proc, _proc_pid
    pid = os.getpid()
    if _proc is None or _proc_pid != pid:
        _proc = psutil.Process(pid)
        _proc_pid = pid
    return _proc


def current_rss() -> int:
    """Resident set size of this process in bytes."""
    return int(process().memory_info().rss)
