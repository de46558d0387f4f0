# reelserve: `make run` serves the API on an embedded default; `make test` runs the tests.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export RAY_AUTH_MODE ?= disabled
export RAY_USAGE_STATS_ENABLED ?= 0

.PHONY: setup setup-full sample system-deps run stop test test-fast lint config bench clean docs

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@$(MAKE) --no-print-directory system-deps
	touch $@

# The tests also run the torch engines (pyannote.audio, demucs; ~7 GB more in the venv) and
# piper.
setup-full: $(VENV)/.installed-full

$(VENV)/.installed-full: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[dev,pyannote,demucs,piper,paddle,s3]"
	touch $@

# Optional system packages: Debian's ffmpeg (has ffprobe; imageio-ffmpeg's binary is the
# fallback), haproxy (ray[serve] bundles one; this is the fallback) and a CJK font (the OCR
# tests burn Chinese subtitles; else set REELSERVE_TEST_CJK_FONT). Root + apt only.
system-deps:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  missing=""; \
	  command -v ffmpeg >/dev/null || missing="$$missing ffmpeg"; \
	  command -v haproxy >/dev/null || missing="$$missing haproxy"; \
	  [ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing="$$missing fonts-wqy-microhei"; \
	  if [ -n "$$missing" ]; then \
	    echo "installing$$missing with apt-get"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "apt-get failed; using the bundled ffmpeg/haproxy"; \
	  fi; \
	else echo "not root or no apt-get: using imageio-ffmpeg's ffmpeg and Ray's bundled haproxy"; fi

run: setup
	scripts/run.sh

stop:
	scripts/stop.sh

test: setup-full
	$(PY) -m pytest -q

test-fast: setup-full
	$(PY) -m pytest -q -m "not slow"

lint: setup-full
	$(VENV)/bin/ruff check graph nodes reuse tests bench scripts docs
	$(VENV)/bin/mypy

config: setup
	$(PY) -m graph.config > serve_config.yaml
	$(PY) -m graph.kuberay > cluster/rayservice.yaml

bench: setup-full
	$(PY) bench/bench_reuse.py
	$(PY) bench/bench_speech.py

# An English two-voice clip (espeak-ng) for the README's speech walk-through.
sample: setup
	$(PY) scripts/make_sample.py

clean:
	rm -rf $(VENV) run .pytest_cache .mypy_cache .ruff_cache

# Re-record the node examples from real responses, then regenerate the API reference.
docs: setup-full
	REELSERVE_WRITE_EXAMPLES=1 $(PY) -m pytest -q tests/test_docs.py -k examples
	$(PY) docs/gen_reference.py
