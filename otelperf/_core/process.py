"""Process readings the hot path and the resource metrics share: RSS and the psutil Process.

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
    """The psutil Process of the current pid (remade after fork).

    >>> process().pid == os.getpid()
    True
    """
    global _proc, _proc_pid
    pid = os.getpid()
    if _proc is None or _proc_pid != pid:
        _proc = psutil.Process(pid)
        _proc_pid = pid
    return _proc


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_statm_ok = os.path.exists("/proc/self/statm")


def current_rss() -> int:
    """Resident set size of this process in bytes.

    >>> current_rss() > 0
    True
    """
    global _statm_ok
    if _statm_ok:
        # Linux: one open/read/close of /proc/self/statm is about half psutil's cost, and
        # "self" resolves at each open, so it is the current pid after fork (never keep the fd).
        try:
            fd = os.open("/proc/self/statm", os.O_RDONLY)
            try:
                data = os.read(fd, 256)
            finally:
                os.close(fd)
            return int(data.split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            _statm_ok = False
    return int(process().memory_info().rss)
