# carbon-kfp front door. `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: help install test lint demo bench compile images clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python  ## create .venv and install carbon-kfp with dev extras
	$(BIN)/pip install -q -e ".[dev]"

test: install  ## run the whole test suite
	$(BIN)/python -m pytest

lint: install  ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

demo: $(BIN)/python  ## run the wine pipeline on kfp.local and print CO2 per step
	$(BIN)/pip install -q -e ".[kfp,ml]"
	$(BIN)/carbon-kfp run wine

bench: install  ## tracker overhead vs CodeCarbon / CarbonTracker (installs them in their own venvs)
	$(BIN)/python benchmarks/tracker_overhead.py

# Checked-in YAML names the default images (no registry): the environment's image settings are unset.
KIT_ENV := env -u CARBON_KFP_IMAGE_REGISTRY -u CARBON_KFP_CPU_IMAGE -u CARBON_KFP_GPU_IMAGE

compile: install  ## regenerate pipelines/compiled/*.yaml and components/*/component.yaml
	$(KIT_ENV) $(BIN)/carbon-kfp compile wine --output pipelines/compiled/wine.yaml
	for name in fashion-mnist fashion-mnist-custom-job fashion-mnist-kubeflow; do \
		$(KIT_ENV) $(BIN)/carbon-kfp compile $$name --output pipelines/compiled/$$name.yaml || exit 1; \
	done
	$(KIT_ENV) $(BIN)/python -m carbon_kfp.components --output components

clean:  ## remove the virtual environment and local run outputs
	rm -rf $(VENV) local_outputs .pytest_cache .mypy_cache .ruff_cache
