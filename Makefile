# maeflow — two commands for a new user:
#   make demo   set up .venv and pretrain the demo image MAE (checkpoint, metrics, figure, probes)
#   make test   set up .venv and run the test suite
# make test-wheel: build the wheel, install it into a clean venv, run `maeflow demo` from outside
# the checkout (WHEEL_DEMO_ARGS= runs the full demo)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch/torchvision are installed first, explicitly, so nothing later pulls a second torch
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.maeflow-installed
WHEEL_DEMO_ARGS ?= train.epochs=2 train.progress=false

.PHONY: install demo test test-slow test-wheel lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch, torchvision" 2>/dev/null || $(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -c "import torch; print('torch', torch.__version__)"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) -m maeflow demo

test: install
	$(PY) -m pytest -q -m "not slow" -n 2

test-slow: install
	$(PY) -m pytest -q -m slow

test-wheel:
	PYTHON="$(PYTHON)" TORCH_SPEC="$(TORCH_SPEC)" DEMO_ARGS="$(WHEEL_DEMO_ARGS)" bash .ci/test-wheel

lint: install
	$(VENV)/bin/ruff check maeflow plugins tests benchmarks

clean:
	rm -rf runs .pytest_cache
