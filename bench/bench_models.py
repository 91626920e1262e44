#!/usr/bin/env python3
"""Storage of fine-tuned checkpoints: mlark stores only what fine-tuning changed; DVC stores the whole file.

Usage (from the repository root):

    .venv/bin/python bench/bench_models.py [--width 1024] [--depth 26] [--tune 2] [--json] [--keep]

A network of ``--depth`` Linear(width, width) layers and a small classifier head (float32; 105 MiB of
weights with the defaults) is saved with mlark's pytorch flavor (``state_dict`` in safetensors) and
logged by a "pretraining" run with ``run.log_model``. A "fine-tuning" run then changes the last
``--tune`` layers and the head, and logs the result as the next version of the same model artifact.
The script prints the second checkpoint's size, the bytes mlark newly stored for it, and their ratio
(target: <= 10%), then does the same with DVC (``dvc add`` of the model folder, twice) when
``bench/.venv-dvc/bin/dvc`` exists (./bench/setup_dvc.sh), and prints DVC's ratio.

Why it works: safetensors writes tensors at fixed offsets in a fixed order, so a tensor that did not
change has identical bytes at the same place in both files; content-defined chunks over them are the
same chunks, and only the chunks over changed tensors (plus one or two at each edge) are new.

Exit status: 0 target met, 1 target missed, 3 a tool is missing or failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DEFAULT_DVC = BENCH_DIR / ".venv-dvc" / "bin" / "dvc"
TARGET = 0.10

try:
    import torch
    from torch import nn
except ImportError:  # pragma: no cover - reported in main()
    torch = None  # type: ignore[assignment]
    nn = None  # type: ignore[assignment]


if nn is not None:

    class StackedMLP(nn.Module):
        """``depth`` Linear(width, width) layers with ReLU, then a Linear(width, classes) head."""

        def __init__(self, width: int = 1024, depth: int = 26, classes: int = 10) -> None:
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
            self.head = nn.Linear(width, classes)

        def forward(self, x: "torch.Tensor") -> "torch.Tensor":
            for layer in self.layers:
                x = torch.relu(layer(x))
            return self.head(x)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def tree_bytes(path: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                pass
    return total


def fine_tune(net: Any, tune: int, seed: int) -> int:
    """Change the last ``tune`` hidden layers and the head, as fine-tuning would; returns the bytes changed."""
    gen = torch.Generator().manual_seed(seed)
    changed = 0
    with torch.no_grad():
        for module in [*list(net.layers)[len(net.layers) - tune:], net.head]:
            for p in module.parameters():
                p.add_(torch.randn(p.shape, generator=gen) * 1e-3)
                changed += p.numel() * p.element_size()
    return changed


def run_mlark(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    import mlark
    from mlark.tracking.capture import Capture

    # The class is saved by its import path, so it must come from a module, not from __main__ (this script).
    sys.path.insert(0, str(BENCH_DIR))
    from bench_models import StackedMLP

    repo = mlark.Repo.init(work / "mlark", author="bench@mlark")
    init_args = {"width": args.width, "depth": args.depth, "classes": args.classes}
    torch.manual_seed(0)
    net = StackedMLP(**init_args)
    x = np.random.default_rng(0).normal(size=(4, args.width)).astype("float32")
    out: dict[str, Any] = {}
    try:
        versions = []
        for step in ("pretrain", "finetune"):
            if step == "finetune":
                out["changed_bytes"] = fine_tune(net, args.tune, seed=1)
            before = tree_bytes(repo.meta_dir)
            with mlark.start_run(project="bench-models", name=step, repo=repo, capture=Capture.none()) as run:
                start = time.perf_counter()
                version = run.log_model(net, name="mlp", input_example=x, init_args=init_args,
                                        message=f"{step}: {args.depth} x Linear({args.width}, {args.width}) + head")
                seconds = time.perf_counter() - start
            versions.append(version)
            out[step] = {"ref": version.ref, "size": version.size, "new_bytes": version.new_bytes,
                         "seconds": seconds, "repo_growth": tree_bytes(repo.meta_dir) - before}
        # the second checkpoint loads back and computes what the fine-tuned network computes
        loaded = mlark.load_model("mlp:v2", repo=repo)
        with torch.no_grad():
            np.testing.assert_allclose(loaded.predict(x), net(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-6)
        folder = repo.get("mlp:v1", to=work / "checkpoints" / "v1")
        repo.get("mlp:v2", to=work / "checkpoints" / "v2")
        out["weights_file"] = (folder / "model.safetensors").stat().st_size
    finally:
        repo.close()
    return out


def run_dvc(work: Path, exe: Path) -> dict[str, Any]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    ws = work / "dvc"
    ws.mkdir()

    def dvc(*argv: str) -> None:
        proc = subprocess.run([str(exe), *argv], cwd=ws, env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"dvc {' '.join(argv)} failed: {proc.stderr.strip()[-500:]}")

    dvc("init", "--no-scm", "-q")
    dvc("config", "core.analytics", "false")
    dvc("config", "core.check_update", "false")
    dvc("config", "cache.type", "copy")
    dvc("config", "core.site_cache_dir", str(work / "dvc-site-cache"))
    out: dict[str, Any] = {}
    for step, src in (("pretrain", "v1"), ("finetune", "v2")):
        target = ws / "model"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(work / "checkpoints" / src, target)
        before = tree_bytes(ws / ".dvc" / "cache")
        start = time.perf_counter()
        dvc("add", "model")
        out[step] = {"seconds": time.perf_counter() - start,
                     "growth": tree_bytes(ws / ".dvc" / "cache") - before,
                     "size": tree_bytes(target)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=1024, help="width of the hidden layers (default 1024)")
    parser.add_argument("--depth", type=int, default=26, help="number of hidden layers (default 26)")
    parser.add_argument("--classes", type=int, default=10, help="outputs of the head (default 10)")
    parser.add_argument("--tune", type=int, default=2, help="trailing hidden layers fine-tuning changes (default 2)")
    parser.add_argument("--dvc", default=str(DEFAULT_DVC), help="the DVC CLI (default bench/.venv-dvc/bin/dvc)")
    parser.add_argument("--work", default=str(BENCH_DIR / ".work"), help="where to work (default bench/.work)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the repositories in <work>/models-*")
    args = parser.parse_args(argv)
    if not (1 <= args.tune <= args.depth) or args.width < 1 or args.classes < 1:
        parser.error("need 1 <= --tune <= --depth, and positive --width and --classes")
    if torch is None:
        print("bench_models: PyTorch is not installed (pip install 'mlark[torch]')", file=sys.stderr)
        return 3

    Path(args.work).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="models-", dir=args.work))
    result: dict[str, Any] = {"width": args.width, "depth": args.depth, "tune": args.tune}
    status = 0
    try:
        result["mlark"] = m = run_mlark(work, args)
        second = m["finetune"]
        ratio = second["new_bytes"] / second["size"]
        result["mlark_ratio"] = ratio
        result["pass"] = ratio <= TARGET
        status = 0 if result["pass"] else 1
        dvc_exe = Path(args.dvc)
        if dvc_exe.exists():
            try:
                result["dvc"] = d = run_dvc(work, dvc_exe)
                result["dvc_ratio"] = d["finetune"]["growth"] / d["finetune"]["size"]
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                result["dvc_error"] = str(exc)
                status = 3
        else:
            result["dvc_error"] = f"DVC is not installed at {dvc_exe}: run ./bench/setup_dvc.sh to compare"
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    if args.json:
        print(json.dumps(result, indent=2))
        return status
    m = result["mlark"]
    first, second = m["pretrain"], m["finetune"]
    print(f"network: {args.depth} x Linear({args.width}, {args.width}) + Linear({args.width}, {args.classes}), "
          f"float32; fine-tuning changes the last {args.tune} hidden layers and the head")
    print(f"  weights file (model.safetensors): {human(m['weights_file'])}; tensor bytes changed by fine-tuning: "
          f"{human(m['changed_bytes'])} ({m['changed_bytes'] / m['weights_file']:.1%})")
    print(f"mlark (pytorch flavor, run.log_model):")
    print(f"  {first['ref']}: {human(first['size'])}, newly stored {human(first['new_bytes'])} "
          f"({first['seconds']:.1f} s)")
    print(f"  {second['ref']}: {human(second['size'])}, newly stored {human(second['new_bytes'])} "
          f"({second['seconds']:.1f} s); .mlark/ grew by {human(second['repo_growth'])}")
    verdict = "PASS" if result["pass"] else "FAIL"
    print(f"  second checkpoint costs {result['mlark_ratio']:.2%} of its size (target <= {TARGET:.0%}): {verdict}")
    if "dvc" in result:
        d = result["dvc"]["finetune"]
        print(f"DVC (dvc add of the model folder): second checkpoint {human(d['size'])}, cache grew by "
              f"{human(d['growth'])} ({result['dvc_ratio']:.1%} of its size, {d['seconds']:.1f} s)")
        print(f"  bytes stored for the fine-tuned checkpoint, DVC / mlark: "
              f"{d['growth'] / max(second['new_bytes'], 1):.1f}x")
    else:
        print(f"DVC: skipped ({result.get('dvc_error')})")
    return status


if __name__ == "__main__":
    sys.exit(main())
