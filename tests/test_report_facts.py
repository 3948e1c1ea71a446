"""The measured facts behind a decision reach both report.html and report.md (issue 14): for qa, token precision,
recall and ROUGE-L beside F1, grounding and retrieval for RAG, the generation budget with how it was chosen and
how many answers hit it; latency at batch 1 beside the batch share, each with how it was measured; training
reused with the original training's figures. A figure results.json does not hold reads "not measured".

Built on constructed results.json (validated against contracts.records.RunResults): no model runs.
"""

from __future__ import annotations

import html
import json
import re

from contracts.records import RunResults
from reports import render_report

BATCH_1 = ("batch 1: 16 test queries answered one at a time after an untimed warm-up, the whole path timed "
           "(for retrieval: query embedding and index search included)")
SHARE = "each answer's share of its batch's wall time at the batch size used (throughput)"
BASIS = "1.2 x the 95th percentile of 40 train answers' token lengths (100), within 16 to 256 tokens"
FAMILIES = {"prompting": (0, False, False), "rag": (1, True, False), "lora": (4, False, True), "finetune_rag": (7, True, True)}
QA_METRICS = {"token_f1": "Token F1", "token_precision": "Token precision", "token_recall": "Token recall", "rouge_l": "ROUGE-L",
              "exact_match": "Exact match"}


def _trial(name: str, strategy: str, metrics: dict, *, latency: dict | None = None, resources: dict | None = None,
           details: dict | None = None, one_time: float = 0.0) -> dict:
    return {"id": name.replace("/", "-").replace("+", "-"), "name": name, "strategy": strategy, "hash": "0" * 16, "status": "ok", "settings": {},
            "metrics": metrics, "n_test": 10, "latency": latency, "resources": {"wall_s": 1.0, **(resources or {})},
            "details": dict(details or {}), "cost": {"one_time_usd": one_time, "per_1k_queries_usd": 0.01}}


def _latency(p50: float, p95: float, share50: float, share95: float, batch: int) -> dict:
    return {"p50_ms": p50, "p95_ms": p95, "measured": BATCH_1, "batch_share_p50_ms": share50, "batch_share_p95_ms": share95,
            "batch_size": batch, "batch_share_measured": SHARE}


def _qa(p: float, r: float, rouge: float, **more) -> dict:
    f1 = 2 * p * r / (p + r)
    return {"token_f1": f1, "token_f1_ci95": [f1 - 0.05, f1 + 0.05], "token_precision": p, "token_recall": r, "rouge_l": rouge,
            "exact_match": 0.0, **more}


def qa_results(max_latency_ms: float | None = 2000.0) -> dict:
    budget = {"generation_budget": {"max_new_tokens": 120, "basis": BASIS, "reference_p95_tokens": 100, "references_cut": 0.025}}
    trials = [
        _trial("zero-shot", "prompting", _qa(0.21, 0.43, 0.18), latency=_latency(812.5, 1304.0, 96.1, 97.3, 8),
               resources={"examples_per_s": 10.4}, details=budget),
        _trial("rag/sentence/flat", "rag", _qa(0.47, 0.32, 0.23, grounding_rate=0.81, grounding_n=10, recall_at_k=0.75, mrr=0.6,
                                              retrieval_k=3, retrieval_n=10),
               latency=_latency(905.0, 1577.5, 120.0, 131.0, 4), resources={"examples_per_s": 8.1}, details=budget),
        _trial("rag/fixed-128/hnsw", "rag", _qa(0.40, 0.30, 0.21),  # grounding and retrieval not recorded
               latency=_latency(950.0, 1600.0, 125.0, 133.0, 4), details=budget),
        _trial("lora-r16", "lora", _qa(0.30, 0.35, 0.2), latency=_latency(700.0, 1100.0, 90.0, 92.0, 8), one_time=0.0343,
               resources={"train_s": 1234.5, "training_reused": True, "train_peak_rss_mb": 3456.0, "prepare_s": 3.2},
               details=budget | {"training_reused": "a finished training reloaded: train_s and memory are that training's"}),
        _trial("lora-r16+rag/sentence/flat", "finetune_rag", _qa(0.5, 0.33, 0.25, grounding_rate=0.77, recall_at_k=0.75, mrr=0.6,
                                                                 retrieval_k=3),
               latency=_latency(990.0, 1700.0, 130.0, 140.0, 4), one_time=0.0344,
               resources={"train_s": 1234.5, "training_from": "lora-r16", "reused_setup_s": 1236.0},
               details=budget | {"finetune": {"training_reused": "a finished training reloaded: train_s and memory are that training's"}}),
        _trial("lora-r8", "lora", _qa(0.28, 0.3, 0.19), latency=None, one_time=0.02,  # no latency record, trained here
               resources={"train_s": 700.0, "training_reused": False, "train_peak_rss_mb": 3000.0}, details=budget),
    ]
    results = {
        "complete": True, "trials": trials, "environment": {"packages": {}, "python": "3.11", "cpu": "test", "cpu_count": 2},
        "task": {"name": "faq", "type": "qa", "model": "m", "metric": "token_f1", "seed": 0,
                 "spec": {"constraints": {"max_latency_ms": max_latency_ms}}},
        "families": {f: {"simplicity_rank": r, "retrieves": ret, "changes_weights": w} for f, (r, ret, w) in FAMILIES.items()},
        "metrics": {m: {"display_name": d, "higher_is_better": True, "unit": "%", "paired_test": "bootstrap"} for m, d in QA_METRICS.items()},
        "statistics": {"budget_hits": {"zero-shot": {"hits": 7, "n": 10, "max_new_tokens": 120},
                                       "rag/sentence/flat": {"hits": 1, "n": 10, "max_new_tokens": 120},
                                       "lora-r16": {"hits": 0, "n": 10, "max_new_tokens": 120}}},
    }
    RunResults.model_validate(results)  # the constructed run is a valid results.json
    return results


def _render(tmp_path, results: dict) -> tuple[str, str]:
    (tmp_path / "results.json").write_text(json.dumps(results))
    page = render_report(tmp_path).read_text()
    return page, (tmp_path / "report.md").read_text()


def _html_table(page: str, section: str, heading: str | None = None) -> dict[str, list[str]]:
    """{trial: [cells]} of the first table in <section id=section> (after <h3>heading</h3> when given)."""
    body = re.search(rf'<section id="{section}">(.*?)</section>', page, re.S)
    assert body, f"no section {section}"
    text = body.group(1) if heading is None else body.group(1).split(f"<h3>{heading}</h3>", 1)[1]
    table = re.search(r"<tbody>(.*?)</tbody>", text, re.S).group(1)
    rows = [[html.unescape(re.sub("<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
            for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)]
    return {r[0]: r[1:] for r in rows}


def _md_table(md: str, heading: str) -> dict[str, list[str]]:
    lines = md.split(f"## {heading}", 1)[1].split("\n## ", 1)[0].splitlines()
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines if line.startswith("| ")]
    return {r[0]: r[1:] for r in rows[1:]}  # the first row is the header


def _both(page: str, md: str, section: str, heading: str, h3: str | None = None) -> list[tuple[dict, str]]:
    """The table of one section in each format, with that format's text around it (notes)."""
    part = md.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    html_part = html.unescape(re.search(rf'<section id="{section}">(.*?)</section>', page, re.S).group(1))
    return [(_html_table(page, section, h3), html_part), (_md_table(md, heading), part)]


ANSWERS = "Answers: precision, recall, ROUGE-L and grounding beside Token F1; the generation budget"


def test_qa_answers_show_precision_recall_rouge_grounding_retrieval_and_the_budget(tmp_path):
    page, md = _render(tmp_path, qa_results())
    for rows, text in _both(page, md, "answers", ANSWERS):
        # trial: F1, precision, recall, ROUGE-L, grounding, recall@k, MRR, budget, hits
        assert rows["rag/sentence/flat"][:7] == ["38.1%", "47.0%", "32.0%", "23.0%", "81.0%", "0.75 (k=3)", "0.60"]
        assert rows["zero-shot"][1:7] == ["21.0%", "43.0%", "18.0%", "no retrieval", "no retrieval", "no retrieval"]
        assert rows["lora-r16+rag/sentence/flat"][4] == "77.0%"
        assert rows["rag/fixed-128/hnsw"][4:7] == ["not measured"] * 3  # a retrieving trial without the figures
        mark = rows["zero-shot"][7]
        assert mark.startswith("120 tokens [") and all(r[7] == mark for r in rows.values())
        assert f"{mark.split(' ')[-1]} {BASIS}; 2.5% of the train answers are longer than the budget" in text
        assert rows["zero-shot"][8] == "7 of 10 (70.0%)" and rows["rag/sentence/flat"][8] == "1 of 10 (10.0%)"
        assert rows["lora-r8"][8] == "not measured"  # no budget_hits entry: unknown, not 0
    assert "Token precision" in md and "ROUGE-L" in md


def test_a_budget_set_in_task_yaml_says_so(tmp_path):
    results = qa_results()
    for t in results["trials"]:
        t["details"]["generation_budget"] = {"max_new_tokens": 32, "basis": "max_new_tokens set in task.yaml",
                                             "reference_p95_tokens": 100, "references_cut": 0.9}
    del results["trials"][0]["details"]["generation_budget"]
    page, md = _render(tmp_path, results)
    for rows, text in _both(page, md, "answers", ANSWERS):
        assert rows["rag/sentence/flat"][7] == "32 tokens [1]" and rows["zero-shot"][7] == "not recorded"
        assert "[1] max_new_tokens set in task.yaml; 90.0% of the train answers are longer than the budget" in text


LATENCY = "Latency: one query served alone, and each answer's share of its batch"


def test_latency_at_batch_1_beside_the_batch_share_each_with_how_it_was_measured(tmp_path):
    page, md = _render(tmp_path, qa_results(max_latency_ms=1500))
    for rows, text in _both(page, md, "latency", LATENCY):
        # trial: p50, p95, how, share p50, share p95, B, how, examples/s
        row = rows["rag/sentence/flat"]
        assert row[:2] == ["905.0 ms", "1,577.5 ms"] and row[3:6] == ["120.0 ms", "131.0 ms", "4"] and row[7] == "8.1"
        assert rows["zero-shot"][5] == "8"
        assert f"{row[2]} {BATCH_1}" in text and f"{row[6]} {SHARE}" in text
        assert rows["lora-r8"] == ["not measured", "not measured", "not recorded", "not measured", "not measured", "not measured",
                                   "not measured", "not measured"]
        assert "constraints.max_latency_ms (1500 ms) is checked against the 'latency p95' column" in text
        assert "divided by the batch size B" in text
    assert "latency p95 ms</th>" in page


def test_an_unset_latency_limit_says_which_figure_it_would_read(tmp_path):
    page, md = _render(tmp_path, qa_results(max_latency_ms=None))
    for _, text in _both(page, md, "latency", LATENCY):
        assert "constraints.max_latency_ms is not set; when set, it is checked against the 'latency p95' column" in text


TRAINING = "Training done here or reused"


def test_reused_training_says_so_with_the_original_time_memory_and_cost(tmp_path):
    page, md = _render(tmp_path, qa_results())
    for rows, text in _both(page, md, "training", TRAINING, h3=TRAINING):
        assert rows["lora-r16"] == ["reused: this trial's own finished training, reloaded from its checkpoint", "1,234.5 s",
                                    "3,456 MB", "$0.0343"]
        assert rows["lora-r16+rag/sentence/flat"] == ["reused: the finished training of lora-r16, reloaded from its checkpoint",
                                                      "1,234.5 s", "in the record of lora-r16", "$0.0344"]
        assert rows["lora-r8"][0] == "trained in this trial"
        assert set(rows) == {"lora-r16", "lora-r16+rag/sentence/flat", "lora-r8"}  # prompting and RAG train nothing
        assert "charged at its original time" in text
    fine_tuning = _html_table(page, "training")  # the figures a trial lacks read "not measured", never "None" or blank
    row = fine_tuning["lora-r16+rag/sentence/flat"]  # trainable, weights, adapter, train s, tokens/s, peak RSS, estimate
    assert row[3] == "1234.5" and [row[i] for i in (1, 2, 4, 5, 6)] == ["not measured"] * 5 and "None" not in page


def test_a_record_without_the_reuse_fields_says_not_recorded(tmp_path):
    results = qa_results()
    for t in results["trials"]:
        t["resources"].pop("training_reused", None)
        t["details"].pop("finetune", None)
    page, md = _render(tmp_path, results)
    for rows, _ in _both(page, md, "training", TRAINING, h3=TRAINING):
        assert rows["lora-r16"][0] == "whether the training was reused is not recorded"
        assert rows["lora-r16+rag/sentence/flat"][0] == "the weights of lora-r16; whether its training was reused is not recorded"


def test_classification_has_no_answers_section_but_keeps_latency(tmp_path):
    results = qa_results()
    results["task"]["type"] = "classification"
    page, md = _render(tmp_path, results)
    assert 'id="answers"' not in page and ANSWERS not in md
    assert _html_table(page, "latency")["zero-shot"][0] == "812.5 ms" and _md_table(md, LATENCY)["zero-shot"][0] == "812.5 ms"
