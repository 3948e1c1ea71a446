"""Shared by the report's browser tests and benchmark: a headless Debian chromium driven over the DevTools
protocol, and a constructed run folder of any size.

The run is constructed (made-up answers, not a measurement of any model): it exists to load the report page
at a chosen size. Chromium is the system package; nothing downloads a browser.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from contracts.io import write_json, write_jsonl

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-default-apps", "--hide-scrollbars"]
WORDS = ("refund parcel invoice printer ink toner delivery order account password card label poster banner "
         "station ticket platform timetable luggage bicycle pass refund delay night service route").split()


class Chromium:
    """One headless chromium and its first tab, driven over the DevTools protocol (websocket-client)."""

    def __init__(self, user_dir: Path, proxy: str | None = None, size: tuple[int, int] = (1280, 1600)):
        assert CHROMIUM, "chromium is not installed: `make test` installs Debian's chromium (or set ADVISOR_SKIP_BROWSER=1)"
        net = [f"--proxy-server={proxy}", "--proxy-bypass-list=<-loopback>"] if proxy else []
        port_file = Path(user_dir) / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)  # a profile used before keeps the old port's file
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, *net, f"--user-data-dir={user_dir}", "--remote-debugging-port=0",
                                      f"--window-size={size[0]},{size[1]}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self._connect(port_file)
        except BaseException:
            self.close()
            raise

    def _connect(self, port_file: Path) -> None:
        import websocket

        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("chromium did not open its DevTools port within 60 s")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy from the environment
        tabs = json.loads(opener.open(f"http://127.0.0.1:{port}/json/list", timeout=30).read())
        page = next(t for t in tabs if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=120, suppress_origin=True)
        self.next_id, self.events = 0, []
        self.send("Page.enable")

    def send(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def open(self, url: str) -> float:
        """Load `url` and wait for its load event; returns the seconds it took."""
        self.events.clear()
        began = time.perf_counter()
        self.send("Page.navigate", url=url)
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(json.loads(self.ws.recv()))
        return time.perf_counter() - began

    def js(self, expression: str):
        """The value of a JavaScript expression in the page (a thrown error raises here)."""
        found = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in found:
            raise RuntimeError(f"page error: {found['exceptionDetails']}")
        return found["result"].get("value")

    def screenshot(self, path: Path) -> None:
        import base64

        Path(path).write_bytes(base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"]))

    def close(self) -> None:
        if getattr(self, "ws", None):
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def constructed_run(folder: Path, items: int, trials: int, retrieving: int = 2, k: int = 4, seed: int = 0) -> Path:
    """A run folder of `items` qa test items x `trials` finished trials (the first `retrieving` of them retrieve k
    chunks each from a 2,000-chunk corpus), with made-up answers, scores and gold documents; returns the folder."""
    rng = random.Random(seed)
    folder = Path(folder)
    ids = [f"q{i:05d}" for i in range(items)]
    inputs = {i: _text(rng, 25) + "?" for i in ids}
    targets = {i: _text(rng, 4) for i in ids}
    gold = {i: f"doc-{rng.randrange(200):03d}" for i in ids}
    chunks = [{"id": f"c{c}", "doc_id": f"doc-{c // 10:03d}", "start": 0, "end": 0, "text": _text(rng, 80)} for c in range(2000)]
    records = []
    for t in range(trials):
        name, family = (f"rag/fixed-{128 * (t + 1)}/flat", "rag") if t < retrieving else (f"trial-{t}", "prompting")
        trial_id = f"{name.replace('/', '_')}-{t:04d}"
        folder_t = folder / "trials" / trial_id
        quality = 0.3 + 0.05 * t
        rows, hits = [], []
        for i in ids:
            good = rng.random() < quality
            answer = targets[i] if good else _text(rng, 4)
            row = {"id": i, "output": answer, "input": inputs[i], "target": targets[i], "prompt_tokens": 40, "score": 1.0 if good else 0.0}
            if t < retrieving:
                ranked = rng.sample(range(2000), k)
                row["sources"] = [f"c{c}" for c in ranked[: k - 1]]
                hits.append({"id": i, "gold": gold[i], "ranked": [f"c{c}" for c in ranked]})
            rows.append(row)
        write_jsonl(folder_t / "predictions.jsonl", rows)
        if t < retrieving:
            write_jsonl(folder_t / "retrieved.jsonl", hits)
            write_jsonl(folder_t / "chunks.jsonl", chunks)
        details = {} if t < retrieving else {"template": "plain", "template_selected_on": "16 held-out train examples",
                                             "shots": 0, "shot_ids": []}
        records.append({"id": trial_id, "name": name, "strategy": family, "status": "ok", "hash": f"{t:064d}",
                        "settings": {"templates": {"plain": "Question: {input}\nAnswer:"}} if t >= retrieving else {"k": k},
                        "metrics": {"exact_match": quality, "exact_match_ci95": [quality - 0.01, quality + 0.01]},
                        "details": details, "n_test": items})
    write_json(folder / "results.json", {
        "schema_version": 1, "complete": True, "warnings": [], "environment": {"packages": {}},
        "task": {"name": "constructed", "type": "qa", "metric": "exact_match", "model": "none (constructed run)", "seed": seed,
                 "spec": {}, "source": "constructed"},
        "families": {"rag": {"simplicity_rank": 1, "retrieves": True, "changes_weights": False},
                     "prompting": {"simplicity_rank": 0, "retrieves": False, "changes_weights": False}},
        "metrics": {"exact_match": {"display_name": "Exact match", "higher_is_better": True, "unit": "%", "paired_test": "mcnemar"}},
        "statistics": {"n_test": items}, "trials": records,
        "recommendation": {"pick": records[-1]["name"], "confidence": "low", "rationale": [], "excluded": {}}})
    return folder
