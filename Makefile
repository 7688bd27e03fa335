# Set-up is part of every target: a fresh machine needs only Python 3.10+, Java 17+ and network access to PyPI and
# Maven Central.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.shelltrace-installed

.PHONY: setup demo test bench clean

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m jobs.session --fetch-jars
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/shelltrace demo --out ./demo

test: setup
	$(PY) -m pytest -q

clean:
	rm -rf demo lake spark-warehouse metastore_db derby.log .pytest_cache
