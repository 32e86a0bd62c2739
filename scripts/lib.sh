#!/usr/bin/env bash
# Shared by scripts/test.sh and scripts/demo.sh (sourced, not run): messages, finding Python
# 3.11+, and `.venv` with the package installed with its extras (comma-separated), skipped when
# already done.
# Expects VENV to be set and the current directory to be the repository root.

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
is_root() { [[ $(id -u) -eq 0 ]]; }

apt_install() {
  is_root || die "need the Debian packages '$*' but not root: install them (sudo apt-get install -y $*) and run again"
  say "installing $* with apt-get"
  if [[ -z ${APT_UPDATED:-} ]]; then # once per run: several tools may need packages
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

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

# Creates .venv if missing and installs `-e .[EXTRAS]` (e.g. `test,bench`); a stamp keyed on
# pyproject.toml makes the second run skip pip entirely.
ensure_venv() {
  local extra=$1
  if [[ ! -x "$VENV/bin/python" ]]; then
    local python
    python=$(find_python)
    say "creating $VENV with $python"
    if ! "$python" -m venv "$VENV" 2>/dev/null; then
      rm -rf "$VENV"
      apt_install python3-venv
      "$python" -m venv "$VENV"
    fi
  fi
  local stamp="$VENV/.esm-installed-$extra"
  local wanted
  wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [[ -f "$stamp" && $(cat "$stamp") == "$wanted" ]]; then
    return 0
  fi
  say "installing esm with the '$extra' extra into .venv"
  "$VENV/bin/python" -m pip install -q -e ".[$extra]"
  echo "$wanted" >"$stamp"
}
