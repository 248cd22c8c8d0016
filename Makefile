# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The same tests with the lowest versions pyproject.toml allows (its lower bounds, tested).
LOWEST := .venv-lowest
LBIN := $(LOWEST)/bin
LSTAMP := $(LOWEST)/.installed

.PHONY: run test test-lowest lint schema bench clean

# The newest versions pyproject.toml allows: what a user who installs cg gets.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,onnx]'
	touch $(STAMP)

# Exactly the lower bound of each requirement (the build backend's too: it builds cg here, with no
# isolation); what they pull in is the newest that fits. Made anew whenever the bounds change.
$(LSTAMP): pyproject.toml tools/lowest_constraints.py
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(LBIN)/python -m pip install --quiet --upgrade pip
	$(LBIN)/python tools/lowest_constraints.py > $(LOWEST)/constraints.txt
	$(LBIN)/python tools/lowest_constraints.py --build-requires > $(LOWEST)/build-requires.txt
	$(LBIN)/python -m pip install --quiet -c $(LOWEST)/constraints.txt -r $(LOWEST)/build-requires.txt
	$(LBIN)/python -m pip install --quiet --no-build-isolation -c $(LOWEST)/constraints.txt -e '.[dev,onnx]'
	touch $(LSTAMP)

run: $(STAMP)  ## the main job on the example graph
	$(BIN)/cg run graphs/logreg.yaml --inputs x=2,y=3

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-lowest: $(LSTAMP)  ## the tests with the lowest declared versions (tests/test_packaging.py checks they are)
	CG_LOWEST_CONSTRAINTS=$(LOWEST)/constraints.txt $(LBIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

schema: $(STAMP)  ## regenerate the committed copies of the JSON Schemas
	$(BIN)/cg schema > schema/graph.schema.json
	$(BIN)/cg schema --result > schema/result.schema.json
	$(BIN)/cg schema --diagnostics > schema/diagnostics.schema.json
	$(BIN)/cg schema --snapshot > schema/snapshot.schema.json

bench: $(STAMP)  ## W1-W4, loading, start-up: prints them and writes bench/results.md (one BLAS thread)
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python bench/all.py

clean:
	rm -rf $(VENV) $(LOWEST) .pytest_cache .mypy_cache .ruff_cache
