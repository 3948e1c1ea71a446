"""What one trial runs, counted on the actual data the way the run builds it; advisor.forecast turns it into seconds.

- Prompts: the chat turns the model sees (shots as turns, as baselines.prompting builds them, with its own seeded
  draw of shots and template-selection items), rendered with the model's chat template and tokenized. Each
  `answer` call runs its prompts' shared prefix once, each prompt's own tokens, and for classification the label
  search (at most `_WIDTH` x the deepest label trie positions per item, the whole trie when smaller); generated
  answers pad each batch to its longest prompt (left padding) and run up to the generation budget in steps.
- The latency pass: `LATENCY_QUERIES` test items (and one warm-up) answered one at a time.
- Training: the trial's train split (a learning-curve point's nested subset), less the validation carve-out,
  tokenized by the trainer's own `tokenize`, padded to each micro-batch's longest in the trainer's own shuffled
  order, every epoch (early stopping may end it sooner); the validation loss over the carve-out every epoch.
- Forgetting: lm-eval's requests for the first `limit` items of each local benchmark (context + " " + choice per
  choice; requests alike but for their last token run once; batches of 8 longest first, padded), on the adapted
  model of each weight-changing trial that runs on its full train and test sets. Benchmarks lm-eval fetches
  itself are not counted (a warning says so).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from evaluators.meters import LATENCY_QUERIES

LONG_LABEL_LIST = 100
"""Label-list tokens from which a template that repeats the list per item gets a warning."""
FORGETTING_BATCH = 8
"""evaluators.forgetting scores the benchmarks in batches of 8."""


@dataclass(frozen=True)
class Tokens:
    """The model's text -> token ids and chat turns -> prompt text, as the run uses them."""

    encode: Callable[[str], list[int]]
    render: Callable[[list[dict[str, str]]], str]
    eos: int | None = None

    @classmethod
    def of(cls, lm) -> Tokens:
        """From a loaded baselines.engine.LanguageModel."""
        return cls(lambda text: lm.tokenizer(text, add_special_tokens=False).input_ids, lm.render, lm.tokenizer.eos_token_id)


@dataclass
class Work:
    answer: int = 0
    """Positions answering runs with one logit kept: prompts, label tries, the first batch's warm-up."""
    latency: int = 0
    """The same for the batch-1 latency pass."""
    passes: int = 0
    """Forward passes answering runs (each costs a fixed time besides its positions): label-search rounds, prompt
    passes, generation steps at batch 1."""
    decode_steps: int = 0
    """Generation steps of a batch (one new token for each of its rows)."""
    train: int = 0
    """Padded positions through forward and backward."""
    steps: int = 0
    """Optimizer steps."""
    validation: int = 0
    """Padded positions of the validation loss (every position's logits)."""
    forgetting: int = 0
    """lm-eval positions on the adapted model (every position's logits)."""
    longest_train: int = 0
    warnings: list[str] = field(default_factory=list)


def answering(trial) -> dict:
    """The settings that decide what a trial answers: a fine-tuned model under RAG answers through its RAG combination."""
    return trial.settings["rag"]["settings"] if trial.family == "finetune_rag" else trial.settings


def prompt_sets(s: dict, splits, spec) -> list[tuple[str, list, list, list]]:
    """Per template the trial answers: (its text, the shots before each item, the dev items that pick the template
    (none with one template), the test items)."""
    from baselines.prompting.family import held_out
    from baselines.templates import builtin_templates

    name = s.get("template", "instruct")  # rag keeps the template's text, fine-tuning its name
    templates = s.get("templates") or {name: name if "{input}" in name else builtin_templates(spec.task.type)[name]}
    if "shots" in s:
        dev, pool, fixed = held_out(splits, s, spec.seed)
        shots = fixed if fixed is not None else pool[: s["shots"]]  # drawn per input: k examples of the pool alike
    else:
        dev, shots = [], []
    dev = dev if len(templates) > 1 else []
    return [(text, shots, dev, list(splits.test)) for text in templates.values()]


def answer_batch(s: dict) -> int:
    """Prompting answers in its own batch size; the others in the device's (8 on the CPU)."""
    from baselines.device import CPU_ANSWER_BATCH

    return s["batch_size"] if "shots" in s else CPU_ANSWER_BATCH


def retrieved_tokens(s: dict, spec, tokens: Tokens) -> int:
    """Context tokens a RAG prompt carries: k chunks of the corpus chunked as the trial chunks it, at their mean
    length in the model's tokens (each "[doc] text" and a blank line, as baselines.rag builds the context), at most
    `context_tokens`; 0 for a prompt without retrieval."""
    if "context_tokens" not in s:
        return 0
    from baselines.embedding import Embedder
    from baselines.rag.chunking import ChunkParams, Tools, chunkers
    from baselines.rag.corpus import load_corpus
    from baselines.rag.family import corpus_path

    embedder = Embedder(s["embedder"])  # its tokenizer sizes the chunks; a semantic chunker also embeds
    corpus = load_corpus(corpus_path(spec), s["max_documents"], spec.seed)
    chunks = chunkers.get(s["chunker"])(ChunkParams(**s["chunk_params"]), Tools(embedder.token_spans, embedder.embed)).split_all(corpus.documents)
    mean = sum(len(tokens.encode(f"[{c.doc_id}] {c.text}\n\n")) for c in chunks) / max(len(chunks), 1)
    return round(min(s["k"] * mean, s["context_tokens"]))


def prompts(tokens: Tokens, text: str, shots: list, items: list, labels: list[str], extra: int = 0) -> list[int]:
    """Token counts of the rendered prompts of `items` (+ `extra` retrieved tokens each)."""
    return [len(tokens.encode(tokens.render(turns))) + extra for turns in _turns(text, shots, items, labels)]


def _turns(text: str, shots: list, items: list, labels: list[str]) -> list[list[dict[str, str]]]:
    from baselines.prompting.family import prompt_turns

    return [prompt_turns(text, ex, shots, labels) for ex in items]


def _mean_test_prompt(tokens: Tokens, sets: list, labels: list[str], extra: int) -> float:
    """A latency query's prompt tokens: the template it runs is chosen only on the dev items, so the mean over templates."""
    return sum(sum(prompts(tokens, text, shots, test, labels, extra)) / max(len(test), 1) for text, shots, _, test in sets) / len(sets)


def _call(ids_lengths: list[int], shared: int, per_item: int) -> int:
    """Positions of one label-search call: the shared prefix once, then each prompt's own tokens and its label search."""
    return shared + sum(n - shared + per_item for n in ids_lengths)


def classification_work(tokens: Tokens, trial, splits, spec, work: Work, latency_items: int) -> None:
    """Label-search positions of every answering call, the warm-up batch and the latency queries."""
    from baselines.engine import _WARM_TOKENS
    from baselines.label_search import _FILL, _WIDTH, Trie, groups, shared_prefix

    label_ids = [tokens.encode(lab) + ([tokens.eos] if tokens.eos is not None else []) for lab in splits.labels]
    nodes = len(Trie.build(label_ids).token) - 1
    per_item = min(nodes, _WIDTH * max(map(len, label_ids)))
    s = answering(trial)
    extra, size = retrieved_tokens(s, spec, tokens), answer_batch(s)
    width = max(_WIDTH, math.ceil(_FILL / size))  # nodes per prompt per round while the whole group searches
    rounds = 1 + math.ceil(per_item / width)  # a group's prompt pass, then rounds of `width` nodes per prompt
    sets = prompt_sets(s, splits, spec)
    for text, shots, dev, test in sets:
        for items in (dev, test):
            if items:
                encoded = [tokens.encode(tokens.render(turns)) + [0] * extra for turns in _turns(text, shots, items, splits.labels)]
                shared = shared_prefix(encoded) if not extra else 0
                order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
                work.answer += _call([len(e) for e in encoded], shared, per_item)
                work.passes += 1 + rounds * len(groups(order, encoded, shared, size))  # the shared prefix's pass first
    one = prompts(tokens, sets[0][0], sets[0][1], splits.test[:1], splits.labels, extra)
    work.answer += min(one[0], _WARM_TOKENS) * min(size, len(splits.test))  # the model's warm-up batch
    work.latency = round(latency_items * (_mean_test_prompt(tokens, sets, splits.labels, extra) + per_item))
    work.passes += 1 + latency_items * (1 + rounds)
    names = {text: name for name, text in (s.get("templates") or {}).items()}
    late = [names.get(text, "rag") for text, *_ in sets if "{labels}" in text and text.index("{labels}") > text.index("{input}")]
    listed = len(tokens.encode(", ".join(splits.labels)))
    if late and listed >= LONG_LABEL_LIST:
        work.warnings.append(f"template(s) {', '.join(late)} list the {len(splits.labels)} labels ({listed:,} tokens) after "
                             "the input, so the list runs again for every item; a template with {labels} before {input} "
                             "runs it once per call")


def generation_work(tokens: Tokens, trial, splits, spec, work: Work, latency_items: int) -> None:
    """Prompt positions (left-padded batches, longest first) and generation steps (up to the budget, as baselines.budget
    sets it from the train answers when task.yaml does not)."""
    from baselines.budget import generation_budget
    from baselines.engine import _WARM_TOKENS

    s = answering(trial)
    budget = generation_budget(s.get("max_new_tokens"), [e.target for e in splits.train], lambda t: len(tokens.encode(t))).max_new_tokens
    size, extra = answer_batch(s), retrieved_tokens(s, spec, tokens)
    sets = prompt_sets(s, splits, spec)
    for text, shots, dev, test in sets:
        for items in (dev, test):
            lengths = sorted(prompts(tokens, text, shots, items, splits.labels, extra), reverse=True)
            batches = [lengths[i : i + size] for i in range(0, len(lengths), size)]
            work.answer += sum(len(b) * b[0] for b in batches)
            work.passes += len(batches)
            work.decode_steps += len(batches) * budget  # steps until every row ends: a small model often runs to the budget
    first = sorted(prompts(tokens, sets[0][0], sets[0][1], splits.test, splits.labels, extra), reverse=True)[:size]
    work.answer += len(first) * min(first[0], _WARM_TOKENS) if first else 0  # the model's warm-up batch
    work.latency = round(latency_items * _mean_test_prompt(tokens, sets, splits.labels, extra))
    work.passes += 1 + latency_items * (1 + budget)  # the warm-up batch; each latency query: its prompt, then one token a pass


def training_work(lm, settings: dict, splits, spec, work: Work) -> None:
    """The trainer's own examples and batches (baselines.finetune): padded positions of every epoch and the
    validation loss; `lm` the loaded baselines.engine.LanguageModel (its tokenizer and chat template)."""
    from baselines.finetune.data import template_text, tokenize, validation_split
    from baselines.finetune.train import epoch_batches

    s, text = settings, template_text(spec.task.type, settings["template"])
    train, val, _ = validation_split(splits.train, splits.validation, s["validation_fraction"], spec.seed)
    lengths, val_lengths = ([len(tokenize(lm, text, ex, splits.labels, s["max_seq_len"]).input_ids) for ex in exs] for exs in (train, val))
    for epoch in range(1, s["epochs"] + 1):
        micro = epoch_batches(len(lengths), s["batch_size"], spec.seed, epoch)
        work.train += sum(len(b) * max(lengths[i] for i in b) for b in micro)
        work.steps += math.ceil(len(micro) / s["grad_accum"])
    batches = [val_lengths[i : i + s["batch_size"]] for i in range(0, len(val_lengths), s["batch_size"])]
    work.validation = s["epochs"] * sum(len(b) * max(b) for b in batches)
    work.longest_train = max(lengths, default=0)


def forgetting_positions(tokens: Tokens, spec) -> tuple[int, list[str]]:
    """(lm-eval positions of one model's forgetting benchmarks, the benchmarks not counted)."""
    from evaluators.general_benchmarks import benchmarks, data_dir

    source = data_dir(spec.resolve(spec.forgetting.data_dir) if spec.forgetting.data_dir else None)
    requests, uncounted = {}, []
    for name in spec.forgetting.benchmarks:
        path = source / name / "test.jsonl" if source else None
        if name not in benchmarks or path is None or not path.is_file():
            uncounted.append(name)
            continue
        rows = [benchmarks.get(name)(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for row in rows[: spec.forgetting.limit]:
            context = tokens.encode(row["query"])
            for choice in row["choices"]:
                whole = tokens.encode(row["query"] + " " + choice)
                cont = whole[len(context):] or whole[-1:]
                requests[tuple(context + cont[:-1])] = len(context) + len(cont) - 1  # the last token is never input
    lengths = sorted(requests.values(), reverse=True)  # lm-eval batches every benchmark's requests together
    return sum(len(lengths[i : i + FORGETTING_BATCH]) * lengths[i] for i in range(0, len(lengths), FORGETTING_BATCH)), uncounted


def trial_work(lm, trial, splits, spec, hardware, forgetting: int) -> Work:
    """Everything `advisor.execute.measure_trial` runs for `trial` but loading the model, with `lm` (a loaded
    baselines.engine.LanguageModel); `forgetting`: one model's lm-eval positions (forgetting_positions), run for a
    weight-changing trial on its full sets."""
    from advisor.budgeted import scored_on
    from advisor.execute import curve_point
    from baselines import strategies

    work = Work()
    full, splits = scored_on(trial, spec, splits, hardware)  # a budgeted rung: its test subset, no latency pass
    settings, train_splits = curve_point(trial, spec, splits)  # a learning-curve point: its train subset
    latency_items = min(LATENCY_QUERIES, len(splits.test)) + 1 if full is trial else 0  # one untimed warm-up query first
    run = classification_work if spec.task.type == "classification" else generation_work
    run(Tokens.of(lm), trial, train_splits, spec, work, latency_items)
    if "epochs" in settings:
        training_work(lm, settings, train_splits, spec, work)
    if strategies.get(trial.family).changes_weights and train_splits is splits and full is trial and trial.family != "finetune_rag":
        work.forgetting = forgetting  # finetune_rag: its fine-tuned trial's figures (same weights)
    return work
