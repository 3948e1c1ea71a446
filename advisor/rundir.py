"""The run directory: where every finished trial is stored the moment it finishes.

    <out>/results.json            all trials so far + task + environment (rewritten after each trial)
    <out>/report.html, report.md  rendered from results.json
    <out>/plan.json, env.json     what was planned, and on what
    <out>/trials/<id>.json        one finished trial (status ok or failed); its presence means "done"
    <out>/trials/<id>/            the trial's own files: predictions.jsonl, checkpoints, indexes

Every write is atomic (contracts.io): a kill at any moment leaves the old file or the new one.
"""

from __future__ import annotations

import fcntl
import json
import shutil
from pathlib import Path

from contracts.io import read_json, write_json
from contracts.records import Trial, TrialRecord


class RunLocked(RuntimeError):
    pass


class RunDir:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.trials_dir = self.root / "trials"
        self._lock_fh = None

    def lock(self) -> None:
        """Refuse a second compare writing into the same folder at the same time."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self.root / ".lock", "w")
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLocked(f"another advisor compare is writing to {self.root}; wait for it or use another --out") from None

    def trial_path(self, trial: Trial) -> Path:
        return self.trials_dir / f"{trial.id}.json"

    def trial_dir(self, trial: Trial) -> Path:
        path = self.trials_dir / trial.id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def finished(self, trial: Trial) -> dict | None:
        """The stored record when this exact trial (same content hash) finished ok."""
        record = read_json(self.trial_path(trial))
        if record and record.get("hash") == trial.hash and record.get("status") == "ok":
            return record
        return None

    def cleared(self, trial: Trial) -> Trial:
        """`trial`, with its stored record and its folder (checkpoints, index, answers) removed: `--fresh`
        recomputes everything, a finished training included."""
        self.trial_path(trial).unlink(missing_ok=True)
        shutil.rmtree(self.trials_dir / trial.id, ignore_errors=True)
        return trial

    def save_trial(self, record: TrialRecord) -> None:
        write_json(self.trials_dir / f"{record.id}.json", record.stored())

    def records(self) -> list[dict]:
        return [r for p in sorted(self.trials_dir.glob("*.json")) if (r := read_json(p))]


def read_results(run: Path) -> dict:
    """A run folder's results.json; FileNotFoundError with the folder named when there is none."""
    results = read_json(Path(run) / "results.json")
    if results is None:
        raise FileNotFoundError(f"{run}: no readable results.json (is this an advisor run folder?)")
    return results


def read_predictions(run: Path, trial: dict) -> dict[str, dict]:
    """{item id: stored answer row} of one trial (empty when it stored none)."""
    path = Path(run) / "trials" / trial["id"] / "predictions.jsonl"
    if not path.exists():
        return {}
    rows = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {str(r["id"]): r for r in rows}
