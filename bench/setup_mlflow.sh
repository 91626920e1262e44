#!/usr/bin/env bash
# Install the peer for bench/bench_tracking.py: MLflow, pinned, in its own venv
# (bench/.venv-mlflow, gitignored by /bench/.venv-*/), then check that it works
# with its default SQLite backend and no network.
#
#   ./bench/setup_mlflow.sh            # create or update bench/.venv-mlflow
#   PYTHON=python3.11 ./bench/setup_mlflow.sh
#
# The MLflow version is pinned below; bench/mlflow-constraints.txt is the exact
# `pip freeze` of the venv the published figures were measured with, used as
# constraints so every run compares against the same peer. If those exact pins
# do not install on this interpreter, the script falls back to the MLflow pin
# alone and says so.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"
VENV=".venv-mlflow"
MLFLOW_VERSION="3.17.2"

# MLflow must never phone home during the benchmark (the same variables are set
# by bench_tracking.py for every MLflow process it starts).
export MLFLOW_DISABLE_TELEMETRY=true
export DO_NOT_TRACK=true
export MLFLOW_TRACKING_URI=""   # unset: use MLflow's default (sqlite:///mlflow.db in the cwd)

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
if ! "$VENV/bin/python" -m pip install --quiet "mlflow==$MLFLOW_VERSION" -c mlflow-constraints.txt; then
    echo "setup_mlflow: the exact pins in bench/mlflow-constraints.txt did not install here;" >&2
    echo "setup_mlflow: installing mlflow==$MLFLOW_VERSION with whatever dependencies pip resolves" >&2
    "$VENV/bin/python" -m pip install --quiet "mlflow==$MLFLOW_VERSION"
fi

installed="$("$VENV/bin/python" -c 'import mlflow; print(mlflow.__version__)')"
if [ "$installed" != "$MLFLOW_VERSION" ]; then
    echo "setup_mlflow: expected MLflow $MLFLOW_VERSION, found $installed" >&2
    exit 1
fi

# Smoke test, the calls the benchmark makes: start a run on the default backend,
# log a param and a metric, read them back.
PY="$(pwd)/$VENV/bin/python"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
smoke() {
    cd "$tmp"
    unset MLFLOW_TRACKING_URI
    "$PY" - <<'EOF'
import mlflow
from mlflow import MlflowClient

assert mlflow.get_tracking_uri().startswith("sqlite:///"), mlflow.get_tracking_uri()
mlflow.set_experiment("smoke")
with mlflow.start_run() as run:
    mlflow.log_param("max_depth", 8)
    for i in range(3):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
history = MlflowClient().get_metric_history(run.info.run_id, "loss")
assert [m.step for m in history] == [0, 1, 2], history
print("tracking URI", mlflow.get_tracking_uri())
EOF
}
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && unshare -n true 2>/dev/null; then
    export -f smoke
    export PY tmp
    unshare -n bash -c 'set -euo pipefail; smoke'
    where="with no network (unshare -n)"
else
    (smoke)
    where="(network not isolated: not root or no unshare)"
fi
echo "MLflow $installed installed in bench/$VENV; start_run/log_metric/get_metric_history smoke test passed $where"
