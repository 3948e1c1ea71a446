"""Two Ray nodes on the loopback address (a head and a worker, each started by `ray start`, one CPU each):
a compare joins them by address and runs one trial on each."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from advisor.ray_executor import RayExecutor
from advisor.run_loop import compare

RAY = str(Path(sys.executable).parent / "ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray(*args: str) -> None:
    done = subprocess.run([RAY, *args], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"ray {' '.join(args)}:\n{done.stdout}\n{done.stderr}"


@pytest.mark.slow
def test_a_compare_runs_across_a_head_and_a_worker_node_on_loopback(classification_task, tmp_path, monkeypatch):
    import ray

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # Ray >= 2.5x: no token between processes of this loopback cluster
    assert not ray.is_initialized()  # `ray stop` below ends every Ray process of this machine: none may be ours
    task = classification_task("prompting: {shots: [0, 1], templates: [terse]}")
    address = f"127.0.0.1:{_free_port()}"
    common = ("--node-ip-address=127.0.0.1", "--num-cpus=1", "--num-gpus=0", "--disable-usage-stats")
    try:
        _ray("start", "--head", f"--port={address.split(':')[1]}", "--include-dashboard=false", *common)
        _ray("start", f"--address={address}", *common)
        executor = RayExecutor(address=address)
        out = compare(task, out=tmp_path / "run", executor=executor)
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)
    trials = json.loads((out / "results.json").read_text())["trials"]
    assert [t["status"] for t in trials] == ["ok", "ok"], [t.get("error") for t in trials]
    assert len(set(executor.nodes.values())) == 2, executor.nodes  # one CPU per node: the two trials ran on both
