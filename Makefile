# Two commands a fresh machine needs: `make demo` and `make test`. Both create .venv and install:
# the demo only what the library needs, the tests also the extras (dev tools, SMAX, Ray).
# TORCH_SPEC picks the torch build: the default is the CPU wheel this project is tested with; on a
# CUDA machine use e.g. `make test TORCH_SPEC=torch`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev,smax,ray
BIN := $(VENV)/bin
BASE_STAMP := $(VENV)/.installed-base
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs clean

$(BASE_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e .
	touch $@

$(STAMP): $(BASE_STAMP)
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

demo: $(BASE_STAMP)
	$(BIN)/python examples/train_predator_prey.py

test: $(STAMP)
	$(BIN)/python -m ruff check marl_lsf envs examples tests benchmarks
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/python -m ruff check marl_lsf envs examples tests benchmarks
	$(BIN)/python -m ruff format --check marl_lsf envs examples tests benchmarks

# The API reference, from the docstrings, as HTML in build/api (pdoc; not part of `make test`).
API_MODULES = marl_lsf $(patsubst %.py,marl_lsf.%,$(filter-out __init__.py,$(notdir $(wildcard marl_lsf/*.py)))) \
	marl_lsf.algorithms marl_lsf.nets marl_lsf.envs marl_lsf.cli marl_lsf.sweep '!marl_lsf.envs._.*'
docs: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[docs]"
	$(BIN)/python -m pdoc -o build/api $(API_MODULES)
	@echo "API reference: build/api/index.html"

clean:
	rm -rf $(VENV) build *.egg-info
