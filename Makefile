# PAIS — Pretrained AI Services. `make serve` runs the service, `make test` passes the tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 3000
PYTEST_ARGS ?=

# The model store lives in the project, so a fresh clone never reads ~/bentoml.
export BENTOML_HOME ?= $(CURDIR)/.bentoml
export BENTOML_DO_NOT_TRACK ?= true

REQUIREMENTS := requirements/base.txt requirements/onnxruntime-cpu.txt requirements/dev.txt requirements/nodeps.txt \
	requirements/constraints.txt
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# apt.txt: what the services need (the image has it too); apt-dev.txt: what the tests add
APT_PACKAGES := $(shell sed -e 's/\#.*//' requirements/apt.txt requirements/apt-dev.txt)

.PHONY: help system-deps setup models serve serve-sagemaker test test-fast bench bento image lint clean

help:
	@echo "make serve   set up everything and serve on http://$(HOST):$(PORT) (PORT=... to change)"
	@echo "make test    set up everything and run the tests"
	@echo "other targets: system-deps setup models serve-sagemaker test-fast bench bento image lint clean"

# Debian packages the services and the tests need; apt runs only when one is missing.
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "system packages present"; fi

setup: $(VENV)/.installed

# Pinned dependencies (constraints freeze every transitive version), then the packages
# whose metadata pins old torch/numpy, without their dependencies.
$(VENV)/.installed: $(REQUIREMENTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -r requirements/base.txt -r requirements/onnxruntime-cpu.txt \
		-r requirements/dev.txt -c requirements/constraints.txt
	$(PIP) install -q --disable-pip-version-check --no-deps -r requirements/nodeps.txt
	$(PIP) install -q --disable-pip-version-check --no-deps -e ./client
	touch $@

# Import the selected models (PAIS_<TASK>_MODEL) into the BentoML model store.
models: setup
	$(PY) -m service.model_store

serve: system-deps setup models
	$(VENV)/bin/bentoml serve service.gateway:PAIS --host $(HOST) --port $(PORT)

# The container's SageMaker entrypoint, run on the host: 127.0.0.1:8080 unless
# SAGEMAKER_BIND_TO_PORT says otherwise (SAGEMAKER_BATCH=true etc. pass through).
serve-sagemaker: system-deps setup models
	SAGEMAKER_BIND_TO_PORT=$${SAGEMAKER_BIND_TO_PORT:-8080} $(PY) -m deploy.entrypoint serve --host $(HOST)

# Fast in-process tests first (real models, no server: a broken route fails in a minute),
# then the end-to-end ones against `bentoml serve`, moto's server and the entrypoint.
test: system-deps setup models
	$(PY) -m pytest -m "not server" $(PYTEST_ARGS)
	$(PY) -m pytest -m server $(PYTEST_ARGS)

test-fast: setup models
	$(PY) -m pytest -m "not server" $(PYTEST_ARGS)

# Every benchmark script (modules of benchmarks/ other than the shared one).
BENCHMARKS := $(filter-out common __init__,$(basename $(notdir $(wildcard benchmarks/*.py))))
bench: setup models
	@for name in $(BENCHMARKS); do echo "== benchmarks.$$name"; $(PY) -m benchmarks.$$name || exit 1; done

# GPU readiness (benchmarks/gpu.py): each model's raw throughput next to the service's over
# HTTP with PAIS_DEVICE=cuda, GPU memory per service and where the workers landed, in one run
# of at most 8 minutes; JSON to PAIS_BENCH_OUT. PAIS_BENCH_SMOKE=1 runs it on the CPU with tiny
# counts. It installs nothing (no setup/models prerequisite): on a lent machine, PY=python3.
.PHONY: bench-gpu
bench-gpu:
	$(PY) -m benchmarks.gpu --require-gpu

# VARIANT=gpu (CUDA base image, the default) or cpu (CPU-only torch, smaller image).
VARIANT ?= gpu
BENTOFILE := $(if $(filter cpu,$(VARIANT)),bentofile.cpu.yaml,bentofile.yaml)
bento: setup models
	$(VENV)/bin/bentoml build -f $(BENTOFILE)

# Needs a container engine: IMAGE_BACKEND=docker (default), buildah, podman, ...
IMAGE_BACKEND ?= docker
# BentoML 1.4.40 regenerates the Dockerfile in a temporary copy of the bento and refuses the
# copy's dockerfile_template unless it lies under the working directory ("Accessing file
# outside of current working directory"), so containerize runs from the temporary directory.
TMP_DIR = $(shell $(PY) -c 'import tempfile; print(tempfile.gettempdir())')
image: bento
	cd "$(TMP_DIR)" && $(abspath $(VENV))/bin/bentoml containerize pais:latest --backend $(IMAGE_BACKEND) -t pais:$(VARIANT)

# The AWS deployment tool: make deploy ARGS="sagemaker deploy pais --create-role" (see README, Deploy).
.PHONY: deploy
deploy: setup
	$(PY) -m deploy $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) .bentoml .pytest_cache .ruff_cache
