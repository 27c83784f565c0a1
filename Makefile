# genlab: two entry points, both from a fresh machine with only Python 3.11.
#   make run   -> virtual environment, install, run the quick atlas, write the HTML report
#   make test  -> its own fresh virtual environment, install, run the test suite
PYTHON ?= python3
VENV ?= .venv
TEST_VENV ?= .venv-test
HOME_DIR ?= genlab-runs
RUN_EXTRAS := data,test
TEST_EXTRAS := data,test,ray,docs,tensorboard,lightning

# torch first, pinned to the CPU build that lies on this disk: a bare torch
# requirement would pull a multi-GB CUDA build.
define install
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install -q --upgrade pip
	$(1)/bin/python -m pip install -q torch==2.13.0
	$(1)/bin/python -m pip install -q -e '.[$(2)]'
endef

.PHONY: run test install clean docs docs-build

$(VENV)/.installed: pyproject.toml
	$(call install,$(VENV),$(RUN_EXTRAS))
	touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/genlab atlas --quick --home $(HOME_DIR)

# Ray listens on every interface, so the suite runs in a private network namespace with only
# loopback (unshare -n); where that is not allowed, the Ray tests are left out and said so.
test:
	rm -rf $(TEST_VENV)
	$(call install,$(TEST_VENV),$(TEST_EXTRAS))
	$(MAKE) docs-build BIN=$(TEST_VENV)/bin
	@if unshare -n sh -c 'ip link set lo up' 2>/dev/null; then \
	  unshare -n sh -c 'ip link set lo up; exec $(TEST_VENV)/bin/python -m pytest'; \
	else \
	  echo "no private network namespace (unshare -n) here: leaving out tests/test_sweep_ray.py"; \
	  $(TEST_VENV)/bin/python -m pytest --ignore=tests/test_sweep_ray.py; \
	fi

# The documentation (MkDocs + mkdocstrings, from the docstrings), warnings as errors.
docs: install
	$(VENV)/bin/python -m pip install -q -e '.[$(RUN_EXTRAS),docs]'
	$(MAKE) docs-build BIN=$(VENV)/bin

BIN ?= $(VENV)/bin
docs-build:
	$(BIN)/python docs/gen_themes.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) $(TEST_VENV) $(HOME_DIR) build/site docs/themes
