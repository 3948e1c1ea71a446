"""A trial's worker process dies with the compare that started it.

A worker is a multiprocessing child (LocalExecutor: spawn, daemon=True), and daemon children are ended only by
the parent's own orderly exit: a compare killed with SIGKILL (or SIGTERM, which Python does not turn into an
exit) left its worker running the trial on, holding the CPU, GPU and memory, and writing into the run folder.
On Linux the kernel sends the worker SIGKILL when its parent dies (prctl PR_SET_PDEATHSIG, through ctypes);
elsewhere, or where prctl is refused, a daemon thread polls os.getppid() and ends the worker.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
POLL_S = 1.0


def die_with_parent() -> None:
    """Call first thing in a worker process."""
    parent = multiprocessing.parent_process()
    if parent is None:  # not a multiprocessing child
        return
    if not (sys.platform.startswith("linux") and _pdeathsig()):
        threading.Thread(target=_watch, args=(parent.pid,), name="advisor-parent-watch", daemon=True).start()
    if os.getppid() != parent.pid:  # the parent died before the signal was armed
        os._exit(1)


def _pdeathsig() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_S)
    os._exit(1)
