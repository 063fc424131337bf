#!/usr/bin/env bash
# The test command of lifeboat: ./tests/run.sh [extra `cargo test` args]
#
# Installs what the integration tests need (Debian restic and postgresql, garage 2.5.0 built from
# crates.io into a cache directory), then runs `cargo test --locked --all-targets`. Every server
# the tests use is started by the tests themselves on 127.0.0.1.
#
# Environment:
#   LIFEBOAT_CACHE       cache root (default $HOME/.cache/lifeboat): garage install + cargo target dir
#   LIFEBOAT_GARAGE_BIN  use this garage binary instead of the cached one
#   LIFEBOAT_PG_BIN      directory of the PostgreSQL server binaries (initdb, pg_ctl, createdb)
#   CARGO_TARGET_DIR     respected when set; default $LIFEBOAT_CACHE/target
set -euo pipefail

GARAGE_VERSION=2.5.0

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '==> %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "error: need root (or sudo) to run: $*" >&2
        exit 1
    fi
}

# (a) restic (Debian package), a C compiler for the crates that build C code, systemd-analyze.
apt_pkgs=()
command -v restic >/dev/null 2>&1 || apt_pkgs+=(restic)
command -v cc >/dev/null 2>&1 || apt_pkgs+=(gcc libc6-dev)
# systemd-analyze validates the hardened unit in deploy/ (nothing is started through systemd).
command -v systemd-analyze >/dev/null 2>&1 || apt_pkgs+=(systemd)
# curl runs deploy/garage-init.sh against a test Garage (tests/deploy.rs).
command -v curl >/dev/null 2>&1 || apt_pkgs+=(curl)
# PostgreSQL server binaries (initdb, pg_ctl): the store conformance suite starts a throw-away
# server on 127.0.0.1 (tests/common/postgres.rs). Debian keeps them in /usr/lib/postgresql/*/bin.
have_initdb() {
    [ -n "${LIFEBOAT_PG_BIN:-}" ] && [ -x "$LIFEBOAT_PG_BIN/initdb" ] && return 0
    command -v initdb >/dev/null 2>&1 && return 0
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}
have_initdb || apt_pkgs+=(postgresql)
# Reports printed to PDF through headless Chromium with Chinese fonts (tests/report_pdf.rs; fc-list
# from fontconfig checks for a CJK font), their pages checked with poppler's pdftoppm/pdftotext;
# chromedriver drives the dashboard tests (tests/dashboard.rs).
command -v chromium >/dev/null 2>&1 || apt_pkgs+=(chromium)
command -v chromedriver >/dev/null 2>&1 || apt_pkgs+=(chromium-driver)
[ -e /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || apt_pkgs+=(fonts-noto-cjk)
command -v fc-list >/dev/null 2>&1 || apt_pkgs+=(fontconfig)
command -v pdftoppm >/dev/null 2>&1 || apt_pkgs+=(poppler-utils)
if [ "${#apt_pkgs[@]}" -gt 0 ]; then
    say "installing ${apt_pkgs[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq "${apt_pkgs[@]}"
fi
say "restic: $(restic version)"
have_initdb || { echo "error: initdb still missing after installing postgresql" >&2; exit 1; }

# (b) garage
LIFEBOAT_CACHE="${LIFEBOAT_CACHE:-$HOME/.cache/lifeboat}"
export LIFEBOAT_CACHE
if [ -n "${LIFEBOAT_GARAGE_BIN:-}" ] && [ -x "$LIFEBOAT_GARAGE_BIN" ]; then
    say "garage: using LIFEBOAT_GARAGE_BIN=$LIFEBOAT_GARAGE_BIN"
else
    garage_bin="$LIFEBOAT_CACHE/garage/bin/garage"
    if [ ! -x "$garage_bin" ] || ! "$garage_bin" --version 2>/dev/null | grep -qF "$GARAGE_VERSION"; then
        say "installing garage $GARAGE_VERSION into $LIFEBOAT_CACHE/garage (cargo install; about 10 min on a cold machine)"
        mkdir -p "$LIFEBOAT_CACHE/garage"
        cargo install garage --version "$GARAGE_VERSION" --locked --force \
            --no-default-features --features bundled-libs,sqlite \
            --root "$LIFEBOAT_CACHE/garage"
    fi
    export LIFEBOAT_GARAGE_BIN="$garage_bin"
fi
say "garage: $("$LIFEBOAT_GARAGE_BIN" --version 2>&1 | head -n 1)"

# (c) cargo target dir, shared between CI's fresh clones
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$LIFEBOAT_CACHE/target}"
say "cargo target dir: $CARGO_TARGET_DIR"

# (d) tests (integration tests use the debug binary via CARGO_BIN_EXE_lifeboat).
# All targets by default; when the caller selects targets (./tests/run.sh --test garage_smoke),
# pass the selection alone: cargo would otherwise run the union with --all-targets.
all_targets=(--all-targets)
for arg in "$@"; do
    case "$arg" in
        --) break ;;
        --lib | --bins | --bin | --bin=* | --tests | --test | --test=* | --examples | --example | \
            --example=* | --benches | --bench | --bench=* | --doc | --all-targets)
            all_targets=()
            break
            ;;
    esac
done
say "cargo test --locked ${all_targets[*]-} $*"
cargo test --locked "${all_targets[@]}" "$@"
say "all tests passed"
