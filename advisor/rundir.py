"""The run directory: where every finished trial is stored the moment it finishes.

    <out>/results.json            all trials so far + task + environment (rewritten after each trial)
    <out>/report.html, report.md  rendered from results.json
    <out>/plan.json, env.json     what was planned, and on what
    <out>/trials/<id>.json        one finished trial (status ok or failed); its presence means "done"
    <out>/trials/<id>/            the trial's own files: predictions.jsonl, checkpoints, indexes

Every write is atomic (contracts.io): a kill at any moment leaves the old file or the new one.

With a separate storage path (`compare --executor ray --storage PATH`, for a cluster whose nodes do not share
the run folder), a trial's own files go to PATH/<run folder name>/trials/<id>/ instead (with the endpoints'
reply cache and the base model's forgetting scores): the workers write there, the driver alone writes the
records, each in the run folder and a copy in storage (where a trial that builds on another finds it), and
copies a finished trial's .jsonl files (answers, retrieved chunks: what the reports read) into the run folder.
"""

from __future__ import annotations

import fcntl
import json
import shutil
from pathlib import Path

from contracts.io import read_json, write_atomic, write_json
from contracts.records import Trial, TrialRecord


class RunLocked(RuntimeError):
    pass


class RunDir:
    def __init__(self, root: Path, storage: Path | None = None):
        self.root = Path(root)
        self.trials_dir = self.root / "trials"
        self.artefacts = Path(storage) / self.root.name if storage else self.root
        """Where the trials' own files go: the run folder, or this run's folder under the storage path."""
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
        path = self.artefacts / "trials" / trial.id
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
        for trials in {self.trials_dir, self.artefacts / "trials"}:
            (trials / f"{trial.id}.json").unlink(missing_ok=True)
            shutil.rmtree(trials / trial.id, ignore_errors=True)
        return trial

    def save_trial(self, record: TrialRecord) -> None:
        write_json(self.trials_dir / f"{record.id}.json", record.stored())
        if self.artefacts != self.root:
            write_json(self.artefacts / "trials" / f"{record.id}.json", record.stored())
            for path in sorted((self.artefacts / "trials" / record.id).glob("*.jsonl")):
                write_atomic(self.trials_dir / record.id / path.name, path.read_text(encoding="utf-8"))

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
