"""`advisor validate` catches, before any compute, what would fail or mislead later (issue 19): one case
per finding, each located as file:LINE: field: message. No case touches the network (HF_HUB_OFFLINE)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from advisor.cli import cli

from conftest import write_jsonl

WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima".split()
TRAIN = [{"text": f"train {a} {b}", "label": ["billing", "shipping"][i % 2]} for i, (a, b) in enumerate(zip(WORDS, reversed(WORDS)))]
TEST = [{"text": f"test {a} {b}", "label": ["billing", "shipping"][i % 2]} for i, (a, b) in enumerate((a, b) for a in WORDS for b in WORDS[:4])]
BASE = """name: t
model: smollm2-135m-instruct
task: {type: classification}
data: {train: train.jsonl, test: test.jsonl}
strategies:
  prompting: {shots: [0]}
"""


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("ADVISOR_BENCHMARK_DATA", raising=False)
    write_jsonl(tmp_path / "train.jsonl", TRAIN)
    write_jsonl(tmp_path / "test.jsonl", TEST)
    (tmp_path / "task.yaml").write_text(BASE)
    return tmp_path


def validate(folder, *flags: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["validate", str(folder / "task.yaml"), *flags])
    return result.exit_code, result.output.replace(str(folder) + "/", "")


def edit(old: str, new: str):
    def apply(folder):
        text = (folder / "task.yaml").read_text()
        assert old in text
        (folder / "task.yaml").write_text(text.replace(old, new))
    return apply


def rows(name: str, records: list[dict]):
    return lambda folder: write_jsonl(folder / name, records)


def csv_with_bom(folder):
    (folder / "train.csv").write_bytes("\ufefftext,label\n".encode() + "".join(f"{r['text']},{r['label']}\n" for r in TRAIN).encode())
    edit("train: train.jsonl", "train: train.csv")(folder)


def rag_with_corpus(gold_field: str | None, corpus: str = "docs"):
    def apply(folder):
        (folder / "docs").mkdir()
        (folder / "docs" / "a.md").write_text("Refunds take five days.")
        write_jsonl(folder / "corpus.jsonl", [{"id": "a", "text": "one"}] + [{"id": "b", "text": f"copy {i}"} for i in range(5)])
        gold = f", gold_field: {gold_field}" if gold_field else ""
        edit("strategies:\n", f"knowledge: {{corpus: {corpus}}}\nstrategies:\n  rag: {{chunking: [sentence], index: [flat]{gold}}}\n")(folder)
    return apply


def benchmark_data(folder):
    (folder / "bench" / "arc_easy").mkdir(parents=True)
    (folder / "bench" / "arc_easy" / "test.jsonl").write_text("{}\n")
    edit("strategies:\n", "forgetting: {benchmarks: [arc_easy, hellaswag], data_dir: bench}\nstrategies:\n")(folder)


CASES = {
    # 1. the model is resolved without loading it
    "hub id not cached, offline": (edit("smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-1.7B-Instruct"), 2,
                                   ["task.yaml:2: model: 'HuggingFaceTB/SmolLM2-1.7B-Instruct' is not in the local Hugging Face cache"]),
    "model folder missing": (edit("smollm2-135m-instruct", "./models/mine"), 2, ["task.yaml:2: model: model folder not found"]),
    "embedded name typo": (edit("smollm2-135m-instruct", "smollm3-135m-instruct"), 2,
                           ["task.yaml:2: model:", "Did you mean 'smollm2-135m-instruct'?"]),
    # 2. forgetting benchmarks and target
    "benchmark without data_dir": (edit("strategies:\n", "forgetting: {benchmarks: [arc_easy]}\nstrategies:\n"), 2,
                                   ["task.yaml:5: forgetting.benchmarks: arc_easy read their data from a folder: set forgetting.data_dir"]),
    "benchmark data missing": (benchmark_data, 2, ["task.yaml:5: forgetting.benchmarks[1]: benchmark data not found:",
                                                   "hellaswag/test.jsonl"]),
    "unknown lm-eval task": (edit("strategies:\n", "forgetting: {benchmarks: [arc_esay]}\nstrategies:\n"), 0,
                             ["task.yaml:5: warning: forgetting.benchmarks[0]: 'arc_esay' is neither a built-in benchmark",
                              "Did you mean 'arc_easy'?"]),
    "target size in words": (edit("strategies:\n", "target: {model: 8 billion, gpu: a10g-24gb}\nstrategies:\n"), 2,
                             ["task.yaml:5: target.model: '8 billion' is neither a size", "Accepted: a parameter count"]),
    # 3. duplicate keys; duplicate corpus ids (a warning, an error under --strict: see the strict test)
    "duplicate yaml key": (edit("strategies:\n  prompting: {shots: [0]}\n", "strategies:\n  prompting: {shots: [0]}\n  prompting: {shots: [3]}\n"),
                           2, ["task.yaml:7: strategies.prompting: duplicate key (first on line 6)"]),
    # 4. a byte-order mark
    "csv with a BOM": (csv_with_bom, 0, ["ok (train 12, test 48; 2 labels"]),
    # 5. labels
    "labels differing in case and space": (rows("test.jsonl", TEST[:-1] + [{"text": "late one", "label": "Billing "}]), 0,
                                           ["test.jsonl:48: warning: label: labels 'billing' (30 rows) and 'Billing ' (1 row) differ only in case or spaces"]),
    "one label": (lambda folder: [rows(name, [{**r, "label": "billing"} for r in data])(folder)
                                  for name, data in (("train.jsonl", TRAIN), ("test.jsonl", TEST))], 2,
                  ["train.jsonl: label: a classification task needs at least 2 labels; found 1 ('billing')"]),
    # 6. shots and test-set size
    "more shots than train": (edit("shots: [0]", "shots: [0, 5000]"), 2,
                              ["task.yaml:6: strategies.prompting.shots[1]: 5000-shot prompting needs 5000 training examples; train has 12"]),
    "three test items": (rows("test.jsonl", TEST[:3]), 0,
                         ["test.jsonl: warning: 3 test items can only show differences in accuracy of about 69 points",
                          "(114 near 50%); about 142 items (392 near 50%) would bring that to 10 points"]),
    # 7. field names, metric, gold_field
    "wrong field in 2,000 rows": (rows("train.jsonl", [{"txt": f"row {i}", "label": "x"} for i in range(2000)]), 2,
                                  ["train.jsonl:1: text: missing field 'text' in 2,000 of 2,000 rows (lines 1, 2, 3, 4, 5 and 1,995 more). "
                                   "Did you mean 'txt'? Fields found: txt, label"]),
    "unknown metric": (edit("strategies:\n", "metric: acuracy\nstrategies:\n"), 2,
                       ["task.yaml:5: metric: unknown metric 'acuracy'. Did you mean 'accuracy'? Metrics: accuracy,"]),
    "gold_field not in test rows": (rag_with_corpus("source"), 2,
                                    ["task.yaml:7: strategies.rag.gold_field: no test row has the field 'source'"]),
}


@pytest.mark.parametrize("case", CASES)
def test_validate_finds_it_before_compute(folder, case):
    change, code, expected = CASES[case]
    change(folder)
    exit_code, output = validate(folder)
    assert exit_code == code, output
    for text in expected:
        assert text in output, output
    assert "Traceback" not in output


def test_wrong_field_is_one_line_not_one_per_row(folder):
    write_jsonl(folder / "train.jsonl", [{"txt": f"row {i}", "label": "x"} for i in range(2000)])
    _, output = validate(folder)
    assert sum("train.jsonl" in line for line in output.splitlines()) == 1, output


def test_strict_counts_warnings_and_prints_each_once(folder):
    rag_with_corpus(None, "corpus.jsonl")(folder)
    exit_code, output = validate(folder, "--strict")
    assert exit_code == 2
    duplicate = "corpus.jsonl: warning: knowledge.corpus:"
    assert output.count("lines 3, 4, 5, 6: duplicate document id, skipped") == 1, output
    assert duplicate in output
    assert "1 problem(s) (1 warning(s), errors under --strict); nothing was run." in output


def test_cached_hub_id_is_accepted(folder, monkeypatch):
    import huggingface_hub.constants

    snapshot = folder / "hub" / "models--org--tiny" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (folder / "hub" / "models--org--tiny" / "refs").mkdir()
    (folder / "hub" / "models--org--tiny" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(folder / "hub"))
    edit("smollm2-135m-instruct", "org/tiny")(folder)
    exit_code, output = validate(folder)
    assert exit_code == 0 and "ok (train 12, test 48" in output, output


def test_validate_never_loads_weights(folder, monkeypatch, tiny_model_dir):
    import transformers

    import baselines.models

    def forbidden(*args, **kwargs):
        raise AssertionError("validate loaded a model")

    monkeypatch.setattr(baselines.models, "load_model", forbidden)
    monkeypatch.setattr(baselines.models, "_convert_gguf", forbidden)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", forbidden)
    for model in ("smollm2-135m-instruct", str(tiny_model_dir)):
        (folder / "task.yaml").write_text(BASE.replace("smollm2-135m-instruct", model))
        exit_code, output = validate(folder)
        assert exit_code == 0 and "ok (train 12" in output, output


def test_uncached_hub_id_online_is_a_warning_with_the_download_size(folder, monkeypatch):
    import huggingface_hub
    from huggingface_hub.hf_api import RepoSibling

    class Info:
        siblings = [RepoSibling("model.safetensors", size=3_420_000_000), RepoSibling("config.json", size=900)]

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda self, name, **kw: Info())
    edit("smollm2-135m-instruct", "org/big")(folder)
    exit_code, output = validate(folder)
    assert exit_code == 0, output
    assert "task.yaml:2: warning: model: 'org/big' is not in the local Hugging Face cache: the run downloads it first (3.4 GB of weights)" in output


def test_every_problem_in_one_report(folder):
    """Five problems at once: nothing stops at the first; a split with errors skips only the counts that need it."""
    (folder / "task.yaml").write_text(
        "name: t\nmodel: HuggingFaceTB/SmolLM2-1.7B-Instruct\ntask: {type: classification}\n"
        "data: {train: train.jsonl, test: test.jsonl, id: key}\nstrategies:\n  prompting: {shots: [0]}\n"
        "  prompting: {shots: [0, 5000]}\nforgetting: {benchmarks: [arc_easy]}\ntarget: {model: 8 billion, gpu: a10g-24gb}\n")
    exit_code, output = validate(folder)
    assert exit_code == 2
    for where in ("task.yaml:7: strategies.prompting: duplicate key", "task.yaml:2: model:", "task.yaml:8: forgetting.benchmarks:",
                  "task.yaml:9: target.model:", "train.jsonl:1: key: missing field 'key' in 12 of 12 rows",
                  "test.jsonl:1: key: missing field 'key' in 48 of 48 rows"):
        assert where in output, output
    assert "shots" not in output  # train had errors: its count would be wrong
    assert output.strip().endswith("6 problem(s); nothing was run.")
