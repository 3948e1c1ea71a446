"""The GPU path's logic, checked on the CPU (issue 21): each test names the finding it guards.

Nothing here runs CUDA. Where torch's CUDA counters are needed (the memory meter), a small fake
allocator stands in for them to check the arithmetic; the real counters are checked by
`make gpu-check` (benchmarks/gpu_check.py) on a GPU.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from advisor.cli import cli
from advisor.estimate import NF4_DQ_BITS, Setup, estimate, estimate_for_trial
from advisor.shapes import model_shape
from baselines import strategies
from baselines.device import (ADAMW, PAGED_ADAMW_8BIT, DeviceInfo, answer_batch_size, device_type, gradient_checkpointing,
                              optimizer_name, precision, sequence_bytes)
from contracts.gpus import match_gpu

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "support-tickets" / "task.yaml"
A100 = DeviceInfo("cuda", "NVIDIA A100-SXM4-80GB", (8, 0), 79.15)
T4 = DeviceInfo("cuda", "Tesla T4", (7, 5), 14.58)


# 1. GPU memory measured per trial, nested meters keep the outer peak


class FakeAllocator:
    """torch.cuda's four counters over a scripted allocation history (logic only; no GPU)."""

    def __init__(self):
        self.now = self.peak = 0

    def alloc(self, mb):
        self.now += mb * 2**20
        self.peak = max(self.peak, self.now)

    def install(self, monkeypatch):
        import torch

        monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda d=None: setattr(self, "peak", self.now))
        monkeypatch.setattr(torch.cuda, "memory_allocated", lambda d=None: self.now)
        monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda d=None: self.peak)
        monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda d=None: self.peak + 64 * 2**20)


def test_trial_meter_keeps_its_peak_across_a_nested_training_meter(monkeypatch):
    from evaluators.meters import PeakMemory

    gpu = FakeAllocator()
    gpu.install(monkeypatch)
    gpu.alloc(100)  # CUDA context users before the trial
    with PeakMemory("cuda:1") as trial:
        gpu.alloc(500)  # weights
        gpu.alloc(300)
        gpu.alloc(-300)  # a transient freed before training
        with PeakMemory("cuda:1") as training:
            gpu.alloc(200)
            gpu.alloc(-200)
    assert trial.as_dict()["peak_cuda_mb"] == 900 and trial.as_dict()["peak_cuda_delta_mb"] == 800
    assert trial.as_dict()["peak_cuda_reserved_mb"] == 964
    assert training.as_dict()["peak_cuda_mb"] == 800 and training.as_dict()["peak_cuda_delta_mb"] == 200
    assert "peak_cuda_mb" not in PeakMemory("cpu").__enter__().as_dict()


# 2. memory calibration compares like with like; QLoRA's fp32 rest and AMP full fine-tuning modelled


def test_calibration_on_cuda_includes_the_weights_and_on_cpu_leaves_them_out(tiny_model_dir):
    cuda = estimate_for_trial(tiny_model_dir, "lora", 64, 4, 8, device_type="cuda")
    cpu = estimate_for_trial(tiny_model_dir, "lora", 64, 4, 8, device_type="cpu")
    assert cuda["comparable_mb"] == cuda["estimated_total_mb"] and cuda["compare_with"] == "train_peak_cuda_mb"
    assert cpu["comparable_mb"] == pytest.approx(cpu["estimated_total_mb"] - cpu["estimated_mb"]["weights"], abs=0.11)
    assert cpu["compare_with"] == "train_rss_delta_mb"


def test_memory_calibration_of_a_cuda_record(tiny_model_dir):
    from advisor.aggregate import memory_calibration

    est = estimate_for_trial(tiny_model_dir, "lora", 40, 4, 16, device_type="cuda", lora_dropout=0.05)
    record = {"strategy": "lora", "settings": {"batch_size": 4, "r": 16, "dropout": 0.05, "gradient_checkpointing": False},
              "resources": {"device": "cuda", "precision": "bf16", "longest_train_tokens": 40, "train_rss_delta_mb": 900.0,
                            "train_peak_cuda_mb": est["estimated_total_mb"] / 2}}
    found = memory_calibration(record, SimpleNamespace(model=str(tiny_model_dir)))
    assert found["estimated_mb"] == est["estimated_total_mb"] and found["error_pct"] == 100.0
    assert "weights included" in found["measured"]


def test_qlora_keeps_unquantized_weights_in_fp32_and_full_trains_fp32_weights_under_autocast():
    from advisor.estimate import memory_terms

    shape = model_shape("8B")
    terms = memory_terms(shape, Setup(method="qlora", dtype="bf16"))
    rest = shape.params - shape.linear_params
    assert terms["weights"] == pytest.approx(shape.linear_params * NF4_DQ_BITS / 8 + rest * 4)
    full = memory_terms(shape, Setup(method="full", dtype="fp32", autocast="bf16", master_weights=False, gradient_checkpointing=False))
    assert full["weights"] == 4 * shape.params and full["gradients"] == 4 * shape.params
    assert full["optimizer"] == 8 * shape.params  # no second master copy: the weights are the fp32 master
    bf16 = memory_terms(shape, Setup(method="full", dtype="bf16", gradient_checkpointing=False))
    assert full["activations"] == bf16["activations"]  # autocast keeps activations in 16 bit


# 3. bf16 only where native; fp16 with autocast and a GradScaler elsewhere


@pytest.mark.parametrize("kind, capability, expected", [
    ("cuda", (7, 5), "fp16"), ("cuda", (7, 0), "fp16"), ("cuda", (8, 0), "bf16"), ("cuda", (9, 0), "bf16"),
    ("cuda", None, "bf16"), ("cpu", None, "fp32"),
])
def test_bf16_only_on_gpus_that_compute_it_natively(kind, capability, expected):
    assert precision(kind, capability) == expected


def test_fp16_training_runs_under_autocast_with_a_grad_scaler(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from baselines.finetune.data import IGNORE, Tokenized
    from baselines.finetune.family import LoraOptions
    from baselines.finetune.train import train

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    data = [Tokenized(list(range(5, 25)), [IGNORE] * 15 + list(range(20, 25))) for _ in range(4)]
    state = train(model, data, [], LoraOptions(epochs=1, batch_size=2), seed=0, pad_id=0, precision="fp16")
    assert state["grad_scaler"]["scale"] > 0 and state["fingerprint"]["precision"] == "fp16"
    assert train(model, data, [], LoraOptions(epochs=1, batch_size=2), seed=0, pad_id=0)["grad_scaler"] == {}  # fp32: off


# 4. full fine-tuning answers in the serving precision


def test_full_fine_tuning_answers_in_the_serving_precision(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    from baselines.finetune.weights import dominant_precision

    full = strategies.get("full")({}, None)
    full.device = A100
    model = full.adapt(AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16))
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # trains on fp32 master weights
    assert {p.dtype for p in full.serving_model(model).parameters()} == {torch.bfloat16}
    assert dominant_precision(model) == "bf16"  # what the record's `answered_in` says


# 5. one untimed warm-up batch; 10. logits only where they are used


def test_one_untimed_warm_up_pass_per_model_and_no_logits_for_every_prompt_position(tiny_model_dir):
    from baselines.engine import LanguageModel
    from baselines.models import load_model

    lm = LanguageModel(*load_model(str(tiny_model_dir), device="cpu"))
    calls, head_rows = [], []
    lm.model.register_forward_hook(lambda m, a, k, out: calls.append(k["input_ids"].shape), with_kwargs=True)
    lm.model.lm_head.register_forward_hook(lambda m, a, out: head_rows.append(a[0].shape[0] * a[0].shape[1]))
    prompts = [" ".join(["billing shipping refund login password printer"] * 12) + f" {i}" for i in range(6)]
    lm.choose(prompts, ["billing", "shipping"], batch_size=3)
    first, warm_up = len(calls), calls[0]
    assert warm_up == (3, 16)  # the first batch's first tokens: its whole prompts would cost as much as scoring them
    calls.clear()
    lm.choose(prompts, ["billing", "shipping"], batch_size=3)
    assert first == len(calls) + 1
    prompt_positions = sum(len(lm._encode(p)) for p in prompts)
    assert sum(head_rows) < prompt_positions / 4  # old code: every prompt position went through the head


# 6. the embedder runs on the trial's device


def test_embedder_loads_on_the_device_it_is_given(monkeypatch):
    import sentence_transformers

    from baselines.embedding import Embedder

    seen = []
    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", lambda path, device: seen.append(device))
    Embedder("some/folder", device="cuda:1")._load()
    assert seen == ["cuda:1"]
    calls = [line for path in (ROOT / "baselines").rglob("*.py") for line in path.read_text().splitlines()
             if "Embedder(" in line and "class Embedder" not in line]
    assert len(calls) >= 2 and all("device=self.ctx.device" in line for line in calls)  # strategies embed on the trial's device


# 7. devices compared by type, the index kept


def test_devices_are_compared_by_type_and_keep_their_index():
    assert device_type("cuda:1") == "cuda" and DeviceInfo("cuda:1").type == "cuda"
    assert DeviceInfo("cuda:1", A100.name, A100.capability).as_plan() == DeviceInfo("cuda:0", A100.name, A100.capability).as_plan()
    assert DeviceInfo("cuda:1").precision == "bf16" and DeviceInfo("cuda:1").device == "cuda:1"


def test_no_device_is_compared_as_a_string():
    pattern = re.compile(r"""device\s*[!=]=\s*["']cuda|startswith\(["']cuda|is_bf16_supported\(""")
    found = [f"{path.relative_to(ROOT)}:{n}" for folder in ("advisor", "baselines", "evaluators", "benchmarks")
             for path in (ROOT / folder).rglob("*.py") for n, line in enumerate(path.read_text().splitlines(), 1)
             if pattern.search(line)]
    assert found == []


# 8. GPU-sized defaults


def test_gradient_checkpointing_defaults_on_for_adapters_on_a_gpu():
    assert gradient_checkpointing(None, True, "cuda") and not gradient_checkpointing(None, True, "cpu")
    assert not gradient_checkpointing(False, True, "cuda") and gradient_checkpointing(True, False, "cpu")
    for family, on_gpu in (("lora", True), ("qlora", True), ("full", False), ("ia3", False)):
        cls = strategies.get(family)
        settings = cls.Options().model_dump(mode="json")
        assert cls.for_device(settings, "cuda")["gradient_checkpointing"] is on_gpu
        assert cls.for_device(settings, "cpu")["gradient_checkpointing"] is False


def test_qlora_8b_defaults_fit_a_24gb_gpu_only_with_checkpointing():
    setup = Setup(method="qlora", seq_len=256, batch=8, optimizer="adamw-8bit")
    on = estimate("8B", "a10g-24gb", setup)
    off = estimate("8B", "a10g-24gb", Setup(**{**setup.__dict__, "gradient_checkpointing": False}))
    assert on.fits and not off.fits and off.total_gb > 25


def test_answering_batch_is_sized_to_the_gpu_and_unchanged_on_the_cpu(tiny_model_dir):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_model_dir)
    per = sequence_bytes(config, 200, 7, 2)
    kv = 2 * config.num_hidden_layers * config.num_key_value_heads * (config.hidden_size // config.num_attention_heads) * 200 * 2 * 7
    assert per > kv
    assert answer_batch_size("cpu", None, per) == 8
    assert answer_batch_size("cuda", 40 * 2**30, 100 * 2**20) == 64
    assert answer_batch_size("cuda", 2**30, 100 * 2**20) == 5
    assert answer_batch_size("cuda", 2**20, 100 * 2**20) == 1
    assert "batch_size" not in (ROOT / "baselines" / "finetune" / "family.py").read_text().split("def predict")[1].split("def ")[0]


# 9. results never reused across devices, precisions, optimizers or library versions


def test_trial_ids_depend_on_device_precision_and_versions(classification_task, monkeypatch):
    from advisor.plan import make_plan
    from advisor.task import check_task

    spec, splits, _ = check_task(classification_task("lora: {r: 4}"))
    ids = {name: [t.hash for t in make_plan(spec, splits, device)]
           for name, device in {"cpu": DeviceInfo("cpu"), "a100": A100, "t4": T4, "planned": DeviceInfo("cuda")}.items()}
    assert len({h for hashes in ids.values() for h in hashes}) == 4 * len(ids["cpu"])
    assert [t.hash for t in make_plan(spec, splits, DeviceInfo("cuda:1", A100.name, A100.capability, A100.memory_gb))] == ids["a100"]
    assert optimizer_name(True, "cuda") == PAGED_ADAMW_8BIT and optimizer_name(True, "cpu") == optimizer_name(False, "cuda") == ADAMW
    import baselines.device

    monkeypatch.setattr(baselines.device, "library_versions", lambda: {"torch": "0.0"})
    assert [t.hash for t in make_plan(spec, splits, DeviceInfo("cpu"))] != ids["cpu"]


def test_dry_run_for_cuda_prints_gpu_sized_settings_and_other_ids():
    out = {d: CliRunner().invoke(cli, ["compare", str(EXAMPLE), "--dry-run", "--device", d]) for d in ("cpu", "cuda")}
    assert all(r.exit_code == 0 for r in out.values()), {d: r.output for d, r in out.items()}
    rows = {d: {line.split()[0]: line for line in r.output.splitlines() if "to run" in line} for d, r in out.items()}
    assert "bf16" in out["cuda"].output.splitlines()[0] and "fp32" in out["cpu"].output.splitlines()[0]
    assert "gradient checkpointing on" in rows["cuda"]["qlora-r16"] and "gradient checkpointing off" in rows["cpu"]["qlora-r16"]
    assert {n: line.split()[2] for n, line in rows["cpu"].items()}.keys() == rows["cuda"].keys()
    assert all(rows["cpu"][n].split()[2] != rows["cuda"][n].split()[2] for n in rows["cpu"])


# 11. base-model forgetting scored in a worker of its own


def test_base_forgetting_gets_its_own_worker_once_per_run(classification_task, tmp_path, monkeypatch):
    import advisor.run_loop as run_loop
    from advisor.rundir import RunDir
    from advisor.task import check_task

    started = []

    class Process:
        def __init__(self, target, args, daemon):
            started.append(target)

        def start(self):
            pass

        def is_alive(self):
            return False

    monkeypatch.setattr(run_loop.mp, "get_context", lambda kind: SimpleNamespace(Process=Process))
    spec, _, _ = check_task(classification_task("prompting: {shots: [0]}\n  lora: {r: 4}\n  full: {}",
                                                "forgetting: {benchmarks: [arc_easy]}\n"))
    executor, store = run_loop.LocalExecutor(device="cpu"), RunDir(tmp_path / "run")
    for family in ("prompting", "lora", "full"):
        executor._score_base(SimpleNamespace(family=family), spec, store, run_loop.Interrupt())
    assert started == [run_loop._base_worker]


# 12. the detected GPU priced from the table


def test_detected_gpu_is_priced_from_the_table_unless_the_spec_sets_a_price():
    from contracts.spec import Pricing
    from evaluators.cost import hourly_price

    a10g = {"device": "cuda", "gpu": "NVIDIA A10G", "gpu_memory_gb": 21.98}
    assert hourly_price(a10g, Pricing()) == (1.01, "GPU (a10g-24gb, table price)")
    assert hourly_price(a10g, Pricing(gpu_hour_usd=3.0)) == (3.0, "GPU")
    assert hourly_price({"device": "cuda", "gpu": "NVIDIA A10", "gpu_memory_gb": 22.0}, Pricing()) == (2.5, "GPU")
    assert hourly_price({"device": "cpu"}, Pricing()) == (0.1, "CPU")
    assert match_gpu("NVIDIA L40S", 44.4) == "l40s-48gb" and match_gpu("NVIDIA L4", 22.0) == "l4-24gb"
    assert match_gpu("NVIDIA A100-SXM4-40GB", 39.4) == "a100-40gb" and match_gpu("Tesla V100-SXM2-16GB", 15.8) is None
