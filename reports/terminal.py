"""The end of `advisor compare` in the terminal: the trials as a table and the decision, from results.json."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from reports.context import build_context

_SHORT = {"insufficient evidence": "n.s."}


def print_summary(results: dict, console: Console) -> None:
    ctx = build_context(results)
    table = Table(title=f"{ctx.task['name']}: {ctx.metric_display} (%) on {ctx.statistics.get('n_test', '?')} test examples",
                  title_justify="left", box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    table.add_column("trial", no_wrap=True)
    for column in ("%", "95% CI", "vs 0-shot", "$/1k q", "p95 ms"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in ctx.rows:
        score = f"{100 * r.headline:.1f}" if r.headline is not None else r.status
        table.add_row(r.name, score, f"{100 * r.ci[0]:.1f}-{100 * r.ci[1]:.1f}" if r.ci else "",
                      _SHORT.get(r.verdict, r.verdict), f"{r.cost['per_1k_queries_usd']:.4f}" if "per_1k_queries_usd" in r.cost else "",
                      f"{r.latency['p95_ms']:.0f}" if r.latency.get("p95_ms") is not None else "")
    console.print(table)
    for r in ctx.rows:
        if r.excluded:
            console.print(f"excluded {r.name}: {'; '.join(r.excluded)}", markup=False, highlight=False)
    rec = ctx.recommendation
    if rec and rec.get("pick"):
        console.print(f"[bold]Recommendation: {rec['pick']}[/] ({rec['confidence']} confidence)", highlight=False)
        for sentence in rec["rationale"][:3]:
            console.print(f"  {sentence['text']}", markup=False, highlight=False)
    elif rec:
        console.print("[bold]No recommendation[/]: " + " ".join(s["text"] for s in rec["rationale"]), highlight=False)
