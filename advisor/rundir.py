"""The run directory: where every finished trial is stored the moment it finishes.

    <out>/results.json            all trials so far + task + environment (rewritten after each trial)
    <out>/report.html, report.md  rendered from results.json
    <out>/plan.json, env.json     what was planned, and on what
    <out>/trials/<id>.json        one finished trial (status ok or failed); its presence means "done"
    <out>/trials/<id>/            the trial's own files: predictions.jsonl, checkpoints, indexes

Every write goes to a temporary file that is then renamed, so a kill at any moment leaves either the
old file or the new one, never half of one.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from advisor.results import Trial


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    write_atomic(path, "".join(json.dumps(r, default=str) + "\n" for r in rows))


def read_json(path: Path) -> Any | None:
    """The parsed file, or None when it is missing or not valid JSON (treated as not done)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


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

    def save_trial(self, record: dict) -> None:
        write_json(self.trials_dir / f"{record['id']}.json", record)

    def records(self) -> list[dict]:
        return [r for p in sorted(self.trials_dir.glob("*.json")) if (r := read_json(p))]
