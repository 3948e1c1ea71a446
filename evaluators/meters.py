"""Resource meters used around a trial's stages.

Why sample RSS instead of reading ru_maxrss: ru_maxrss is the process's high-water mark since it
started, so in a long-lived process every later trial would inherit the peak of the ones before it.
`PeakMemory` polls the resident set size in a thread and reports the peak *since the meter started*,
plus the RSS already held at that moment, so a trial's number is its own. The runner also runs each
trial in a fresh worker process, which makes the absolute peak meaningful too.

On a GPU, host RSS misses what matters (weights, activations and the KV cache live on the GPU), so a
meter given a CUDA device also reads torch's own counters: the peak allocated since it started, that
peak less what was already allocated at its start (the trial's own growth), and the peak reserved by
the caching allocator (what the process really held). Meters nest: a stage's meter inside the trial's
resets torch's peak counter, so it first folds the running peak into every open meter.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from dataclasses import dataclass, field
from typing import ClassVar


def current_rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: fall back to the (monotonic) high-water mark
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class PeakMemory:
    device: object = None
    """A torch device or its name; a CUDA device adds the GPU figures (torch is imported for it)."""
    interval_s: float = 0.02
    start_mb: float = 0.0
    peak_mb: float = 0.0
    cuda_start_mb: float | None = None
    cuda_peak_mb: float | None = None
    cuda_reserved_mb: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _open: ClassVar[list[PeakMemory]] = []
    """Meters entered and not yet left, outermost first (one process measures one trial at a time)."""

    def __enter__(self) -> PeakMemory:
        self.start_mb = self.peak_mb = current_rss_bytes() / 2**20
        self._gpu = _cuda_device(self.device)
        if self._gpu is not None:
            import torch

            for outer in PeakMemory._open:
                outer._fold_cuda_peak()
            torch.cuda.reset_peak_memory_stats(self._gpu)
            self.cuda_start_mb = torch.cuda.memory_allocated(self._gpu) / 2**20
            self.cuda_peak_mb = self.cuda_reserved_mb = 0.0
        PeakMemory._open.append(self)
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _fold_cuda_peak(self) -> None:
        if self._gpu is not None:
            import torch

            self.cuda_peak_mb = max(self.cuda_peak_mb, torch.cuda.max_memory_allocated(self._gpu) / 2**20)
            self.cuda_reserved_mb = max(self.cuda_reserved_mb, torch.cuda.max_memory_reserved(self._gpu) / 2**20)

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_mb = max(self.peak_mb, current_rss_bytes() / 2**20)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.peak_mb = max(self.peak_mb, current_rss_bytes() / 2**20)
        self._fold_cuda_peak()
        PeakMemory._open.remove(self)

    def as_dict(self) -> dict[str, float]:
        out = {"peak_rss_mb": round(self.peak_mb, 1), "peak_rss_delta_mb": round(self.peak_mb - self.start_mb, 1)}
        if self.cuda_peak_mb is not None:
            out.update(peak_cuda_mb=round(self.cuda_peak_mb, 1), peak_cuda_delta_mb=round(self.cuda_peak_mb - self.cuda_start_mb, 1),
                       peak_cuda_reserved_mb=round(self.cuda_reserved_mb, 1))
        return out


def _cuda_device(device):
    """The torch.device to read GPU counters from, or None (no device given, or not a CUDA one)."""
    if device is None:
        return None
    import torch

    device = torch.device(device)
    return device if device.type == "cuda" else None


class WallClock:
    def __enter__(self) -> WallClock:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


LATENCY_QUERIES = 16
"""Test queries timed one at a time for the per-query latency."""


def per_query_latency(answer_one, items: list, n: int = LATENCY_QUERIES, seed: int = 0) -> dict[str, float | int | None]:
    """p50 / p95 ms of `answer_one(item)` on `n` items drawn from `items` (seeded), each timed alone after one
    untimed warm-up call (lazy loads, first-call kernels): what one query waits when it is served by itself."""
    import random

    import numpy as np

    sample = random.Random(seed).sample(items, min(n, len(items)))
    if not sample:
        return {"p50_ms": None, "p95_ms": None, "n": 0}
    answer_one(sample[0])
    times = []
    for item in sample:
        began = time.perf_counter()
        answer_one(item)
        times.append(1000 * (time.perf_counter() - began))
    return {"p50_ms": round(float(np.percentile(times, 50)), 2), "p95_ms": round(float(np.percentile(times, 95)), 2), "n": len(times)}
