"""Fine-tuning on the tiny model: what trains, what stays frozen, masking, resume, and the runner path."""

from __future__ import annotations

import json

import pytest

from advisor import compare
from advisor.task import check_task
from baselines import Context, strategies
from baselines.finetune import train as train_mod
from baselines.finetune.data import IGNORE, messages, template_text, tokenize
from baselines.finetune.train import curve_flags, lr_factor

FAST = "epochs: 2, batch_size: 4, max_seq_len: 64"


def prepared(task, family: str, tmp_path, **options):
    """A prepared strategy of `family` on `task`, trained in `tmp_path`."""
    spec, splits, _ = check_task(task)
    cls = strategies.get(family)
    ((name, settings),) = cls.expand(cls.Options(**{"epochs": 2, "batch_size": 4, "max_seq_len": 64, **options}), spec)
    strategy = cls(settings, Context(spec, splits, tmp_path / name))
    strategy.prepare()
    return strategy


def base_weights(tiny_model_dir) -> dict:
    from safetensors.torch import load_file

    return load_file(str(tiny_model_dir / "model.safetensors"))


def test_loss_is_masked_to_the_answer_and_end_of_turn(tiny_model_dir, classification_task):
    from baselines.engine import LanguageModel

    spec, splits, _ = check_task(classification_task())
    lm = LanguageModel.load(str(tiny_model_dir), device="cpu")
    template = template_text("classification", "instruct")
    ex = splits.train[0]
    tok = tokenize(lm, template, ex, splits.labels, max_seq_len=256)
    prompt = lm.tokenizer(lm.render(messages(template, ex, splits.labels)), add_special_tokens=False).input_ids
    answer = lm.tokenizer(ex.target, add_special_tokens=False).input_ids + [lm.tokenizer.eos_token_id]
    assert tok.input_ids == prompt + answer
    assert tok.labels == [IGNORE] * len(prompt) + answer
    short = tokenize(lm, template, ex, splits.labels, max_seq_len=len(answer) + 6)
    assert short.truncated and len(short.input_ids) == len(answer) + 6 and short.labels[-len(answer):] == answer


@pytest.mark.slow  # trains
def test_lora_freezes_the_base_and_trains_the_adapter(classification_task, tiny_model_dir, tmp_path):
    strategy = prepared(classification_task(), "lora", tmp_path, r=4)
    before = base_weights(tiny_model_dir)
    params = dict(strategy.lm.model.named_parameters())
    base = {n: p for n, p in params.items() if "lora_" not in n}
    assert not any(p.requires_grad for p in base.values())
    name = "base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight"
    assert (params[name].detach() == before["model.layers.0.self_attn.q_proj.weight"]).all()
    lora_b = [p for n, p in params.items() if "lora_B" in n]
    assert lora_b and all(p.requires_grad for p in lora_b)
    assert any(p.detach().abs().sum() > 0 for p in lora_b)  # B starts at zero: any non-zero entry was learned
    res = strategy.resources()
    assert 0 < res["trainable_params"] < res["total_params"]
    assert res["adapter_mb"] > 0 and res["tokens_per_s"] > 0
    assert (tmp_path / "lora-r4" / "adapter" / "adapter_config.json").exists()


@pytest.mark.slow  # trains
def test_full_changes_base_weights(classification_task, tiny_model_dir, tmp_path):
    strategy = prepared(classification_task(), "full", tmp_path, lr=1e-3)
    before = base_weights(tiny_model_dir)
    after = dict(strategy.lm.model.named_parameters())
    assert not (after["model.layers.0.self_attn.q_proj.weight"].detach() == before["model.layers.0.self_attn.q_proj.weight"]).all()
    res = strategy.resources()
    assert res["trainable_params"] == res["total_params"]


@pytest.mark.slow  # trains
def test_ia3_trains_only_its_scaling_vectors(classification_task, tmp_path):
    strategy = prepared(classification_task(), "ia3", tmp_path)
    trainable = [n for n, p in strategy.lm.model.named_parameters() if p.requires_grad]
    assert trainable and all("ia3_" in n for n in trainable)


@pytest.fixture(scope="module")
def wide_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model at width 64: bitsandbytes' CPU 4-bit kernels need layers at least one block (64) wide."""
    import shutil

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = tmp_path_factory.mktemp("wide-llama")
    config = LlamaConfig.from_pretrained(tiny_model_dir)
    config.update({"hidden_size": 64, "intermediate_size": 128, "head_dim": 16})
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    for f in tiny_model_dir.glob("*token*"):
        shutil.copy(f, path / f.name)
    return path


@pytest.mark.slow
@pytest.mark.bnb
def test_qlora_loads_4bit_and_its_weights_are_smaller_than_loras(classification_task, tiny_model_dir, wide_model_dir,
                                                                  tmp_path, monkeypatch):
    import bitsandbytes.functional as bnb_functional
    from bitsandbytes.nn import Linear4bit

    task = classification_task()
    task.write_text(task.read_text().replace(str(tiny_model_dir), str(wide_model_dir)))
    inference_kernel = []  # bnb's CPU inference kernel has no backward: it must not run while training
    real_gemv = bnb_functional.gemv_4bit
    monkeypatch.setattr(bnb_functional, "gemv_4bit", lambda *a, **k: inference_kernel.append(1) or real_gemv(*a, **k))
    qlora = prepared(task, "qlora", tmp_path, r=4)
    assert inference_kernel == []
    lora = prepared(task, "lora", tmp_path, r=4)
    assert any(isinstance(m, Linear4bit) for m in qlora.lm.model.modules())
    assert qlora.resources()["weights_mb"] < lora.resources()["weights_mb"]
    assert qlora.resources()["total_params"] == lora.resources()["total_params"]  # 4-bit counted at full shape
    assert qlora.predict(qlora.ctx.splits.test[:2])[0].output in qlora.ctx.splits.labels


def test_lora_and_qlora_share_everything_but_their_options():
    lora, qlora = strategies.get("lora"), strategies.get("qlora")
    assert issubclass(qlora, lora)
    assert {k for k in vars(qlora) if not k.startswith("__")} == {"Options", "simplicity_rank", "label", "_abc_impl"}
    assert set(qlora.Options.model_fields) - set(lora.Options.model_fields) == {"quant_type", "double_quant"}


def test_unknown_option_is_an_error():
    with pytest.raises(ValueError, match="extra"):
        strategies.get("lora").Options(rank=8)


def test_rank_list_sweeps(classification_task):
    spec, _, _ = check_task(classification_task())
    trials = strategies.get("lora").expand(strategies.get("lora").Options(r=[16, 4]), spec)
    assert [name for name, _ in trials] == ["lora-r4", "lora-r16"]


@pytest.mark.slow  # trains
def test_compare_in_process_records_resources_and_curves(classification_task, tmp_path):
    out = compare(classification_task(f"lora: {{r: 4, {FAST}}}"), out=tmp_path / "run", isolate=False)
    (trial,) = json.loads((out / "results.json").read_text())["trials"]
    assert trial["status"] == "ok", trial.get("error")
    assert 0 <= trial["metrics"]["accuracy"] <= 1 and "accuracy_ci95" in trial["metrics"]
    for key in ("trainable_params", "total_params", "weights_mb", "adapter_mb", "train_s", "tokens_per_s", "peak_rss_mb"):
        assert trial["resources"][key] is not None, key
    curves = trial["details"]["curves"]
    assert [p["step"] for p in curves["train_loss"]] == list(range(1, len(curves["train_loss"]) + 1))
    assert [p["epoch"] for p in curves["val_loss"]] == [1, 2]
    assert {"overfitting", "underfitting", "warnings"} <= set(trial["details"])


@pytest.mark.gpu
def test_lora_on_cuda_trains_in_half_precision_and_records_the_cuda_peak(classification_task, tmp_path):
    out = compare(classification_task(f"lora: {{r: 4, {FAST}}}"), out=tmp_path / "run", isolate=False, device="cuda")
    (trial,) = json.loads((out / "results.json").read_text())["trials"]
    assert trial["status"] == "ok", trial.get("error")
    res = trial["resources"]
    assert res["device"] == "cuda" and res["precision"] in ("bf16", "fp16")
    assert 0 < res["train_cuda_delta_mb"] <= res["train_peak_cuda_mb"]


@pytest.mark.slow  # trains
def test_interrupted_training_resumes_from_the_last_checkpoint(classification_task, tmp_path, monkeypatch):
    task = classification_task(f"lora: {{r: 4, {FAST}}}")
    uninterrupted = json.loads((compare(task, out=tmp_path / "ref", isolate=False) / "results.json").read_text())["trials"][0]

    original = train_mod.save_checkpoint

    def kill_after_epoch_1(root, model, optimizer, state):
        path = original(root, model, optimizer, state)
        if state["epoch"] == 1:
            raise KeyboardInterrupt  # Ctrl-C right after the first checkpoint landed
        return path

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):  # the fixtures' patches stay
        patch.setattr(train_mod, "save_checkpoint", kill_after_epoch_1)
        compare(task, out=tmp_path / "run", isolate=False)
    ckpts = list((tmp_path / "run" / "trials").glob("*/checkpoints/epoch-*"))
    assert [p.name for p in ckpts] == ["epoch-1"]

    stepped = []  # optimizer steps (0-based) taken by the second run
    real_lr_factor = train_mod.lr_factor
    monkeypatch.setattr(train_mod, "lr_factor", lambda step, *a: stepped.append(step) or real_lr_factor(step, *a))
    resumed = json.loads((compare(task, out=tmp_path / "run", isolate=False) / "results.json").read_text())["trials"][0]
    assert resumed["status"] == "ok", resumed.get("error")
    assert resumed["details"]["resumed_from_epoch"] == 1
    epoch_2 = [p["step"] - 1 for p in uninterrupted["details"]["curves"]["train_loss"] if p["epoch"] == 2]
    assert stepped == epoch_2  # it started at epoch 2: epoch 1 was not trained again
    assert resumed["details"]["curves"] == uninterrupted["details"]["curves"]  # continuous: same steps, same losses
    assert resumed["metrics"]["accuracy"] == uninterrupted["metrics"]["accuracy"]


@pytest.mark.slow  # trains
def test_a_finished_training_is_not_repeated(classification_task, tmp_path, monkeypatch):
    task = classification_task(f"lora: {{r: 4, {FAST}}}")
    prepared(task, "lora", tmp_path, r=4)
    monkeypatch.setattr(train_mod, "_micro_loss", lambda *a: pytest.fail("trained again"))
    again = prepared(task, "lora", tmp_path, r=4)
    assert again.state["reused_finished_training"]


@pytest.mark.slow  # trains
def test_three_training_rows_warn_instead_of_crashing(classification_task, tmp_path):
    task = classification_task(f"lora: {{r: 4, {FAST}}}")
    rows = [("my invoice is wrong", "billing"), ("where is my parcel", "shipping"), ("refund please", "billing")]
    (task.parent / "train.jsonl").write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows))
    out = compare(task, out=tmp_path / "run", isolate=False)
    (trial,) = json.loads((out / "results.json").read_text())["trials"]
    assert trial["status"] == "ok", trial.get("error")
    warnings = " ".join(trial["details"]["warnings"])
    assert "only 3 training example(s)" in warnings
    assert "never seen in the training data" in warnings and "account" in warnings
    assert "no validation split" in warnings


@pytest.mark.parametrize(
    "train, val, flags",
    [
        ([3.0, 2.5, 2.0, 1.5, 1.0], [2.0, 2.5], {"overfitting": True, "underfitting": False}),
        ([3.0, 2.5, 2.0, 1.5, 1.0], [2.0, 1.5], {"overfitting": False, "underfitting": False}),
        ([3.0, 3.0, 2.99, 3.0, 2.98], [3.0, 3.0], {"overfitting": False, "underfitting": True}),
    ],
)
def test_curve_flags(train, val, flags):
    state = {"train_loss": [{"loss": x} for x in train], "val_loss": [{"loss": x} for x in val]}
    assert curve_flags(state) == flags


def test_lr_schedule_warms_up_then_decays():
    linear = [lr_factor(s, 10, 2, "linear") for s in range(10)]
    assert linear[:2] == [0.5, 1.0] and linear[2] == 1.0 and linear[-1] < 0.2
    assert all(a >= b for a, b in zip(linear[1:], linear[2:]))
    assert lr_factor(9, 10, 0, "cosine") < 0.05 and lr_factor(5, 10, 0, "constant") == 1.0
