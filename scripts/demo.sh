#!/usr/bin/env bash
# Runs the whole pipeline on the bundled Kafka-compatible broker: no services to install.
#
#   scripts/demo.sh [esm demo args...]     e.g. scripts/demo.sh --seconds 10 --rate 1000
#
# Works from any directory on a fresh Debian machine with Python 3.11+: creates .venv and
# installs the package with its demo extra (skipped when already done), then runs `esm demo`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="$(pwd)/.venv"
# shellcheck source=scripts/lib.sh
source "$(pwd)/scripts/lib.sh"

ensure_venv demo >&2
exec "$VENV/bin/esm" demo "$@"
