# The two commands a new user runs: `make demo` and `make test`. Both create .venv when needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
DEMO_OUT ?= build/demo

.PHONY: demo test quick lint typecheck install install-test install-torch install-docs docs examples dist clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# PyTorch for annoconv.torch's tests and type check, pinned: a plain `torch` resolves to a
# multi-GB CUDA build on Linux, torch==2.13.0 to the CPU wheel (found through PIP_FIND_LINKS
# on our machines; elsewhere pass e.g. TORCH_SPEC='torch==2.13.0 --index-url
# https://download.pytorch.org/whl/cpu'). Users' `annoconv[torch]` says torch>=2.1.
TORCH_SPEC ?= torch==2.13.0

$(VENV)/.installed-torch: $(VENV)/.installed-test
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	touch $@

install-torch: $(VENV)/.installed-torch

$(VENV)/.installed-docs: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[docs]'
	touch $@

install-docs: $(VENV)/.installed-docs

# The site, built offline in strict mode (any warning fails) into build/site. No --quiet:
# it hides the warnings strict mode counts. tests/test_docs.py runs the same build.
DOCS_BUILD = NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --config-file mkdocs.yml

demo: install
	@rm -rf $(DEMO_OUT)
	$(BIN)/annoconv xml2csv examples/uspto/annotations $(DEMO_OUT)/uspto.csv --images examples/uspto/images
	$(BIN)/annoconv labelmap examples/uspto/annotations $(DEMO_OUT)/label_map.pbtxt
	$(BIN)/annoconv stats $(DEMO_OUT)/uspto.csv
	$(BIN)/annoconv xml2tfrecord examples/uspto/annotations $(DEMO_OUT)/uspto.record --images examples/uspto/images --split train=0.7,test=0.3 --seed 1 --shards 2
	$(BIN)/annoconv inspect $(DEMO_OUT)/uspto-train.record $(DEMO_OUT)/uspto-test.record --label-map $(DEMO_OUT)/label_map.pbtxt
	@echo "demo outputs are in $(DEMO_OUT)/"

lint: install-test
	$(BIN)/ruff check annoconv tests examples benchmarks docs
	$(BIN)/ruff format --check annoconv tests examples benchmarks docs

typecheck: install-test install-torch
	$(BIN)/mypy annoconv

docs: install-docs
	$(DOCS_BUILD)
	@echo "the site is in build/site/"

# The test extra includes the docs tools: the suite builds the site in strict mode. PyTorch
# comes from install-torch (typecheck needs it too), so the loaders' tests all run.
test: lint typecheck install-torch
	$(BIN)/python -m pytest -q

# The development loop: one test module (or any pytest selection), no lint or type check.
#   make quick T=tests/test_voc.py        make quick T="tests/test_cli.py -k usage"
T ?= tests/test_architecture.py
quick: install-test
	$(BIN)/python -m pytest -q -x $(T)

# The release artifacts: the sdist and the wheel in dist/, checked with `twine check`, then the
# wheel installed with its dependencies (from PyPI) into a fresh venv whose `annoconv` runs.
# (`make test` runs tests/test_dist.py: the same checks, the dependencies borrowed, offline.)
DIST_VENV ?= build/dist-venv

dist: install-test
	rm -rf dist $(DIST_VENV)
	$(PY) -m build --outdir dist .
	$(BIN)/twine check --strict dist/*
	$(PYTHON) -m venv $(DIST_VENV)
	$(DIST_VENV)/bin/pip install --quiet dist/*.whl
	cd $(DIST_VENV) && bin/annoconv --version && bin/annoconv formats
	@echo "dist/ holds the sdist and the wheel; pip install dist/annoconv-*.whl installs it"

examples: install
	$(PY) examples/make_example_data.py
	$(PY) examples/make_openimages_data.py
	$(PY) examples/make_links_data.py

clean:
	rm -rf build dist .mypy_cache .pytest_cache .ruff_cache
