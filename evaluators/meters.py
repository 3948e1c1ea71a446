"""Resource meters used around a trial's stages.

Why sample RSS instead of reading ru_maxrss: ru_maxrss is the process's high-water mark since it
started, so in a long-lived process every later trial would inherit the peak of the ones before it.
`PeakMemory` polls the resident set size in a thread and reports the peak *since the meter started*,
plus the RSS already held at that moment, so a trial's number is its own. The runner also runs each
trial in a fresh worker process, which makes the absolute peak meaningful too.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from dataclasses import dataclass, field


def current_rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: fall back to the (monotonic) high-water mark
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class PeakMemory:
    interval_s: float = 0.02
    start_mb: float = 0.0
    peak_mb: float = 0.0
    cuda_peak_mb: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        self.start_mb = self.peak_mb = current_rss_bytes() / 2**20
        self._cuda = _cuda()
        if self._cuda:
            self._cuda.reset_peak_memory_stats()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_mb = max(self.peak_mb, current_rss_bytes() / 2**20)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.peak_mb = max(self.peak_mb, current_rss_bytes() / 2**20)
        if self._cuda:
            self.cuda_peak_mb = self._cuda.max_memory_allocated() / 2**20

    def as_dict(self) -> dict[str, float]:
        out = {"peak_rss_mb": round(self.peak_mb, 1), "peak_rss_delta_mb": round(self.peak_mb - self.start_mb, 1)}
        if self.cuda_peak_mb is not None:
            out["peak_cuda_mb"] = round(self.cuda_peak_mb, 1)
        return out


def _cuda():
    """torch.cuda when torch is already imported and a GPU is present; never imports torch itself."""
    import sys

    torch = sys.modules.get("torch")
    return torch.cuda if torch is not None and torch.cuda.is_available() else None


class WallClock:
    def __enter__(self) -> WallClock:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start
