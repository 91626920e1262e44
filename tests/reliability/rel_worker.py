"""A worker process for the concurrency tests.

    python rel_worker.py cli GO READY -- ARGS...      run `mlark ARGS...` once GO exists
    python rel_worker.py gcloop GO READY STOP REPO    run repo.gc() until STOP exists; print the count

Every import happens before READY is written, so once GO appears all workers start their real work
within milliseconds of each other.
"""

from __future__ import annotations

import json
import os
import sys
import time


def _wait_for(path: str, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.exit(f"worker: {path} never appeared")
        time.sleep(0.002)


def main() -> None:
    mode, go, ready = sys.argv[1:4]
    from mlark.cli.main import main as cli_main
    from mlark.ops import add, fsck, gc, get, repo  # noqa: F401  (imported before the start signal)

    if mode == "cli":
        args = sys.argv[sys.argv.index("--") + 1:]
        open(ready, "w").close()
        _wait_for(go)
        cli_main(args)
    elif mode == "gcloop":
        stop, root = sys.argv[4:6]
        open(ready, "w").close()
        _wait_for(go)
        runs = []
        while True:
            with repo.Repo.open(root) as r:
                report = r.gc()
            runs.append(report.to_dict())
            if os.path.exists(stop):
                break
            time.sleep(0.01)
        print(json.dumps(runs))
    else:
        sys.exit(f"worker: unknown mode {mode}")


if __name__ == "__main__":
    main()
