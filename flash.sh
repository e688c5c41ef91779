#!/usr/bin/env bash
# paidui's one installer and launcher.
#
#   ./flash.sh sim     set up, then run a simulated branch, broker, centre and fleet here
#   ./flash.sh test    set up, then run every check and test (what CI runs)
#   ./flash.sh setup   only set up (apt packages, venv, Python packages)
#   ./flash.sh pi HOST|--root DIR --bundle B --config F --release-key K [...]
#                      install a branch box on a Raspberry Pi (docs/install.md)
#
# Each command installs what it needs by itself and is safe to run twice.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${PAIDUI_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
# Debian/Ubuntu packages the box, the centre and the tests use.
APT_PACKAGES=(python3-venv mosquitto mosquitto-clients sqlite3 espeak-ng fonts-noto-cjk chromium
              wrk  # wrk: bench/bench_http.py's load generator
              # PC/SC for bank IC card readers: pcscd, and what builds pyscard where no wheel
              # fits (libpcsclite-dev, swig); vsmartcard-vpcd: the virtual reader its tests use
              pcscd libpcsclite-dev swig vsmartcard-vpcd
              # patroni, etcd-server: only the slow PostgreSQL failover test (pytest -m patroni)
              # and bench/bench_pg_failover.py, which run their own etcd and nodes on free
              # ports (with postgresql-15's binaries); skipped when absent. Debian enables
              # an etcd.service on install; nothing here uses it.
              patroni etcd-server)
APT_PACKAGES+=(gcc)  # gcc: bench/bench_pi.py builds its SD-card fsync shim (LD_PRELOAD)

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
die() { printf 'flash.sh: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root for: $*"; fi
}

# What the operator's machine needs to install a Pi (flash.sh pi): no broker, browser or
# test tools — the installer speaks the clip pack here and copies over ssh.
PI_OPERATOR_PACKAGES=(python3-venv espeak-ng openssh-client)

apt_setup() {
    local missing=() wanted=("$@")  # default: everything the project uses
    [ $# -gt 0 ] || wanted=("${APT_PACKAGES[@]}")
    for pkg in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get"
    say "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || true
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"
}

venv_setup() {
    local python="${PYTHON:-python3}"
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "Python 3.11 or newer is needed ($python is $("$python" -V 2>&1))"
    [ -x "$PY" ] || { say "creating $VENV"; "$python" -m venv "$VENV"; }
    local stamp="$VENV/.paidui-installed"
    if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
        say "installing Python packages"
        "$PY" -m pip install -q --upgrade pip
        "$PY" -m pip install -q -e "$ROOT[dev]"
        touch "$stamp"
    fi
}

setup() {
    apt_setup
    venv_setup
}

# Start the local services the tests use when they are not already running.
services_up() {
    if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
        say "starting mosquitto on 127.0.0.1:1883"
        if [ -f /etc/mosquitto/mosquitto.conf ]; then
            as_root mosquitto -d -c /etc/mosquitto/mosquitto.conf
        else
            mosquitto -d -p 1883
        fi
        for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null && break; sleep 0.1; done
    fi
    if command -v pg_ctlcluster >/dev/null && ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
        say "starting PostgreSQL"
        as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start \
            || say "PostgreSQL could not be started: its tests will be skipped"
    fi
}

cmd_test() {
    setup
    services_up
    cd "$ROOT"
    say "ruff"
    "$PY" -m ruff check .
    say "mypy"
    "$PY" -m mypy
    say "import contracts"
    "$VENV/bin/lint-imports"
    say "pytest"
    "$PY" -m pytest "$@"
}

cmd_sim() {
    setup
    cd "$ROOT"
    local data="${PAIDUI_DATA:-$ROOT/var/sim}"
    local port="${PAIDUI_HTTP_PORT:-8080}"
    local centre_port="${PAIDUI_CENTRE_PORT:-8090}"
    local broker_port="${PAIDUI_BROKER_PORT:-1884}"
    mkdir -p "$data"
    say "simulated branch, broker, centre and fleet: data in $data"
    # Box, centre and fleet share one simulated clock from 10:00 today (Beijing time),
    # inside business hours whatever the hour here; the demo prints what to open, who is
    # logged in where, the SMS outbox and what to try first once everything is ready.
    exec "$PY" -m sim demo --data-dir "$data/box" --http "127.0.0.1:$port" \
        --centre "$data/centre" --centre-http "127.0.0.1:$centre_port" \
        --broker-port "$broker_port" "$@"
}

main() {
    local cmd="${1:-}"
    shift || true
    case "$cmd" in
        sim) cmd_sim "$@" ;;
        test) cmd_test "$@" ;;
        setup) setup ;;
        pi) apt_setup "${PI_OPERATOR_PACKAGES[@]}"; venv_setup; cd "$ROOT"
            exec "$PY" -m deploy.install pi "$@" ;;
        *) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
}

main "$@"
