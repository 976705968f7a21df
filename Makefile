# Two commands do everything on a fresh machine with Python ≥ 3.11 and make:
#   make demo   — install, ingest the embedded sample into ./lake, print the summary, a first query, the
#                 findings, and build the dashboards (lake-dashboards/index.html)
#   make test   — install with dev extras and run the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
LAKE   ?= lake

.PHONY: demo test install install-dev sample schema-doc reliability clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/trailhouse ingest data/sample --lake $(LAKE); rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 3 ] || exit $$rc
	@echo
	@echo "First query: the ten most frequent API calls, and how many failed"
	$(BIN)/trailhouse sql --lake $(LAKE) "SELECT event.provider, event.action, count(*) AS calls, count(*) FILTER (event.outcome = 'failure') AS failed FROM events GROUP BY ALL ORDER BY calls DESC LIMIT 10"
	@echo
	@echo "Findings of the IAM/EC2 use cases, by rule:"
	$(BIN)/trailhouse sql --lake $(LAKE) "SELECT rule, wazuh_rule_id, level, count(*) AS findings FROM findings GROUP BY ALL ORDER BY level DESC, rule"
	@echo
	$(BIN)/trailhouse dashboards --lake $(LAKE) --out $(LAKE)-dashboards
	@echo "Open $(LAKE)-dashboards/index.html in a browser (it works offline)."

test: install-dev
	$(BIN)/python -m pytest -q

# Regenerate the embedded sample (deterministic: tests/test_generate.py checks it is this command's output).
sample: install
	rm -rf data/sample
	$(BIN)/trailhouse generate --out data/sample --events 3000 --seed 7 --accounts 2 --regions 2 --days 2

# The crash harness at full size; rewrites the figures of docs/reliability.md (a few minutes).
reliability: install-dev
	$(BIN)/python -m tests.reliability --kills 40 --seed 1 --events 15000 --doc docs/reliability.md

schema-doc: install
	$(BIN)/python -m jobs.schema_doc > docs/schema.md

clean:
	rm -rf $(VENV) $(LAKE) $(LAKE)-dashboards .pytest_cache
