# carbon-kfp front door. `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: help install test lint demo bench compile images images-local images-lock clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python  ## create .venv and install carbon-kfp with dev extras
	$(BIN)/pip install -q -e ".[dev]"

test: install  ## run the whole test suite
	$(BIN)/python -m pytest

lint: install  ## ruff (lint + format check), mypy, and hadolint on every images/*/Dockerfile
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	find images -name Dockerfile -print0 | xargs -0 $(BIN)/hadolint

demo: $(BIN)/python  ## run the wine pipeline on kfp.local and print CO2 per step
	$(BIN)/pip install -q -e ".[kfp,ml]"
	$(BIN)/carbon-kfp run wine

bench: install  ## tracker overhead vs CodeCarbon / CarbonTracker (installs them in their own venvs)
	$(BIN)/python benchmarks/tracker_overhead.py

# Checked-in YAML names the default images (no registry): the environment's image settings are unset.
KIT_ENV := env -u CARBON_KFP_IMAGE_REGISTRY -u CARBON_KFP_CPU_IMAGE -u CARBON_KFP_GPU_IMAGE

compile: install  ## regenerate pipelines/compiled/*.yaml, components/*/component.yaml, pipelines/gcpc/*.yaml
	$(BIN)/python -m carbon_kfp.pipelines.gcpc
	$(KIT_ENV) $(BIN)/carbon-kfp compile wine --output pipelines/compiled/wine.yaml
	$(KIT_ENV) $(BIN)/carbon-kfp compile fashion-mnist --output pipelines/compiled/fashion-mnist.yaml
	$(KIT_ENV) $(BIN)/carbon-kfp compile fashion-mnist-custom-job --output pipelines/compiled/fashion-mnist-custom-job.yaml
	$(KIT_ENV) $(BIN)/carbon-kfp compile fashion-mnist-kubeflow --target kubeflow --output pipelines/compiled/fashion-mnist-kubeflow.yaml
	$(KIT_ENV) $(BIN)/python -m carbon_kfp.components --output components

VERSION = $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' carbon_kfp/_version.py)

images:  ## build and push both images with Cloud Build, tagged VERSION (needs REGISTRY=...)
	@test -n "$(REGISTRY)" || { echo "make images: set REGISTRY=REGION-docker.pkg.dev/PROJECT/REPO"; exit 2; }
	gcloud builds submit --config images/cloudbuild.yaml \
	  --substitutions=_REGISTRY=$(REGISTRY),_VERSION=$(VERSION) .

images-local:  ## build carbon-kfp-cpu:local here, on a debootstrap base (root; starts dockerd)
	images/local/build.sh

images-lock:  ## regenerate images/cpu/constraints.txt from a resolved install (package index)
	images/lock.sh cpu kfp,ml

clean:  ## remove the virtual environment and local run outputs
	rm -rf $(VENV) local_outputs .pytest_cache .mypy_cache .ruff_cache
