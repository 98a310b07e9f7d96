# Two commands a fresh machine needs: `make demo` and `make test`. Both create .venv and install.
# TORCH_SPEC picks the torch build: the default is the CPU wheel this project is tested with; on a
# CUDA machine use e.g. `make test TORCH_SPEC=torch`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev,smax,ray
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

demo: $(STAMP)
	$(BIN)/python examples/train_predator_prey.py

test: $(STAMP)
	$(BIN)/python -m ruff check marl_lsf envs examples tests benchmarks
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/python -m ruff check marl_lsf envs examples tests benchmarks
	$(BIN)/python -m ruff format --check marl_lsf envs examples tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
