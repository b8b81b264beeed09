#!/usr/bin/env bash
# Runs the suite on SQLite, then on PostgreSQL when SATSHARE_TEST_DATABASE_URL is set,
# then the linters. Any failure fails the run; a run that executed no test fails too.
set -euo pipefail
BIN=${BIN:-.venv/bin}

echo "=== SatShare tests on SQLite ==="
env -u SATSHARE_TEST_DATABASE_URL "$BIN/pytest" "$@"

if [[ -n "${SATSHARE_TEST_DATABASE_URL:-}" ]]; then
  echo "=== SatShare tests on PostgreSQL ==="
  "$BIN/pytest" "$@"
else
  echo "=== PostgreSQL half SKIPPED: SATSHARE_TEST_DATABASE_URL is not set."
  echo "    To run it: SATSHARE_TEST_DATABASE_URL=postgresql://USER@HOST:5432/test make test"
  echo "    (the database name must contain 'test': its schema is dropped and recreated)"
fi

echo "=== Linters ==="
"$BIN/ruff" check src tests bench examples docs/verify_ledger_export.py
"$BIN/ruff" format --check src tests bench examples docs/verify_ledger_export.py
"$BIN/mypy"
