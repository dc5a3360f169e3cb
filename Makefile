# Each target creates .venv from scratch when missing, so `make demo` and `make test`
# are the only two commands a fresh machine needs.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export IMBAL_DATA ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)

.PHONY: venv demo test lint typecheck format bench reproduce reproduce-2d reproduce-3d reproduce-cv-2d reproduce-cv-3d reproduce-cv-race clean

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
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

typecheck: venv
	$(BIN)/mypy

format: venv
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: venv
	$(BIN)/python bench/loss_overhead.py
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/streaming.py
	$(BIN)/python bench/study_overhead.py

# docs/reproduction.md, both data sets (finished cells are kept: rerun to resume)
reproduce: reproduce-2d reproduce-3d

# RetinaMNIST: 80 + 24 runs (measured: 80 min + 18 min on 2 CPU cores), reports, claim table
reproduce-2d: venv
	$(BIN)/imbal grid --config configs/study_reproduction.yaml --out runs/reproduction --quiet
	$(BIN)/imbal grid --config configs/study_batch_ablation.yaml --out runs/batch_ablation --quiet
	$(BIN)/imbal embed runs/reproduction --best-worst 3
	$(BIN)/imbal report runs/reproduction
	$(BIN)/imbal report runs/batch_ablation
	$(BIN)/python docs/reproduction/claims.py --publish runs/reproduction study --publish runs/batch_ablation batch_ablation

# VesselMNIST3D: 80 + 24 runs, two at a time (one thread each), reports, claim table
reproduce-3d: venv
	$(BIN)/imbal grid --config configs/study_vessel_cpu.yaml --out runs/vessel --jobs 2 --quiet
	$(BIN)/imbal grid --config configs/study_vessel_batch_ablation.yaml --out runs/vessel_ablation --jobs 2 --quiet
	$(BIN)/imbal embed runs/vessel --best-worst 3
	$(BIN)/imbal report runs/vessel
	$(BIN)/imbal report runs/vessel_ablation
	$(BIN)/python docs/reproduction/claims.py --publish runs/vessel vessel --publish runs/vessel_ablation vessel_ablation

# the same 16 configurations cross-validated (5 folds over every labelled image; docs/method.md)
reproduce-cv-2d: venv
	$(BIN)/imbal grid --config configs/study_retinamnist_cv.yaml --out runs/retina_cv --quiet
	$(BIN)/imbal report runs/retina_cv
	$(BIN)/python docs/reproduction/claims.py --publish runs/retina_cv retina_cv

reproduce-cv-3d: venv
	$(BIN)/imbal grid --config configs/study_vessel_cv.yaml --out runs/vessel_cv --jobs 2 --quiet
	$(BIN)/imbal report runs/vessel_cv
	$(BIN)/python docs/reproduction/claims.py --publish runs/vessel_cv vessel_cv

# the race over repeats on RetinaMNIST (2 repeats at most); its first round reuses reproduce-cv-2d's runs
reproduce-cv-race: reproduce-cv-2d
	mkdir -p runs/retina_cv_race && cp -rn runs/retina_cv/runs runs/retina_cv_race/
	$(BIN)/imbal recommend --config configs/study_retinamnist_cv_race.yaml --out runs/retina_cv_race --quiet
	rm -rf docs/reproduction/retina_cv_race && mkdir -p docs/reproduction/retina_cv_race
	cp -r runs/retina_cv_race/report.md runs/retina_cv_race/runs.csv runs/retina_cv_race/plan.json runs/retina_cv_race/race.json runs/retina_cv_race/tables runs/retina_cv_race/figures docs/reproduction/retina_cv_race/

clean:
	rm -rf $(VENV) runs .pytest_cache
