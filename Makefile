# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
HOST   ?= 127.0.0.1
PORT   ?= 8080
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint format bench clean install preview-screenshot

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,postgres]'
	touch $(STAMP)

install: $(STAMP)

# Serve on http://$(HOST):$(PORT) (default 127.0.0.1:8080; `make run PORT=9000`) with the embedded defaults (SQLite under ./var/,
# bundled hooks/, no auth, loopback FHIR servers allowed, sandbox CORS origins, /docs on, the try-it page at /preview).
run: $(STAMP)
	mkdir -p var
	CDS_AUTH=$${CDS_AUTH:-off} \
	CDS_OPENAPI=$${CDS_OPENAPI:-true} \
	CDS_PREVIEW=$${CDS_PREVIEW:-true} \
	CDS_FHIR_SERVERS=$${CDS_FHIR_SERVERS:-http://127.0.0.1,http://localhost,https://launch.smarthealthit.org} \
	CDS_ALLOW_INSECURE_FHIR=$${CDS_ALLOW_INSECURE_FHIR:-true} \
	CDS_CORS_ORIGINS=$${CDS_CORS_ORIGINS:-https://sandbox.cds-hooks.org,http://localhost:8080,http://localhost:3000} \
	$(BIN)/cds-service serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

# docs/preview.png: the try-it page with the seed case, in Debian's Chromium (apt-get install
# chromium chromium-driver).
preview-screenshot: $(STAMP)
	$(BIN)/python -m benchmarks.preview_screenshot docs/preview.png

clean:
	rm -rf $(VENV) .venv-fhir var .mypy_cache .ruff_cache .pytest_cache
