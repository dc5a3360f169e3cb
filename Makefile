# Each target creates .venv from scratch when missing, so `make demo` and `make test`
# are the only two commands a fresh machine needs.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export IMBAL_DATA ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)

.PHONY: venv demo test lint format bench clean

$(BIN)/imbal: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: on the project machines this resolves to the local CPU wheel.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(BIN)/imbal

venv: $(BIN)/imbal

demo: venv
	$(BIN)/python -m imbal.study.demo --out runs/demo

test: venv
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: venv
	$(BIN)/python bench/loss_overhead.py
	$(BIN)/python bench/train_throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache
