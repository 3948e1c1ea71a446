"""Before running: per trial, the work the model will do and about how long that takes here.

The work is counted on the actual data the way the run builds it (advisor.forecast_counts: rendered prompts,
template-selection items, the batch-1 latency pass, the trainer's padded batches and validation loss, the
forgetting benchmarks' lm-eval requests, retrieved chunks). Seconds divide it by rates measured for about a
second each (advisor.forecast_rates) unless the caller states them: on the task's model and on each fine-tuning
method's own trainable model, positions/s of a forward pass keeping one logit (answering) and every logit
(validation loss, lm-eval), the fixed seconds of a forward pass, positions/s of training, seconds of an optimizer
step, of a generation step of 8 and of loading the model (each trial loads it). Rates measured at one moment: on
a machine whose load changes during the run, trials run faster or slower than forecast.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from advisor.forecast_counts import Tokens, Work, answering, forgetting_positions, prompt_sets, prompts, trial_work
from advisor.forecast_rates import LENGTH, Rates, method_key, method_rates, passes, step_s, training_rate
from contracts.records import Forecast

HOUR_S = 3600.0


@dataclass(frozen=True)
class Throughput:
    forward: float
    """Positions per second of the task's model, a forward pass keeping the last logit (prompts, label search)."""
    train: float
    """Positions per second of a full training step of it (forward and backward): the rate of a method not measured."""
    source: str
    scoring: float | None = None
    """Positions per second of a forward pass keeping every logit (validation loss, lm-eval); None: `forward`."""
    pass_s: float = 0.0
    """Seconds of a forward pass of one token (advisor.forecast_rates.Rates.pass_s)."""
    decode_step_s: float | None = None
    """Seconds of one generation step of a batch of 8; None: 8 positions at `forward`."""
    load_s: float = 0.0
    """Seconds to load the model."""
    methods: dict[str, Rates] = field(default_factory=dict)
    """Rates of each fine-tuning method's own model (advisor.forecast_rates.method_key -> Rates)."""

    def rates(self, method: str | None = None) -> Rates:
        """A fine-tuning method's own measured rates, else the task's model's."""
        base = Rates(self.forward, self.scoring or self.forward, self.pass_s, self.train, load_s=self.load_s)
        return self.methods.get(method, base) if method else base

    def seconds(self, work: Work, method: str | None = None) -> tuple[float, float]:
        """(seconds of a trial's load and work but forgetting, seconds of its forgetting benchmarks); `method`: whose
        rates (an adapted model's generation step is taken as slower as its forward pass is)."""
        r = self.rates(method)
        per_position = 1 / r.forward - r.pass_s / LENGTH  # the measured pass of LENGTH tokens less its fixed share
        step = self.decode_step_s if self.decode_step_s is not None else 8 / self.forward
        own = (r.load_s + (work.answer + work.latency) * per_position + work.passes * r.pass_s
               + work.decode_steps * step * self.forward / r.forward + work.train / r.train + work.steps * r.optimizer_s
               + work.validation / r.scoring)
        return own, work.forgetting / r.scoring


@dataclass
class TrialForecast:
    name: str
    work: Work = field(default_factory=Work)
    seconds: float = 0.0
    """The whole trial: loading the model, its work and its forgetting benchmarks."""
    forgetting_s: float = 0.0
    memory_mb: float | None = None
    """advisor.estimate's training memory (weights, adapters, gradients, optimizer, activations; not the runtime)."""


def measure(lm, seconds: float = 1.0, generates: bool = False,
            methods: dict[str, Callable[[], Rates]] | None = None) -> Throughput:
    """Rates of the model here, each measured for about `seconds`: forward passes (one logit, every logit), a
    generation step at batch 8 when the task generates, training steps; then each fine-tuning method's `methods`."""
    import torch

    ids = torch.randint(0, lm.tokenizer.vocab_size, (1, LENGTH), device=lm.device)
    forward, scoring, one_token_s = passes(lm.model, ids, seconds)
    decode_s = step_s(lm.model, ids, 8, seconds) if generates else None
    train = training_rate(lm.model, ids, seconds)
    lm.model.eval()
    measured = {key: build() for key, build in (methods or {}).items()}
    on = f"the model and {', '.join(f'the {key} trainable model' for key in measured)}" if measured else "the model"
    return Throughput(forward, train, f"measured on {lm.device.type}, about {seconds:g} s a rate, on {on}", scoring, one_token_s,
                      decode_s, methods=measured)


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


def _local_rows(trials, splits, spec, model: str, throughput: Throughput | None, device: str
                ) -> tuple[Throughput, list[TrialForecast], TrialForecast | None] | str:
    """(the throughput, a forecast per trial, the base model's forgetting benchmarks when a trial needs them), or why
    there is none."""
    import gc

    import torch

    from baselines.device import device_type, planned
    from baselines.engine import LanguageModel
    from baselines.models import resolve

    if throughput is None and device_type(device) == "cuda" and not torch.cuda.is_available():
        return "forecast: planned for a GPU this machine lacks, so its throughput cannot be measured here"
    began = time.perf_counter()
    lm = LanguageModel.load(model, device=device)
    loaded = time.perf_counter() - began
    methods = {method_key(t): functools.partial(method_rates, t, spec, splits, device) for t in trials if method_key(t)}
    throughput = throughput or replace(measure(lm, generates=spec.task.type != "classification", methods=methods), load_s=loaded)
    hardware = planned(device)
    forgetting, uncounted = forgetting_positions(Tokens.of(lm), spec) if spec.forgetting and spec.forgetting.benchmarks else (0, [])
    rows = [TrialForecast(t.name, trial_work(lm, t, splits, spec, hardware, forgetting)) for t in trials]
    del lm
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # a real run measured in its driver process: leave the GPU to the trials
    base = TrialForecast("base model, forgetting benchmarks (once)", Work(forgetting=forgetting)) if any(r.work.forgetting for r in rows) else None
    config = Path(resolve(model)) / "config.json"
    for t, r in zip(trials, rows):
        own, r.forgetting_s = throughput.seconds(r.work, method_key(t))
        r.seconds = own + r.forgetting_s
        r.memory_mb = _memory_mb(config, t, r.work.longest_train, hardware) if r.work.longest_train else None
        if uncounted and r.work.forgetting:
            r.work.warnings.append(f"forgetting benchmark(s) lm-eval fetches itself not counted: {', '.join(uncounted)}")
    if base is not None:
        base.seconds = base.forgetting_s = throughput.load_s + throughput.seconds(base.work)[1]
    return throughput, rows, base


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


def _rows_lines(throughput: Throughput, rows: list[TrialForecast], base: TrialForecast | None) -> list[str]:
    memory = ("; training memory: advisor estimate's terms at the longest train example, the runtime not counted"
              if any(r.memory_mb is not None for r in rows) else "")
    rates = [f"{throughput.forward:,.0f} positions/s forward", f"{throughput.scoring or throughput.forward:,.0f} with every logit",
             f"{throughput.train:,.0f} training", f"{throughput.pass_s:.2f} s a one-token pass"]
    rates += [f"{throughput.decode_step_s:.2f} s a generation step of 8"] if throughput.decode_step_s else []
    lines = [f"forecast ({throughput.source}: {', '.join(rates)}; model load {throughput.load_s:.0f} s per trial{memory}):"]
    lines += [f"  rates of the {key} trainable model: {r.forward:,.0f} positions/s forward, {r.scoring:,.0f} with every logit, "
              f"{r.pass_s:.2f} s a one-token pass, {r.train:,.0f} training, {r.optimizer_s:.2f} s an optimizer step, load and build {r.load_s:.0f} s" for key, r in throughput.methods.items()]
    for r in rows:
        w = r.work
        parts = [f"{w.answer:,} positions + {w.latency:,} latency"] + ([f"{w.decode_steps:,} generation steps"] if w.decode_steps else [])
        parts += [f"training {w.train:,} + {w.validation:,} validation"] if w.train else []
        parts += [f"forgetting {w.forgetting:,} (~{_duration(r.forgetting_s)})"] if w.forgetting else []
        memory = f", training memory ~{r.memory_mb:,.0f} MB" if r.memory_mb is not None else ""
        lines.append(f"  {r.name:32} {', '.join(parts)}  ~{_duration(r.seconds)}{memory}")
        lines += [f"  warning: {r.name}: {x}" for x in w.warnings]
    if base is not None:
        lines.append(f"  {base.name}: {base.work.forgetting:,} positions  ~{_duration(base.seconds)} (none when the run folder holds them)")
    total = sum(r.seconds for r in rows) + (base.seconds if base else 0.0)
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
    throughput, rows, base = found
    records = {t.id: _record(throughput, method_key(t), r) for t, r in zip(trials, rows)}
    return _rows_lines(throughput, rows, base), records, throughput


def _record(throughput: Throughput, method: str | None, r: TrialForecast) -> Forecast:
    rates, own = throughput.rates(method), method in throughput.methods
    return Forecast(seconds=round(r.seconds, 1), forward_positions=r.work.answer + r.work.latency, train_positions=r.work.train,
                    forgetting_s=round(r.forgetting_s, 1), load_s=round(rates.load_s, 1), forward_per_s=round(rates.forward, 1),
                    train_per_s=round(rates.train, 1), measured=f"{throughput.source} at the run's start"
                    + (f" (these: the {method} trainable model's)" if own else ""))


def endpoint_requests(trial, splits, spec, tokens: Tokens) -> tuple[int, int, int, int]:
    """(requests, prompt tokens, expected output tokens, output tokens if every reply runs to its limit) of an
    endpoint trial: one request per prompt, as `EndpointLM.answer` sends them; a reply is expected to be as long
    as a label (classification) or a train answer cut at the generation budget (qa, generation)."""
    from advisor.forecast_counts import retrieved_tokens
    from baselines.budget import generation_budget

    count = lambda text: len(tokens.encode(text))  # noqa: E731
    if spec.task.type == "classification":
        lengths = [count(label) for label in splits.labels]
        expected, cap = sum(lengths) / len(lengths), max(lengths) + 8
    else:
        answers = [count(e.target) for e in splits.train]
        cap = generation_budget(answering(trial).get("max_new_tokens"), [e.target for e in splits.train], count).max_new_tokens
        expected = sum(min(n, cap) for n in answers) / max(len(answers), 1)
    s = answering(trial)
    lengths = [n for text, shots, dev, test in prompt_sets(s, splits, spec)
               for n in prompts(tokens, text, shots, dev + test, splits.labels, retrieved_tokens(s, spec, tokens))]
    return len(lengths), sum(lengths), round(len(lengths) * expected), len(lengths) * cap


def _endpoint_lines(trials, splits, spec, entry) -> list[str]:
    """Requests and tokens counted on the data, priced when the entry has per-token prices; nothing is sent."""
    from baselines.endpoint import EndpointLM

    lm = EndpointLM(entry, Path(os.devnull), spec.model)  # for its tokenizer only: it sends and caches nothing here
    tokens = Tokens(lambda text: lm.tokenizer(text, add_special_tokens=False).input_ids, lambda turns: "\n".join(m["content"] for m in turns))
    rows = [(t.name, *endpoint_requests(t, splits, spec, tokens)) for t in trials]
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
