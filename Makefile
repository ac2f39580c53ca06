# Everyday commands. `make run` serves the embedded default; `make test` runs the suite on PostgreSQL.
.PHONY: run test lint format bench venv

run:
	@scripts/bootstrap.sh base
	@.venv/bin/python manage.py serve

test:
	@scripts/bootstrap.sh test
	@scripts/run-tests.sh $(PYTEST_ARGS)

lint:
	@scripts/bootstrap.sh test
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .

format:
	@scripts/bootstrap.sh test
	@.venv/bin/ruff check --fix .
	@.venv/bin/ruff format .

bench:
	@scripts/bootstrap.sh test
	@.venv/bin/python -m benchmarks $(BENCH_ARGS)
