#!/usr/bin/env bash
# Install the peer for bench/bench_storage.py: DVC, pinned, in its own venv
# (bench/.venv-dvc, gitignored), then check that it works with no network.
#
#   ./bench/setup_dvc.sh            # create or update bench/.venv-dvc
#   PYTHON=python3.11 ./bench/setup_dvc.sh
#
# The DVC version is pinned below; bench/dvc-constraints.txt is the exact
# `pip freeze` of the venv the published figures were measured with, used as
# constraints so every run compares against the same peer. If those exact pins
# do not install on this interpreter, the script falls back to the DVC pin alone
# and says so.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"
VENV=".venv-dvc"
DVC_VERSION="3.67.1"

# DVC must never phone home or wait on the network during the benchmark.
export DVC_NO_ANALYTICS=1

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
if ! "$VENV/bin/python" -m pip install --quiet "dvc==$DVC_VERSION" -c dvc-constraints.txt; then
    echo "setup_dvc: the exact pins in bench/dvc-constraints.txt did not install here;" >&2
    echo "setup_dvc: installing dvc==$DVC_VERSION with whatever dependencies pip resolves" >&2
    "$VENV/bin/python" -m pip install --quiet "dvc==$DVC_VERSION"
fi

installed="$("$VENV/bin/dvc" --version)"
if [ "$installed" != "$DVC_VERSION" ]; then
    echo "setup_dvc: expected DVC $DVC_VERSION, found $installed" >&2
    exit 1
fi

# Smoke test, the same commands the benchmark runs: init, add, checkout.
# Run it without a network when we can (root + unshare), to prove DVC never waits on one.
DVC="$(pwd)/$VENV/bin/dvc"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
smoke() {
    cd "$tmp"
    "$DVC" init --no-scm -q
    "$DVC" config core.analytics false
    "$DVC" config core.check_update false
    "$DVC" config cache.type copy
    "$DVC" config core.site_cache_dir "$tmp/site-cache"
    head -c 1048576 /dev/urandom > smoke.bin
    cp smoke.bin expected.bin
    "$DVC" add -q smoke.bin
    rm smoke.bin
    "$DVC" checkout -q
    cmp -s smoke.bin expected.bin
}
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && unshare -n true 2>/dev/null; then
    export -f smoke
    export DVC tmp
    unshare -n bash -c 'set -euo pipefail; smoke'
    where="with no network (unshare -n)"
else
    (smoke)
    where="(network not isolated: not root or no unshare)"
fi
echo "DVC $installed installed in bench/$VENV; init/add/checkout smoke test passed $where"
