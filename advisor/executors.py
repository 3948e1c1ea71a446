"""Which executor runs a compare's trials, from the command line's options, checked before anything runs:
None (compare's own LocalExecutor) or Ray, only when asked for and installed, with its cluster address and
the storage path for the trials' own files. Errors are click's usage errors, in the command line's words."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import click


def check_storage(path: Path) -> Path:
    """`--storage`: an existing folder this process can write to (every node must mount it at this same path)."""
    if not path.is_dir():
        raise click.BadParameter(f"{path}: no such folder; give one that every Ray node reads and writes at this same path "
                                 "(a shared filesystem: NFS, a shared volume)", param_hint="--storage")
    try:
        tempfile.TemporaryFile(dir=path).close()
    except OSError as exc:
        raise click.BadParameter(f"{path}: cannot write there ({exc.strerror})", param_hint="--storage") from None
    return path.resolve()


def choose_executor(name: str, ray_address: str | None, storage: Path | None, device: str):
    """The local executor refuses --ray-address and --storage: it keeps each trial's files in the run folder."""
    if name == "local":
        if ray_address or storage:
            raise click.UsageError(f"{'--ray-address' if ray_address else '--storage'} needs --executor ray")
        return None
    if importlib.util.find_spec("ray") is None:
        raise click.UsageError("--executor ray needs Ray: pip install 'advisor[ray]' (or 'ray[default]')")
    from advisor.ray_executor import RayExecutor

    return RayExecutor(ray_address, device, storage=check_storage(storage) if storage else None)
