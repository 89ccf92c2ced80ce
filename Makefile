# Two set-up commands: `make demo` and `make test`. Each creates .venv if missing.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
TORCH   := torch==2.13.0

.PHONY: demo test test-slow bench install clean screenshots

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch first, pinned (a CPU wheel is served locally); then the package with dev extras; then peers.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev]"
	# peers for conformance tests, without their dependencies (they must never pull another torch)
	$(BIN)/pip install --quiet --no-deps neurobench==2.3.0 snntorch==1.0.0 tqdm spikingjelly==2.0.0 \
		norse==1.1.0 nir==1.0.8 nirtorch==2.6 loguru h5py
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/neurotoken run

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# speed against snnTorch, SpikingJelly and Norse on the same inputs (JSON + PNG in runs/<timestamp>-bench)
bench: $(STAMP)
	$(BIN)/neurotoken bench

# docs/img/report_*.png: each section of a quick run's report.html rendered by headless Chromium
screenshots: $(STAMP)
	rm -rf build/screenshots
	$(BIN)/neurotoken run --quick --out build/screenshots
	$(BIN)/neurotoken report build/screenshots/*-main --screenshots docs/img

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .hypothesis
