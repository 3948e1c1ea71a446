"""The `advisor` command line: thin click commands over the library. Each docstring is the help text."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from advisor import __version__
from advisor.yaml_errors import SpecError

err = Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(problems) -> None:
    for p in problems:
        err.print(str(p), markup=False)
    n = sum(p.severity == "error" for p in problems)
    err.print(f"[red]{n} problem(s)[/]; nothing was run.")
    sys.exit(2)


@click.group()
@click.version_option(__version__, prog_name="advisor")
def cli() -> None:
    """Measure whether a task needs a better prompt, retrieval (RAG) or fine-tuning."""


@cli.command()
@click.argument("task_file", type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Treat data warnings (leakage, unseen labels) as errors.")
def validate(task_file: Path, strict: bool) -> None:
    """Check TASK_FILE and its data without loading a model. Exit code 2 on any problem."""
    from advisor.plan import make_plan
    from advisor.task import check_task

    try:
        spec, splits, warnings = check_task(task_file)
        trials = make_plan(spec, splits)
    except SpecError as exc:
        _fail(exc.problems)
    for w in warnings:
        err.print(str(w), markup=False)
    if strict and warnings:
        _fail(warnings)
    sizes = ", ".join(f"{name} {len(getattr(splits, name))}" for name in ("train", "validation", "test") if getattr(splits, name))
    click.echo(f"{task_file}: ok ({sizes}; {len(splits.labels) or 'no'} labels; {len(trials)} trials: "
               f"{', '.join(t.name for t in trials)})")


@cli.command()
@click.argument("task_file", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Run folder (default: runs/<name>-<utc time>, or the unfinished one).")
@click.option("--fresh", is_flag=True, help="Recompute every trial instead of reusing stored ones.")
@click.option("--in-process", is_flag=True, help="Run trials in this process (debugging; memory figures are then relative).")
def compare(task_file: Path, out: Path | None, fresh: bool, in_process: bool) -> None:
    """Run every strategy of TASK_FILE and write results.json, report.md and report.html.

    Finished trials are stored at once; running the same command again resumes and reuses them.
    """
    from advisor.rundir import RunLocked
    from advisor.runner import compare as run_compare

    try:
        run_dir = run_compare(task_file, out=out, isolate=not in_process, fresh=fresh, console=err)
    except SpecError as exc:
        _fail(exc.problems)
    except RunLocked as exc:
        err.print(f"[red]{exc}[/]")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    click.echo(f"report: {run_dir / 'report.html'}")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
def report(run_dir: Path) -> None:
    """Re-render report.html and report.md of RUN_DIR from its results.json (runs nothing)."""
    from reports import render_report

    try:
        click.echo(f"report: {render_report(run_dir)}")
    except FileNotFoundError as exc:
        err.print(f"[red]{exc}[/]")
        sys.exit(2)


@cli.command()
def schema() -> None:
    """Print the JSON Schema of task.yaml (for editor completion and checks)."""
    from advisor.spec import task_spec_model

    click.echo(json.dumps(task_spec_model().model_json_schema(), indent=2))


def main() -> None:
    try:
        cli(standalone_mode=True)
    except Exception as exc:  # noqa: BLE001 - last resort: one clear line, never a traceback
        err.print(f"[red]advisor: unexpected error[/]: {type(exc).__name__}: {exc}")
        sys.exit(1)
