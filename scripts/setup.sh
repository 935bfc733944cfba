#!/usr/bin/env bash
# Makes this machine able to run the platform and its tests.
#   scripts/setup.sh          install every Debian package the platform and tests use (as root), then npm ci
#   scripts/setup.sh --check  install only what is missing (as root); otherwise say which package is missing
#   scripts/setup.sh --system  the Debian packages only (CI runs npm ci itself)
set -euo pipefail
cd "$(dirname "$0")/.."

# binary (or file path):debian-package — what `npm start` and `npm test` run.
REQUIRED=(
  "nats-server:nats-server"
  "rtpengine:rtpengine-daemon"
  "rtpengine-ctl:rtpengine-utils"
  "sipp:sip-tester"
  "sox:sox"
  "baresip:baresip"
  "openssl:openssl"
  "chromium:chromium"
  "kamailio:kamailio"
  "/usr/lib/*/kamailio/modules/tls.so:kamailio-tls-modules"
  "/usr/lib/*/kamailio/modules/websocket.so:kamailio-websocket-modules"
  "promtool:prometheus"
)

# A command on the PATH or in /usr/sbin, or (a path) a file that exists.
have() {
  if [ "${1#/}" != "$1" ]; then compgen -G "$1" >/dev/null; return; fi
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]
}

missing=()
for entry in "${REQUIRED[@]}"; do
  bin="${entry%%:*}"; pkg="${entry##*:}"
  if [ "${1:-}" != "--check" ] || ! have "$bin"; then missing+=("$pkg"); fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

# The Debian rtpengine package enables a system service; the platform runs its own instances.
if [ "$(id -u)" = "0" ] && command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet rtpengine-daemon 2>/dev/null; then
  systemctl stop rtpengine-daemon || true
fi

# Likewise Kamailio: the grammar differential test starts its own on a free loopback port.
if [ "$(id -u)" = "0" ] && command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet kamailio 2>/dev/null; then
  systemctl stop kamailio || true
fi

if [ "${1:-}" = "--system" ]; then exit 0; fi

# A symlinked node_modules (a git worktree sharing another checkout's) is that checkout's to install:
# npm ci here would empty the target through the link.
if [ -L node_modules ]; then exit 0; fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund >/dev/null
fi
