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

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from contracts.records import Forecast

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
    longest_train: int = 0
    """Tokens of the longest training example (prompt + answer, at most max_seq_len): the memory estimate's length."""
    memory_mb: float | None = None
    """advisor.estimate's training memory (weights, adapters, gradients, optimizer, activations; not the runtime)."""


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


def _answering(trial) -> dict:
    """The settings that decide what a trial answers: a fine-tuned model under RAG answers through its RAG combination."""
    return trial.settings["rag"]["settings"] if trial.family == "finetune_rag" else trial.settings


def _loads(s: dict, splits, spec, count) -> list[tuple[int, float, int, bool]]:
    """Per template the trial answers: (shared prefix tokens, mean own tokens per item with retrieved context,
    items answered, whether the template is also scored on selection items)."""
    from baselines.templates import builtin_templates

    name = s.get("template", "instruct")  # rag keeps the template's text, fine-tuning its name
    templates = s.get("templates") or {name: name if "{input}" in name else builtin_templates(spec.task.type)[name]}
    shots = s.get("shots", 0) if s.get("selection", "random") == "random" else 0
    dev = s.get("select_on", 0) if len(templates) > 1 else 0
    # retrieval fills its context budget unless k chunks of a known size fill less
    retrieved = min(s["k"] * (s.get("chunk_size") or s["context_tokens"]), s["context_tokens"]) if "context_tokens" in s else 0
    loads = []
    for text in templates.values():
        shared, own = _prompt_tokens(count, splits, text, shots)
        loads.append((shared, sum(own) / max(len(own), 1) + retrieved, len(splits.test) + dev, bool(dev)))
    return loads


def trial_forecast(trial, splits, spec, encode, throughput: Throughput, eos: int | None = None) -> TrialForecast:
    """`encode(text) -> token ids`; settings read here are the families' own option names."""
    from baselines.label_search import _WIDTH, Trie

    s, out = trial.settings, TrialForecast(trial.name)
    count = lambda text: len(encode(text))  # noqa: E731
    if spec.task.type == "classification":
        label_ids = [encode(lab) + ([eos] if eos is not None else []) for lab in splits.labels]
        nodes = len(Trie.build(label_ids).token) - 1
        per_item = min(nodes, _WIDTH * max(map(len, label_ids)))
        if len(splits.labels) > MANY_LABELS:
            out.warnings.append(f"{len(splits.labels)} labels ({sum(map(len, label_ids)):,} label tokens, a trie of {nodes:,}): "
                                "a template that lists them makes every prompt long")
    else:
        per_item = _answering(trial).get("max_new_tokens") or 32
    for shared, mean_own, items, dev in _loads(_answering(trial), splits, spec, count):
        out.forward_positions += (2 if dev else 1) * shared + round(items * (mean_own + per_item))
    if "epochs" in s:
        example = sum(count(e.input) + count(e.target) for e in splits.train[:200]) / max(min(len(splits.train), 200), 1)
        shared, _ = _loads(s, splits, spec, count)[0][:2]
        kept = len(splits.train) * (1 - s.get("validation_fraction", 0.0))
        out.train_positions = round(kept * s["epochs"] * min(example + shared, s.get("max_seq_len", 10**9)))
        out.longest_train = min(max(count(e.input) + count(e.target) for e in splits.train) + shared, s.get("max_seq_len", 10**9))
    out.seconds = out.forward_positions / throughput.forward + out.train_positions / throughput.train
    return out


def forecast_lines(trials, splits, spec, throughput: Throughput | None = None, device: str = "cpu") -> list[str]:
    """--dry-run lines: one per trial (positions, expected time on `device`), then the total and its warnings; with
    several models (`models:`) a block per model: its trials and families, where it runs, and its own forecast."""
    from advisor.matrix import MODEL, single_local

    if single_local(spec):
        return _local_lines(trials, splits, spec, spec.model_entries()[0].model, throughput, device)
    lines = []
    for entry in spec.model_entries():
        mine = [t for t in trials if (t.settings.get(MODEL) or {}).get("name") == entry.label]
        families = ", ".join(dict.fromkeys(t.family for t in mine))
        if entry.kind == "endpoint":
            key = (f"; key from ${entry.api_key_env} ({'set' if os.environ.get(entry.api_key_env) else 'NOT set'} here)"
                   if entry.api_key_env else "")
            where, body = f"endpoint {entry.model} at {entry.base_url}{key}", _endpoint_lines(mine, splits, spec, entry)
        else:
            where, body = f"local {entry.model} on {device}", _local_lines(mine, splits, spec, entry.model, throughput, device)
        lines.append(f"model {entry.label}: {len(mine)} trial(s) ({families or 'none'}), {where}")
        lines += [f"  {line}" for line in body] if mine else []
    return lines


def _local_rows(trials, splits, spec, model: str, throughput: Throughput | None, device: str) -> tuple[Throughput, list[TrialForecast]] | str:
    """(the throughput, a forecast per trial), or why there is none."""
    import gc

    import torch

    from baselines.device import device_type, planned
    from baselines.engine import LanguageModel
    from baselines.models import resolve

    if throughput is None and device_type(device) == "cuda" and not torch.cuda.is_available():
        return "forecast: planned for a GPU this machine lacks, so its throughput cannot be measured here"
    lm = LanguageModel.load(model, device=device)
    throughput = throughput or measure(lm)
    encode = lambda text: lm.tokenizer(text, add_special_tokens=False).input_ids  # noqa: E731
    rows = [trial_forecast(t, splits, spec, encode, throughput, lm.tokenizer.eos_token_id) for t in trials]
    del lm
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # a real run measured in its driver process: leave the GPU to the trials
    config, hardware = Path(resolve(model)) / "config.json", planned(device)
    for t, r in zip(trials, rows):
        r.memory_mb = _memory_mb(config, t, r.longest_train, hardware) if r.longest_train else None
    return throughput, rows


def _memory_mb(config: Path, trial, seq_len: int, hardware) -> float | None:
    """The estimator's training memory for a trial's own settings at its longest example; None where it has no
    formula (families other than full, lora, qlora) or no config.json to read the model's shape from."""
    from advisor.estimate import estimate_for_settings

    try:
        return estimate_for_settings(config, trial.family, trial.settings, seq_len, hardware.type, hardware.precision)["estimated_total_mb"]
    except (ValueError, FileNotFoundError):
        return None


def _local_lines(trials, splits, spec, model: str, throughput: Throughput | None, device: str) -> list[str]:
    found = _local_rows(trials, splits, spec, model, throughput, device)
    return [found] if isinstance(found, str) else _rows_lines(*found)


def _rows_lines(throughput: Throughput, rows: list[TrialForecast]) -> list[str]:
    memory = ("; training memory: advisor estimate's terms at the longest train example, the runtime not counted"
              if any(r.memory_mb is not None for r in rows) else "")
    lines = [f"forecast ({throughput.source}: {throughput.forward:,.0f} positions/s forward, {throughput.train:,.0f} training{memory}):"]
    for r in rows:
        train = f", training {r.train_positions:,}" if r.train_positions else ""
        memory = f", training memory ~{r.memory_mb:,.0f} MB" if r.memory_mb is not None else ""
        lines.append(f"  {r.name:32} {r.forward_positions:>10,} positions{train}  ~{_duration(r.seconds)}{memory}")
        lines += [f"  warning: {r.name}: {w}" for w in r.warnings]
    total = sum(r.seconds for r in rows)
    lines.append(f"  expected total ~{_duration(total)}")
    if total > HOUR_S:
        lines.append(f"  warning: the whole run is expected to take over an hour (~{_duration(total)}); "
                     "fewer templates, shots or test items (data.test_limit) shorten it")
    return lines


def run_forecast(trials, splits, spec, device: str, throughput: Throughput | None = None
                 ) -> tuple[list[str], dict[str, Forecast], Throughput | None]:
    """What a real run forecasts before running `trials`: the lines --dry-run prints, each trial's Forecast record by
    id, and the throughput (measured here unless given: a run that forecasts again passes the one it measured)."""
    from advisor.matrix import single_local

    if not single_local(spec):
        return ["forecast: only for a task with one local model so far (the progress lines give no ETA)"], {}, None
    found = _local_rows(trials, splits, spec, spec.model_entries()[0].model, throughput, device)
    if isinstance(found, str):
        return [found], {}, None
    throughput, rows = found
    records = {t.id: Forecast(seconds=round(r.seconds, 1), forward_positions=r.forward_positions, train_positions=r.train_positions,
                              forward_per_s=round(throughput.forward, 1), train_per_s=round(throughput.train, 1),
                              measured=f"{throughput.source} at the run's start") for t, r in zip(trials, rows)}
    return _rows_lines(throughput, rows), records, throughput


def endpoint_requests(trial, splits, spec, count) -> tuple[int, int, int, int]:
    """(requests, prompt tokens, expected output tokens, output tokens if every reply runs to its limit) of an
    endpoint trial: one request per prompt, as `EndpointLM.answer` sends them; a reply is expected to be as long
    as a label (classification) or a train answer cut at the generation budget (qa, generation)."""
    from baselines.budget import generation_budget

    if spec.task.type == "classification":
        lengths = [count(label) for label in splits.labels]
        expected, cap = sum(lengths) / len(lengths), max(lengths) + 8
    else:
        answers = [count(e.target) for e in splits.train]
        cap = generation_budget(_answering(trial).get("max_new_tokens"), [e.target for e in splits.train], count).max_new_tokens
        expected = sum(min(n, cap) for n in answers) / max(len(answers), 1)
    loads = _loads(_answering(trial), splits, spec, count)
    requests = sum(items for _, _, items, _ in loads)
    prompt = round(sum(items * (shared + own) for shared, own, items, _ in loads))
    return requests, prompt, round(requests * expected), requests * cap


def _endpoint_lines(trials, splits, spec, entry) -> list[str]:
    """Requests and tokens counted on the data, priced when the entry has per-token prices; nothing is sent."""
    from baselines.endpoint import EndpointLM

    lm = EndpointLM(entry, Path(os.devnull), spec.model)  # for its tokenizer only: it sends and caches nothing here
    rows = [(t.name, *endpoint_requests(t, splits, spec, lm.count_tokens)) for t in trials]
    per_token = entry.input_usd_per_1k_tokens is not None or entry.output_usd_per_1k_tokens is not None

    def priced(prompt: int, output: int) -> float:
        return (prompt * (entry.input_usd_per_1k_tokens or 0.0) + output * (entry.output_usd_per_1k_tokens or 0.0)) / 1000

    lines = [f"forecast (tokens counted with the {lm.tokenizer_name} tokenizer; the server's chat template adds a few per request):"]
    for name, requests, prompt, output, cap in rows:
        cost = f"  ~{_usd(priced(prompt, output))}" if per_token else ""
        lines.append(f"  {name:32} {requests:>6,} requests  ~{prompt:,} prompt + ~{output:,} output tokens (at most {cap:,}){cost}")
    requests, prompt, output, cap = (sum(r[i] for r in rows) for i in range(1, 5))
    if per_token:
        price = (f"${entry.input_usd_per_1k_tokens or 0:g} / ${entry.output_usd_per_1k_tokens or 0:g} per 1k prompt / output tokens")
        cost = f"expected cost ~{_usd(priced(prompt, output))} at {price} (at most {_usd(priced(prompt, cap))})"
    elif entry.gpu_hour_usd is not None:
        cost = f"priced by the GPU hour (${entry.gpu_hour_usd:g}): its cost follows the throughput the run measures"
    else:
        cost = "no price set for this endpoint: cost not forecast"
    lines.append(f"  expected total {requests:,} requests, ~{prompt:,} prompt + ~{output:,} output tokens; {cost}")
    return lines


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= HOUR_S else f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _usd(amount: float) -> str:
    return f"${amount:,.2f}" if amount >= 1 else "$" + f"{amount:.6f}".rstrip("0").rstrip(".")
