# loyaltybot: `make demo` runs the bot against the built-in Twitch simulator,
# `make test` sets everything up and runs the tests. Both start from nothing.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast lint bench soak browser clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Debian's chromium for the dashboard's browser tests (Playwright drives it; it never downloads one).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "installing Debian's chromium for the browser tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

demo: install
	$(VENV)/bin/loyaltybot demo

test: install browser
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow and not browser"

lint: install
	$(VENV)/bin/ruff check loyaltybot tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Every benchmark, one JSON line per figure (BENCHMARKS.md records them). SEED=--seed also runs
# the seed's better-sqlite3 code in the same run (needs ../shared/peers/seed-js installed).
SEED ?=
bench: install
	$(PY) bench/ledger.py $(SEED)
	$(PY) bench/earning.py $(SEED)
	$(PY) bench/chat.py $(SEED)
	$(PY) bench/eventsub.py
	$(PY) bench/web.py
	$(PY) bench/shop.py
	$(PY) bench/contests_games.py

# The long reliability runs (crash: CRASH_KILLS=50 SIGKILLs; soak: SOAK_MINUTES=5 at 100k
# viewers), then their figures, as JSON lines, last (also in test-artifacts/soak-summary.json).
soak: install
	@mkdir -p test-artifacts && rm -f test-artifacts/soak-summary.json
	@$(PY) -m pytest -m soak --run-soak; status=$$?; \
	echo "== soak summary (test-artifacts/soak-summary.json) =="; \
	cat test-artifacts/soak-summary.json 2>/dev/null || echo "(no summary was written)"; \
	exit $$status

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts
