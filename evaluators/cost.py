"""Cost model: measured times and tokens priced with the spec's `pricing`.

- one-time: the trial's setup time (training, index build, template selection) x the hourly price of
  the hardware it ran on (a GPU: the spec's `pricing.gpu_hour_usd` when it sets one, else the GPU
  table's price for the detected card when the table knows it, else the default); setup another trial did for it counts too (`reused_setup_s`: the training
  under a fine-tuning + retrieval trial);
- serving per 1,000 queries: at per-token API prices when the spec gives them (prompt tokens include
  few-shot examples and retrieved context), otherwise 1,000 x the measured seconds per query x the
  hourly price;
- monthly: per-1,000 cost x constraints.monthly_queries / 1,000;
- break-even: the query volume at which a trial's extra one-time cost is paid back by its cheaper
  queries, against the best trial that trains nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from contracts.gpus import GPUS, match_gpu


@dataclass(frozen=True)
class Cost:
    one_time_usd: float
    per_1k_queries_usd: float
    prompt_tokens_per_1k_queries: float
    monthly_usd: float | None
    basis: str

    def as_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def hourly_price(resources: dict, pricing) -> tuple[float, str]:
    """(USD per hour, the hardware it prices) for the machine a trial ran on; records hold the device type. An
    endpoint's trial is priced by the endpoint's own GPU hour (the pricing its model entry gives)."""
    if resources.get("endpoint"):
        return pricing.gpu_hour_usd, f"the GPU serving endpoint {resources['endpoint']}"
    if resources.get("device") != "cuda":
        return pricing.cpu_hour_usd, "CPU"
    card = match_gpu(resources.get("gpu"), resources.get("gpu_memory_gb"))
    if card and "gpu_hour_usd" not in pricing.model_fields_set:
        return GPUS[card].usd_per_hour, f"GPU ({card}, table price)"
    return pricing.gpu_hour_usd, "GPU"


def setup_seconds(resources: dict) -> float:
    """The trial's one-time work, reused work included at its original time: training another trial did
    (`reused_setup_s`), or this trial's own finished training reloaded from its checkpoint (`training_reused`,
    charged its original `train_s`), so a re-run never prices its training at zero."""
    own_training = resources.get("train_s", 0.0) if resources.get("training_reused") else 0.0
    return resources.get("prepare_s", 0.0) + resources.get("reused_setup_s", 0.0) + own_training


def trial_cost(resources: dict, pricing, monthly_queries: int | None) -> Cost:
    hourly, hardware = hourly_price(resources, pricing)
    one_time = setup_seconds(resources) / 3600 * hourly
    prompt_1k = 1000 * resources.get("prompt_tokens_per_query", 0.0)
    n = max(resources.get("n_predictions", 0), 1)
    output_1k = 1000 * resources.get("output_tokens", 0) / n
    if pricing.input_usd_per_1k_tokens is not None:
        per_1k = prompt_1k / 1000 * pricing.input_usd_per_1k_tokens + output_1k / 1000 * (pricing.output_usd_per_1k_tokens or 0.0)
        if resources.get("endpoint"):  # a hosted endpoint's setup is requests: the tokens beyond the answers (template selection)
            setup_in = resources.get("all_prompt_tokens", 0) - resources.get("prompt_tokens", 0)
            setup_out = resources.get("all_output_tokens", 0) - resources.get("output_tokens", 0)
            one_time = setup_in / 1000 * pricing.input_usd_per_1k_tokens + setup_out / 1000 * (pricing.output_usd_per_1k_tokens or 0.0)
        basis = "per-token prices from the spec"
    else:
        seconds_per_query = 1 / resources["examples_per_s"] if resources.get("examples_per_s") else 0.0
        per_1k = 1000 * seconds_per_query / 3600 * hourly
        basis = f"measured throughput x {hardware} ${hourly}/hour"
    monthly = per_1k * monthly_queries / 1000 if monthly_queries is not None else None
    return Cost(one_time, per_1k, prompt_1k, monthly, basis)


def break_even_queries(trial: Cost, reference: Cost) -> float | None:
    """Queries after which `trial` (more one-time cost, cheaper queries) costs less in total than `reference`."""
    extra = trial.one_time_usd - reference.one_time_usd
    saving = (reference.per_1k_queries_usd - trial.per_1k_queries_usd) / 1000
    if extra <= 0 or saving <= 0:
        return None
    return extra / saving
