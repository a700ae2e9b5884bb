# Two commands on a fresh clone: `make demo` and `make test`. Each creates .venv and installs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DIGITS := examples/digits

.PHONY: demo test test-all clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --editable .
	touch $@

$(VENV)/.installed-test: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --editable '.[test]'
	touch $@ $(VENV)/.installed

# Build the digits CNN for the default board (DSE, Verilog, Yosys, report), then verify it in
# cocotb + Verilator on the 300 held-out digits: bit-exact against golden, and its accuracy.
demo: $(VENV)/.installed
	$(BIN)/python -m dnnhw build $(DIGITS)/digits.onnx --calibration $(DIGITS)/digits_calib.npy \
		--out build/digits
	$(BIN)/python -m dnnhw verify build/digits --data $(DIGITS)/digits_x.npy \
		--labels $(DIGITS)/digits_y.npy

# Two workers (this machine has 2 cores); a file's tests stay on one worker, so module
# fixtures (one Verilator build each) run once.
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-all: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m ''

clean:
	rm -rf $(VENV) build sim_build .pytest_cache .hypothesis
