#!/usr/bin/env bash
# Creates .venv with the real clients the compatibility tests use: the DataStax Python driver
# (cassandra-driver), cqlsh, and pytest. Idempotent: a second run only checks the versions.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
# The driver's C extensions take minutes to build; the pure-Python driver is what cqlsh uses too.
export CASS_DRIVER_NO_EXTENSIONS=1
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "cassandra-driver==3.29.2" "cqlsh==6.2.0" "pytest==8.3.4"
"$VENV/bin/python" -c "import cassandra, pytest; print('cassandra-driver', cassandra.__version__, '| pytest', pytest.__version__)"
