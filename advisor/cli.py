"""The `advisor` command line: thin click commands over the library. Each docstring is the help text."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from advisor.budgeted import BudgetOption
from advisor.version import __version__
from advisor.yaml_errors import SpecError
from baselines.device import DeviceError

err = Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(problems, strict: bool = False) -> None:
    """Print every problem once and exit 2; under --strict the warnings count, and the summary says so."""
    for p in problems:
        err.print(str(p), markup=False)
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors if strict else 0
    why = f" ({warnings} warning(s), errors under --strict)" if warnings else ""
    err.print(f"[red]{errors + warnings} problem(s)[/]{why}; nothing was run.")
    sys.exit(2)


@click.group()
@click.version_option(__version__, prog_name="advisor")
def cli() -> None:
    """Measure whether a task needs a better prompt, retrieval (RAG) or fine-tuning."""


@cli.command()
@click.argument("task_file", type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Treat warnings (leakage, unseen or look-alike labels, a small test set) as errors.")
@click.option("--deep", is_flag=True, help="Also run the checks that load models: near-duplicate leakage, over-long inputs.")
def validate(task_file: Path, strict: bool, deep: bool) -> None:
    """Check TASK_FILE and its data without loading a model. Exit code 2 on any problem."""
    from advisor.matrix import models_summary
    from advisor.prechecks import validation_pass
    from baselines.device import DeviceInfo

    try:  # trial names do not depend on the device: plan for the CPU, so validate never imports torch
        spec, splits, trials, warnings = validation_pass(task_file, DeviceInfo("cpu"))
    except SpecError as exc:
        _fail(exc.problems, strict)
    if deep:
        from advisor.model_checks import model_checks
        from baselines.models import resolve

        warnings += model_checks(spec, splits, resolve(spec.model))
    if strict and warnings:
        _fail(warnings, strict)
    for w in warnings:
        err.print(str(w), markup=False)
    sizes = ", ".join(f"{name} {len(getattr(splits, name))}" for name in ("train", "validation", "test") if getattr(splits, name))
    click.echo(f"{task_file}: ok ({sizes}; {len(splits.labels) or 'no'} labels; {len(trials)} trials: "
               f"{', '.join(t.name for t in trials)})")
    for line in models_summary(spec, trials):
        click.echo(line)


def _device_choice(value: str) -> str:
    import re

    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
        raise click.BadParameter(f"'{value}': use auto, cpu, cuda or cuda:N")
    return value


@cli.command()
@click.argument("task_file", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Run folder (default: runs/<name>-<utc time>, or the unfinished one).")
@click.option("--fresh", is_flag=True, help="Recompute every trial instead of reusing stored ones.")
@click.option("--in-process", is_flag=True, help="Run trials in this process (debugging; memory figures are then relative).")
@click.option("--dry-run", is_flag=True, help="Check everything and print the plan; run and write nothing.")
@click.option("--device", default="auto", show_default=True, callback=lambda ctx, param, value: _device_choice(value),
              help="auto (a GPU when torch sees one), cpu, cuda or cuda:N; with --dry-run, plans for it on any machine.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: one trial after another here; ray: trials at once as Ray tasks, a GPU (or CPU) each (advisor[ray]).")
@click.option("--ray-address", help="With --executor ray: the cluster to join (HOST:PORT, or auto); default: start a local Ray.")
@click.option("--storage", type=click.Path(path_type=Path), help="With --executor ray: a folder every node reads and writes at this "
              "same path (a shared filesystem) for the trials' own files (checkpoints, answers); default: the run folder.")
@click.option("--baseline", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="An earlier run folder: the report gets a section comparing this run with it (advisor diff BASELINE RUN).")
@click.option("--budget", type=BudgetOption(), help="Trials on a stratified quarter of the test set first; those a paired test "
              "shows worse than the leader stop, the rest go on to the full test set (quick) or doubling subsets within MINUTES.")
def compare(task_file: Path, out: Path | None, fresh: bool, in_process: bool, dry_run: bool, device: str, executor: str,
            ray_address: str | None, storage: Path | None, baseline: Path | None, budget) -> None:
    """Run every strategy of TASK_FILE and write results.json, report.md and report.html.

    Finished trials are stored at once; running the same command again resumes and reuses them.
    """
    from advisor.executors import choose_executor
    from advisor.rundir import RunLocked
    from advisor.run_loop import compare as run_compare
    from advisor.run_loop import dry_run as plan_only
    from reports import render_report

    if budget is not None and executor != "local":  # the rungs of a trial share its folder, one after another
        raise click.UsageError("--budget runs with the local executor")
    if baseline is not None and not (baseline / "results.json").exists():
        raise click.BadParameter(f"{baseline} has no results.json (is it an advisor run folder?)", param_hint="--baseline")
    try:
        if dry_run:
            for line in plan_only(task_file, out, device):
                click.echo(line)
            return
        run_dir = run_compare(task_file, out=out, isolate=not in_process, fresh=fresh, console=err, on_results=render_report,
                              device=device, executor=choose_executor(executor, ray_address, storage, device), budget=budget)
    except SpecError as exc:
        _fail(exc.problems)
    except DeviceError as exc:
        err.print(f"[red]{exc}[/]", markup=True, highlight=False)
        sys.exit(2)
    except RunLocked as exc:
        err.print(f"[red]{exc}[/]")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    _baseline_diff(run_dir, baseline)
    from contracts.io import read_json
    from reports.terminal import print_summary

    print_summary(read_json(run_dir / "results.json"), err)
    click.echo(f"report: {run_dir / 'report.html'}")


def _baseline_diff(run_dir: Path, baseline: Path | None) -> None:
    """Store diff.json (the report's section against BASELINE) and re-render; without a baseline, drop a diff.json
    an earlier compare left there, which described results this run has rewritten."""
    from advisor.diff import diff_runs
    from contracts.io import write_json
    from reports import render_report

    stored = run_dir / "diff.json"
    if baseline is None and not stored.exists():
        return
    if baseline is None:
        stored.unlink()
    else:
        try:
            write_json(stored, diff_runs(baseline, run_dir))
        except (FileNotFoundError, KeyError) as exc:
            err.print(f"[red]--baseline[/]: {exc}")
            sys.exit(2)
    render_report(run_dir)


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
@click.argument("run_a", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.argument("run_b", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "json"]), default="table", show_default=True)
@click.option("--fail-on-regression", "fail_points", type=float, is_flag=False, flag_value=0.0, default=None,
              help="Exit 1 when a trial got significantly worse in RUN_B by more than POINTS (default 0).", metavar="[POINTS]")
def diff(run_a: Path, run_b: Path, fmt: str, fail_points: float | None) -> None:
    """Compare RUN_B with RUN_A: per trial the change (paired on shared items), flipped items, what changed."""
    from advisor.diff import diff_runs, print_table, regressions, to_markdown

    try:
        found = diff_runs(run_a, run_b)
    except (FileNotFoundError, KeyError) as exc:
        err.print(f"[red]advisor diff[/]: {exc}")
        sys.exit(2)
    if fmt == "json":
        click.echo(json.dumps(found, indent=2))
    elif fmt == "markdown":
        click.echo(to_markdown(found), nl=False)
    else:
        print_table(found, Console())
    if fail_points is not None and (worse := regressions(found, fail_points)):
        err.print(f"regression: {', '.join(r['trial'] for r in worse)} significantly worse by more than {fail_points:g} points")
        sys.exit(1)


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True)
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="File to write (default: standard output).")
def export(run_dir: Path, fmt: str, out: Path | None) -> None:
    """One row per test item x trial of RUN_DIR (answer, target, score, tokens, latency), as CSV or JSON lines."""
    from advisor.export import export as export_rows
    from contracts.io import write_atomic

    try:
        text = export_rows(run_dir, fmt)
    except FileNotFoundError as exc:
        err.print(f"[red]advisor export[/]: {exc}")
        sys.exit(2)
    if out:
        write_atomic(out, text)
        err.print(f"wrote {out}")
    else:
        click.echo(text, nl=False)


@cli.command()
@click.option("--results", is_flag=True, help="The schema of results.json (the run's records) instead of task.yaml.")
def schema(results: bool) -> None:
    """Print the JSON Schema of task.yaml (for editor completion and checks), or of results.json."""
    if results:
        from contracts.records import RunResults

        click.echo(json.dumps(RunResults.model_json_schema(), indent=2))
        return
    from advisor.spec import task_spec_model

    click.echo(json.dumps(task_spec_model().model_json_schema(), indent=2))


@cli.command()
@click.option("--model", "model", required=True, help="Parameter count ('8B', '135M') or a transformers config.json.")
@click.option("--gpu", required=True, help="GPU name, e.g. a10g-24gb, a100-80gb, h100-80gb.")
@click.option("--method", type=click.Choice(["full", "lora", "qlora", "inference"]), default="lora", show_default=True)
@click.option("--seq-len", type=click.IntRange(1), default=512, show_default=True, help="Tokens per sequence.")
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True, help="Sequences per micro-batch per GPU.")
@click.option("--rank", type=click.IntRange(1), default=16, show_default=True, help="LoRA rank (all linear layers).")
@click.option("--tokens", type=click.IntRange(1), help="Training tokens per epoch (or tokens to generate): adds time and cost.")
@click.option("--gradient-checkpointing/--no-gradient-checkpointing", default=True, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the estimate as JSON.")
def estimate(model: str, gpu: str, method: str, seq_len: int, batch: int, rank: int, tokens: int | None,
             gradient_checkpointing: bool, as_json: bool) -> None:
    """Estimate memory per GPU, GPUs needed, tokens/s, time and cost of fine-tuning or serving a model.

    Pure arithmetic, nothing is loaded; the formulas and their sources are in the README.
    """
    from advisor.estimate import Setup
    from advisor.estimate import estimate as run_estimate
    from contracts.registry import UnknownName

    setup = Setup(method=method, seq_len=seq_len, batch=batch, rank=rank, tokens=tokens,
                  gradient_checkpointing=gradient_checkpointing)
    try:
        est = run_estimate(model, gpu, setup)
    except (UnknownName, ValueError) as exc:
        err.print(f"[red]{exc}[/]", markup=True, highlight=False)
        sys.exit(2)
    click.echo(json.dumps(est.to_dict(), indent=2)) if as_json else _print_estimate(est)


def _print_estimate(est) -> None:
    from rich.table import Table

    s = est.setup
    click.echo(f"{est.model} ({est.params / 1e9:.2f}B parameters), {s.method}, batch {s.batch} x {s.seq_len} tokens, "
               f"gradient checkpointing {'on' if s.gradient_checkpointing else 'off'}, {est.gpu} ({est.gpu_memory_gb:g} GiB)")
    table = Table()
    table.add_column("term")
    table.add_column("GiB", justify="right")
    for term, gb in est.memory_gb.items():
        table.add_row(term, f"{gb:,.2f}")
    table.add_row("total", f"{est.total_gb:,.2f}", style="bold")
    Console(highlight=False).print(table)
    if est.gpus_needed is None:
        verdict = "does not fit on any number of GPUs at this batch and sequence length"
    else:
        verdict = f"fits on one {est.gpu}" if est.fits else f"needs {est.gpus_needed} x {est.gpu} ({est.per_gpu_gb:,.1f} GiB each)"
    click.echo(f"{verdict}; trainable parameters {est.trainable_params:,}")
    if est.tokens_per_s:
        click.echo(f"~{est.tokens_per_s:,.0f} tokens/s at MFU {s.mfu}" + (f"; {est.hours:,.2f} h and ${est.cost_usd:,.2f} for {s.tokens:,} tokens" if est.hours else ""))
    for note in est.notes:
        click.echo(f"note: {note}")


def main() -> None:
    try:
        cli(standalone_mode=True)
    except Exception as exc:  # noqa: BLE001 - last resort: one clear line, never a traceback
        err.print(f"[red]advisor: unexpected error[/]: {type(exc).__name__}: {exc}")
        sys.exit(1)
