"""Before running: per trial, the token positions the model will run and about how long that takes here.

Positions are counted on the actual data with the model's tokenizer: every prompt the trial answers
(each template, the template-selection items, the test set), the label tokens constrained choice adds
per item, and the training tokens of families that train. Seconds divide them by a throughput in
positions per second, measured for a few seconds on the actual model (a forward pass and a training
step) unless the caller states one. Classification counts the label search as it runs now: a shared
prompt prefix once per template, and at most `_WIDTH` x (the deepest label) trie positions per item
(the whole trie when that is smaller); measured on CLINC150 (150 labels) it ran about 11. Generated
answers (qa) count max_new_tokens positions at the prompt rate: one token per pass runs slower, so
those forecasts are low. The training rate is a full fine-tuning step; adapters train a little faster.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

HOUR_S = 3600.0
MANY_LABELS = 50


@dataclass(frozen=True)
class Throughput:
    forward: float
    """Positions per second of a forward pass (prompt scoring)."""
    train: float
    """Positions per second of a training step (forward and backward)."""
    source: str


@dataclass
class TrialForecast:
    name: str
    forward_positions: int = 0
    train_positions: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


def measure(lm, seconds: float = 1.0, length: int = 128) -> Throughput:
    """Positions/s of the model here: forward passes, then training steps, each for about `seconds`."""
    import torch

    ids = torch.randint(0, lm.tokenizer.vocab_size, (1, length), device=lm.device)

    def rate(step) -> float:
        step()  # warm-up
        done, began = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - began) < seconds or done == 0:
            step()
            done += length
        return done / elapsed

    with torch.inference_mode():
        forward = rate(lambda: lm.model(input_ids=ids, logits_to_keep=1))
    lm.model.train()
    train = rate(lambda: lm.model(input_ids=ids, labels=ids).loss.backward())
    lm.model.zero_grad(set_to_none=True)
    lm.model.eval()
    return Throughput(forward, train, f"measured for {2 * seconds:.0f} s on {lm.device.type}")


def _prompt_tokens(count, splits, template: str, shots: int) -> tuple[int, list[int]]:
    """(shared prefix, per-item own tokens) of a filled template, with `shots` fixed examples before it."""
    from baselines.templates import fill

    head = template.split("{input}")[0]
    shared = count(fill(head, "", splits.labels)) if "{labels}" in head else count(head.replace("{context}", ""))
    train = splits.train[: max(shots, 1)]
    shot_block = sum(count(fill(template, e.input, splits.labels)) + count(e.target) for e in train[:shots])
    own = [count(fill(template, e.input, splits.labels)) - shared for e in splits.test]
    return shared + shot_block, own


def trial_forecast(trial, splits, spec, encode, throughput: Throughput, eos: int | None = None) -> TrialForecast:
    """`encode(text) -> token ids`; settings read here are the families' own option names."""
    from baselines.label_search import _WIDTH, Trie
    from baselines.templates import builtin_templates

    s, out = trial.settings, TrialForecast(trial.name)
    count = lambda text: len(encode(text))  # noqa: E731
    templates = s.get("templates") or {s.get("template", "instruct"): builtin_templates(spec.task.type)[s.get("template", "instruct")]}
    shots = s.get("shots", 0) if s.get("selection", "random") == "random" else 0
    dev = s.get("select_on", 0) if len(templates) > 1 else 0
    if spec.task.type == "classification":
        label_ids = [encode(lab) + ([eos] if eos is not None else []) for lab in splits.labels]
        nodes = len(Trie.build(label_ids).token) - 1
        per_item = min(nodes, _WIDTH * max(map(len, label_ids)))
        if len(splits.labels) > MANY_LABELS:
            out.warnings.append(f"{len(splits.labels)} labels ({sum(map(len, label_ids)):,} label tokens, a trie of {nodes:,}): "
                                "a template that lists them makes every prompt long")
    else:
        per_item = s.get("max_new_tokens") or 32
    for text in templates.values():
        shared, own = _prompt_tokens(count, splits, text, shots)
        retrieved = s.get("k", 0) * (s.get("chunk_size") or 0)
        mean_own = sum(own) / max(len(own), 1) + retrieved
        items = len(splits.test) + dev
        out.forward_positions += (2 if dev else 1) * shared + round(items * (mean_own + per_item))
    if "epochs" in s:
        example = sum(count(e.input) + count(e.target) for e in splits.train[:200]) / max(min(len(splits.train), 200), 1)
        shared, _ = _prompt_tokens(count, splits, next(iter(templates.values())), 0)
        kept = len(splits.train) * (1 - s.get("validation_fraction", 0.0))
        out.train_positions = round(kept * s["epochs"] * min(example + shared, s.get("max_seq_len", 10**9)))
    out.seconds = out.forward_positions / throughput.forward + out.train_positions / throughput.train
    return out


def forecast_lines(trials, splits, spec, throughput: Throughput | None = None, device: str = "cpu") -> list[str]:
    """--dry-run lines: one per trial (positions, expected time on `device`), then the total and its warnings."""
    import torch

    from advisor.matrix import single_local
    from baselines.device import device_type
    from baselines.engine import LanguageModel

    if not single_local(spec):
        return ["forecast: only for a task with one local model so far"]
    if throughput is None and device_type(device) == "cuda" and not torch.cuda.is_available():
        return ["forecast: planned for a GPU this machine lacks, so its throughput cannot be measured here"]
    lm = LanguageModel.load(spec.model_entries()[0].model, device=device)
    throughput = throughput or measure(lm)
    encode = lambda text: lm.tokenizer(text, add_special_tokens=False).input_ids  # noqa: E731
    rows = [trial_forecast(t, splits, spec, encode, throughput, lm.tokenizer.eos_token_id) for t in trials]
    lines = [f"forecast ({throughput.source}: {throughput.forward:,.0f} positions/s forward, "
             f"{throughput.train:,.0f} training):"]
    for r in rows:
        train = f", training {r.train_positions:,}" if r.train_positions else ""
        lines.append(f"  {r.name:32} {r.forward_positions:>10,} positions{train}  ~{_duration(r.seconds)}")
        lines += [f"  warning: {r.name}: {w}" for w in r.warnings]
    total = sum(r.seconds for r in rows)
    lines.append(f"  expected total ~{_duration(total)}")
    if total > HOUR_S:
        lines.append(f"  warning: the whole run is expected to take over an hour (~{_duration(total)}); "
                     "fewer templates, shots or test items (data.test_limit) shorten it")
    return lines


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= HOUR_S else f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"
