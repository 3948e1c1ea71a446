"""Latency, two ways, each labelled with how it was measured: per query served alone at batch 1 (what a user
waits; what `constraints.max_latency_ms` and the rationale read), and each answer's share of its batch's wall
time at the batch size used (what throughput, and so the serving cost, is made of). A small model answering
8 at a time has a batch share far below what one query served alone waits.

Read from results.json only: each trial's `latency` record (advisor.execute) and `resources.examples_per_s`.
"""

from __future__ import annotations

from reports.cells import NOT_MEASURED, FactTable, millis


def _batch(latency: dict) -> str:
    size = latency.get("batch_size")
    return NOT_MEASURED if size is None else str(size)


def latency_table(results: dict) -> FactTable | None:
    """One row per finished trial; the notes say how each figure was measured and which one the constraint reads."""
    table = FactTable(["trial", "latency p50", "latency p95", "latency: how measured", "batch share p50",
                       "batch share p95", "batch size B", "batch share: how measured", "throughput (examples/s)"])
    for t in results["trials"]:
        if t.get("status") != "ok":
            continue
        lat, res = t.get("latency") or {}, t.get("resources") or {}
        measured_share = lat.get("batch_share_p95_ms") is not None
        throughput = res.get("examples_per_s")
        table.rows.append([t["name"], millis(lat.get("p50_ms")), millis(lat.get("p95_ms")), table.footnote(lat.get("measured")),
                           millis(lat.get("batch_share_p50_ms")), millis(lat.get("batch_share_p95_ms")), _batch(lat),
                           table.footnote(lat.get("batch_share_measured")) if measured_share else NOT_MEASURED,
                           NOT_MEASURED if throughput is None else f"{throughput:g}"])
    if not table.rows:
        return None
    limit = ((results["task"].get("spec") or {}).get("constraints") or {}).get("max_latency_ms")
    reads = "the 'latency p95' column (latency.p95_ms)"
    table.notes.append(f"constraints.max_latency_ms ({limit:g} ms) is checked against {reads}; a trial whose latency p95 was "
                       "not measured is not checked against it." if limit is not None else
                       f"constraints.max_latency_ms is not set; when set, it is checked against {reads}, as is the rationale's latency.")
    table.notes.append("Batch share: the wall time of the batch that answered a query divided by the batch size B; the "
                       "throughput (examples/s) is made of these shares, and so is the serving cost when it is priced by throughput.")
    return table
