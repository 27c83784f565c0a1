# genlab: two entry points, both from a fresh machine with only Python 3.11.
#   make run   -> virtual environment, install, run the quick atlas, write the HTML report
#   make test  -> its own fresh virtual environment, install, run the test suite
PYTHON ?= python3
VENV ?= .venv
TEST_VENV ?= .venv-test
HOME_DIR ?= genlab-runs

# torch first, pinned to the CPU build that lies on this disk: a bare torch
# requirement would pull a multi-GB CUDA build.
define install
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install -q --upgrade pip
	$(1)/bin/python -m pip install -q torch==2.13.0
	$(1)/bin/python -m pip install -q -e '.[data,test]'
endef

.PHONY: run test install clean

$(VENV)/.installed: pyproject.toml
	$(call install,$(VENV))
	touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/genlab atlas --quick --home $(HOME_DIR)

test:
	rm -rf $(TEST_VENV)
	$(call install,$(TEST_VENV))
	$(TEST_VENV)/bin/python -m pytest

clean:
	rm -rf $(VENV) $(TEST_VENV) $(HOME_DIR)
