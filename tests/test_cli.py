"""The real CLI in a subprocess: interrupt a compare, run it again, finished trials are reused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ADVISOR = [sys.executable, "-m", "advisor"]

pytestmark = pytest.mark.slow  # real compares in subprocesses


def _wait_for(path_glob, root: Path, timeout: float = 120) -> list[Path]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = list(root.glob(path_glob))
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"nothing matched {path_glob} in {root} within {timeout} s")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_compare_resumes_with_finished_trials(classification_task, tmp_path, sig):
    task = classification_task("prompting: {shots: [0, 1, 2], templates: [terse, instruct]}")
    out = tmp_path / "run"
    proc = subprocess.Popen([*ADVISOR, "compare", str(task), "--out", str(out)], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    (first,) = _wait_for("trials/zero-shot-*.json", out)
    stored = first.read_text()
    os.killpg(proc.pid, sig)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0, output
    if sig == signal.SIGINT:
        assert "run the same command to resume" in output and "Traceback" not in output
    results = json.loads((out / "results.json").read_text())  # valid JSON whatever the moment of the kill
    assert results["complete"] is False

    rerun = subprocess.run([*ADVISOR, "compare", str(task), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "zero-shot: reused (ok)" in rerun.stderr  # the plain progress lines: stderr is not a terminal here
    assert first.read_text() == stored
    final = json.loads((out / "results.json").read_text())
    assert final["complete"] is True and [t["status"] for t in final["trials"]] == ["ok", "ok", "ok"]
