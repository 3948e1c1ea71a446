"""Answer through an OpenAI-compatible chat completions endpoint (hosted APIs, vLLM, TGI, llama.cpp, Ollama,
`transformers serve`), behind the same `baselines.answer.answer` call as the local model, so prompting and
rag run unchanged on it.

- classification: by the first answer token's log-probabilities where the endpoint returns them, else by
  the reply mapped onto the label set (exact, then normalised); an unmappable reply stays as it is (so it
  scores wrong) and is counted;
- qa / generation: the greedy reply (temperature 0);
- retries: the openai client's own retries are off (`max_retries=0`): this module retries 429, 5xx,
  timeouts and dropped connections itself, with exponential backoff and jitter, waiting at least what
  Retry-After asks, so it can count the retries and fail the trial with a message that names the endpoint
  and the last error, never the key;
- cache: every reply is written to disk (keyed by the endpoint, model and request) before it is used, so a
  resumed run never sends a request twice.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from contracts.io import content_hash, read_json, write_json
from contracts.records import Example, Prediction
from contracts.spec import EndpointModel

RETRY_STATUSES = {408, 409, 429} | set(range(500, 600))
BACKOFF_S, BACKOFF_CAP_S, RETRY_AFTER_CAP_S = 0.5, 30.0, 120.0


class EndpointError(RuntimeError):
    """A request that failed for good: the trial is stored as failed with this message, the run goes on."""


def normalise(text: str) -> str:
    """Lower case, punctuation and surrounding quotes dropped, runs of whitespace made one space."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def map_to_label(reply: str, labels: list[str]) -> str | None:
    """The label the reply names: exactly, else after normalising both; None when it names none."""
    stripped = reply.strip()
    if stripped in labels:
        return stripped
    found = [label for label in labels if normalise(label) == normalise(stripped)]
    return found[0] if len(found) == 1 else None


def label_logprobs(top: dict[str, float], labels: list[str]) -> dict[str, float]:
    """Each label's score from the first answer token's top log-probabilities: the best token that begins
    the label (after normalising); labels no listed token begins are left out."""
    scores: dict[str, float] = {}
    for token, logprob in top.items():
        piece = normalise(token)
        for label in labels:
            if piece and normalise(label).startswith(piece) and logprob > scores.get(label, float("-inf")):
                scores[label] = logprob
    return scores


def retry_after(exc: Exception) -> float | None:
    """Seconds a 429/503 reply asks to wait (Retry-After, or retry-after-ms), capped."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return min(float(headers[name]) * scale, RETRY_AFTER_CAP_S)
        except (KeyError, TypeError, ValueError):
            continue
    return None


def backoff_s(attempt: int, asked: float | None) -> float:
    """Equal-jitter exponential backoff (half fixed, half random), never shorter than Retry-After."""
    step = min(BACKOFF_CAP_S, BACKOFF_S * 2 ** attempt)
    return max(step / 2 + random.uniform(0, step / 2), asked or 0.0)


class ResponseCache:
    """One JSON file per reply, written atomically under the run folder."""

    def __init__(self, root: Path):
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        return read_json(self._path(key))

    def put(self, key: str, reply: dict) -> None:
        write_json(self._path(key), reply)


class EndpointLM:
    """An endpoint in the model slot of a strategy's Context (`Context.model`)."""

    def __init__(self, entry: EndpointModel, cache_dir: Path, fallback_tokenizer: str):
        self.entry = entry
        self.cache = ResponseCache(cache_dir)
        self._fallback_tokenizer = fallback_tokenizer
        self._client = None
        self._tokenizer = None
        self._lock = threading.Lock()
        self._gave_up = threading.Event()
        """Set when a request failed for good: the requests still queued are not sent (the trial has failed)."""
        self.stats: Counter = Counter()
        self.throughput: list[tuple[int, float]] = []
        """(requests sent, wall seconds) of each answer() call that sent any: what examples/s is measured on."""

    @property
    def _key(self) -> str | None:
        return os.environ.get(self.entry.api_key_env) if self.entry.api_key_env else None

    @property
    def client(self):
        if self._client is None:
            import openai

            if self.entry.api_key_env and not self._key:
                raise EndpointError(f"endpoint '{self.entry.label}': the environment variable {self.entry.api_key_env} "
                                    "that holds its key is not set")
            self._client = openai.OpenAI(base_url=self.entry.base_url, api_key=self._key or "none", max_retries=0,
                                         timeout=self.entry.timeout_s)
        return self._client

    @property
    def tokenizer(self):
        """For budgeting retrieved context: the entry's tokenizer, the served folder, or the local model's."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            from baselines.models import resolve

            self._tokenizer = AutoTokenizer.from_pretrained(resolve(self.tokenizer_name))
        return self._tokenizer

    @property
    def tokenizer_name(self) -> str:
        return self.entry.tokenizer or (self.entry.model if Path(self.entry.model).is_dir() else self._fallback_tokenizer)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False).input_ids)

    def _scrub(self, text: str) -> str:
        key = self._key
        return text.replace(key, "[key]") if key else text

    def _describe(self, exc: Exception) -> str:
        status = getattr(exc, "status_code", None)
        what = f"HTTP {status}" if status else type(exc).__name__
        message = str(getattr(exc, "message", "") or exc)[:300]
        return self._scrub(f"{what}: {message}")

    def _count(self, what: str, n: int = 1) -> None:
        with self._lock:
            self.stats[what] += n

    def send(self, request: dict[str, Any]) -> dict[str, Any]:
        """The reply to one chat completions request: from the cache, else sent (with retries) and cached."""
        import openai

        key = content_hash({"base_url": self.entry.base_url.rstrip("/"), "model": self.entry.model, "request": request})
        if (hit := self.cache.get(key)) is not None:
            self._count("cache_hits")
            return {**hit, "cached": True}
        last = ""
        for attempt in range(self.entry.max_retries + 1):
            if self._gave_up.is_set():
                raise EndpointError(f"endpoint '{self.entry.label}': not sent, another request of this trial failed")
            began = time.perf_counter()
            try:
                response = self.client.chat.completions.create(model=self.entry.model, **request)
            except (openai.APIStatusError, openai.APITimeoutError, openai.APIConnectionError) as exc:
                status = getattr(exc, "status_code", None)
                last = self._describe(exc)
                if status is not None and status not in RETRY_STATUSES:
                    self._gave_up.set()
                    raise EndpointError(f"endpoint '{self.entry.label}' ({self.entry.base_url}) refused a request: {last}") from None
                if attempt < self.entry.max_retries:
                    self._count("retries")
                    time.sleep(backoff_s(attempt, retry_after(exc)))
                continue
            reply = self._parse(response, time.perf_counter() - began)
            self.cache.put(key, reply)
            self._count("requests_sent")
            return {**reply, "cached": False}
        self._gave_up.set()
        raise EndpointError(f"endpoint '{self.entry.label}' ({self.entry.base_url}): no answer after "
                            f"{self.entry.max_retries + 1} attempts; last: {last}")

    def _parse(self, response, seconds: float) -> dict[str, Any]:
        choice = response.choices[0]
        usage = response.usage
        if usage is None:
            self._count("usage_missing")
        content = getattr(choice.logprobs, "content", None) if choice.logprobs else None
        top = {t.token: t.logprob for t in content[0].top_logprobs} if content and content[0].top_logprobs else None
        return {"text": (choice.message.content or "").strip(), "prompt_tokens": usage.prompt_tokens if usage else 0,
                "output_tokens": usage.completion_tokens if usage else 0, "seconds": seconds, "top_logprobs": top}

    def _send_all(self, requests: list[dict], progress: Callable[[int], None] | None) -> list[dict]:
        began, sent_before = time.perf_counter(), self.stats["requests_sent"]
        with ThreadPoolExecutor(max_workers=self.entry.max_concurrency) as pool:
            futures = [pool.submit(self.send, r) for r in requests]
            for future in futures:  # in order; a failure cancels what has not started
                try:
                    future.result()
                except Exception:
                    for f in futures:
                        f.cancel()
                    raise
                if progress:
                    progress(1)
        sent = self.stats["requests_sent"] - sent_before
        if sent:
            self.throughput.append((sent, time.perf_counter() - began))
        return [f.result() for f in futures]

    def answer(self, examples: list[Example], prompts: list[list[dict[str, str]]], *, task_type: str, labels: list[str],
               max_new_tokens: int = 32, progress: Callable[[int], None] | None = None,
               sources: list[list[str]] | None = None) -> list[Prediction]:
        """`baselines.answer.answer` for an endpoint: one chat completions request per prompt."""
        classify = task_type == "classification"
        request = {"temperature": 0, "max_tokens": max(map(self.count_tokens, labels)) + 8 if classify else max_new_tokens}
        if classify and self.entry.logprobs:
            request.update(logprobs=True, top_logprobs=20)
        replies = self._send_all([{**request, "messages": messages} for messages in prompts], progress)
        self._count("all_prompt_tokens", sum(r["prompt_tokens"] for r in replies))
        self._count("all_output_tokens", sum(r["output_tokens"] for r in replies))
        out = []
        for ex, reply, src in zip(examples, replies, sources or [None] * len(examples)):
            output, scores = reply["text"], None
            if classify:
                output, scores = self._classify(reply, labels)
            out.append(Prediction(ex.id, output, reply["prompt_tokens"], reply["output_tokens"], round(reply["seconds"] * 1000, 2),
                                  scores, src))
        return out

    def _classify(self, reply: dict, labels: list[str]) -> tuple[str, dict[str, float] | None]:
        scores = label_logprobs(reply["top_logprobs"], labels) if reply.get("top_logprobs") else {}
        mapped = map_to_label(reply["text"], labels)
        self._count("classification_replies")
        if scores:
            best = max(scores.values())
            tied = [label for label in labels if scores.get(label) == best]
            self._count("classified_by_logprobs")
            return (mapped if mapped in tied else tied[0]), scores
        if mapped is None:
            self._count("unparseable_replies")
            return reply["text"], None
        return mapped, None

    def resources(self) -> dict[str, Any]:
        """The trial's endpoint figures: requests sent and served from cache, retries, unparseable replies,
        and throughput measured on the answer calls that sent requests."""
        s, sent = self.stats, sum(n for n, _ in self.throughput)
        replies = s["classification_replies"]
        return {"endpoint": self.entry.label, "endpoint_model": self.entry.model, "max_concurrency": self.entry.max_concurrency,
                "requests_sent": s["requests_sent"], "cache_hits": s["cache_hits"], "retries": s["retries"],
                "usage_missing": s["usage_missing"], "all_prompt_tokens": s["all_prompt_tokens"],
                "all_output_tokens": s["all_output_tokens"], "context_tokenizer": self.tokenizer_name if self._tokenizer else None,
                **({"classification_replies": replies, "classified_by_logprobs": s["classified_by_logprobs"],
                    "unparseable_replies": s["unparseable_replies"],
                    "unparseable_rate": round(s["unparseable_replies"] / replies, 4)} if replies else {}),
                # all from cache: the record keeps 1 / mean latency, the rate of one request at a time
                **({"examples_per_s": round(sent / sum(t for _, t in self.throughput), 3)} if sent else {})}

    @property
    def latency_measured(self) -> str:
        return (f"each request's own wall time at concurrency {self.entry.max_concurrency} "
                "(a reply served from the cache counts its original request's time)")
