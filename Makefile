# browserjobs — every target sets up what it needs (venv with pinned dependencies, Chromium).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export AWS_DEFAULT_REGION ?= us-east-1
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help setup chromium test test-fast lint build deploy demo local bench worker-image clean

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.txt pyproject.toml
	@echo "==> creating $(VENV) with pinned dependencies"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip==26.3
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

setup: $(STAMP) chromium ## Create the venv and install Chromium (Debian package) if missing

chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
		echo "==> installing Chromium (Debian package chromium)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

test: setup ## Run the whole test suite (unit, state machine, worker, e2e, browser, chaos at CI size)
	@$(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the suite is broken" >&2; exit 1; fi; exit $$rc

test-fast: setup ## Unit and template tests only
	@$(PY) -m pytest -m unit

lint: setup ## cfn-lint, sam validate --lint, ruff
	cfn-lint template.yaml
	sam validate --lint
	ruff check .

build: setup ## sam build (no Docker: wheels for python3.13 arm64 are fetched by pip)
	sam build

deploy: build ## sam deploy --guided (first time) or with samconfig.toml
	sam deploy --guided

demo: setup ## Run the whole pipeline on the embedded local stack with scenarios
	$(PY) -m local demo

local: setup ## Start the embedded local stack in the foreground (Ctrl-C stops it)
	$(PY) -m local serve

bench: setup ## Run the benchmarks and write bench/RESULTS.md
	$(PY) -m bench

worker-image: ## Build and push the worker image to ECR (needs Docker with buildx and AWS credentials)
	container/build-and-push.sh

clean: ## Remove build output and reports
	rm -rf .aws-sam out .pytest_cache
