"""A trial's worker dies with the compare that started it: SIGKILL or SIGTERM the parent, the worker is gone
within seconds (not left running the trial on)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # starts a parent process that spawns a worker

PARENT = '''
import multiprocessing as mp, os, sys, time
from pathlib import Path
from advisor import parent_death, run_loop

def work(ready, poll):
    if poll:  # as where prctl is missing: the watching thread
        parent_death._pdeathsig = lambda: False
    run_loop._in_worker()  # what every trial worker runs first
    Path(ready).write_text(str(os.getpid()))
    time.sleep(300)  # a long trial

if __name__ == "__main__":
    proc = mp.get_context("spawn").Process(target=work, args=(sys.argv[1], sys.argv[2] == "poll"), daemon=True)  # as LocalExecutor starts one
    run_loop._start(proc)
    proc.join()
'''


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper that is not us counts as gone)."""
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
@pytest.mark.parametrize("how, watch", [(signal.SIGKILL, "prctl"), (signal.SIGTERM, "prctl"), (signal.SIGKILL, "poll")])
def test_a_killed_compare_leaves_no_worker_running(tmp_path, how, watch):
    script, ready = tmp_path / "parent.py", tmp_path / "ready"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script), str(ready), watch], cwd=tmp_path)
    worker = None
    try:
        deadline = time.monotonic() + 120
        while not (ready.exists() and ready.read_text()) and time.monotonic() < deadline:
            assert parent.poll() is None, "the parent exited before its worker started"
            time.sleep(0.1)
        worker = int(ready.read_text())
        assert _alive(worker)
        parent.send_signal(how)
        parent.wait(10)
        deadline = time.monotonic() + 5
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker), f"the worker ({watch}) outlived its parent killed by {how.name}"
    finally:
        parent.kill()
        parent.wait()
        if worker is not None and _alive(worker):
            os.kill(worker, signal.SIGKILL)
