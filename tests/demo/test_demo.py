"""mlark demo: run through the real console script, then check what it left behind independently."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("pandas")

import mlark  # noqa: E402
from mlark.cli.exit import ExitStatus  # noqa: E402

ARTIFACT = "digits-data"
AUTHOR = "demo-tester@ci"


def mlark_exe() -> str:
    exe = shutil.which("mlark", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("the mlark console script is not installed next to this Python (pip install -e .)")
    return exe


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLARK_AUTHOR": AUTHOR}
    env.pop("MLARK_REPO", None)
    return subprocess.run([mlark_exe(), *args], capture_output=True, text=True, encoding="utf-8",
                          errors="replace", cwd=cwd, env=env, timeout=300)


def run_demo_json(workdir: Path, *extra: str) -> dict[str, Any]:
    proc = run_cli("demo", "--json", "--workdir", str(workdir), *extra)
    assert proc.returncode == ExitStatus.OK, proc.stderr
    return json.loads(proc.stdout)  # the whole of stdout is one JSON document: no narration mixed in


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("demo") / "workspace"
    return workdir, run_demo_json(workdir)


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


# -- the outcome the JSON summary reports -----------------------------------------------------------

def test_summary_reports_every_step_ok(demo: tuple[Path, dict[str, Any]]) -> None:
    workdir, summary = demo
    assert summary["ok"] is True
    assert summary["workdir"] == str(workdir.resolve())
    assert len(summary["steps"]) >= 8
    assert summary["v1"]["ref"] == f"{ARTIFACT}:v1" and summary["v2"]["ref"] == f"{ARTIFACT}:v2"
    assert summary["v1"]["digest"] != summary["v2"]["digest"]


def test_v2_stores_far_fewer_new_bytes_than_its_size(demo: tuple[Path, dict[str, Any]]) -> None:
    _, summary = demo
    v2, storage = summary["v2"], summary["storage"]
    assert v2["new_bytes"] * 5 < v2["size"]
    # the saving is deduplication, not only compression: most of v2's chunks were already stored
    assert v2["chunks_new"] < v2["chunks"]
    assert storage["v2_reused_bytes"] > storage["v2_new_chunk_bytes"]
    files = {f["path"]: f for f in v2["files"]}
    for unchanged in ("test/features.csv", "test/labels.csv"):
        assert files[unchanged]["chunks_reused"] == files[unchanged]["chunks"]
    appended = files["train/features.csv"]
    assert 0 < appended["chunks_reused"] < appended["chunks"]  # an append re-uses the start of the file
    assert storage["repository_bytes"] * 2 < storage["naive_bytes"]
    assert storage["naive_bytes"] == storage["v1_size"] + storage["v2_size"]
    assert storage["saved_bytes"] == storage["naive_bytes"] - storage["repository_bytes"]


def test_rollback_and_fsck_pass(demo: tuple[Path, dict[str, Any]]) -> None:
    _, summary = demo
    rollback = summary["rollback"]
    assert rollback["identical"] is True
    assert rollback["resolved"] == f"{ARTIFACT}:v1"
    assert rollback["digest"] == summary["v1"]["digest"]
    assert rollback["missing"] == rollback["extra"] == rollback["different"] == []
    assert summary["status"]["data"]["clean"] is True
    assert summary["fsck"]["ok"] is True and summary["fsck"]["errors"] == []
    # two data versions, two model versions, the scored file and its scores
    assert summary["fsck"]["versions_checked"] == 6


# -- the repository, opened independently ---------------------------------------------------------

def test_repository_holds_two_versions_and_the_aliases(demo: tuple[Path, dict[str, Any]]) -> None:
    workdir, summary = demo
    with mlark.Repo.open(workdir) as repo:
        history = repo.history(ARTIFACT)
        assert [v.number for v in history] == [2, 1]
        v2, v1 = history
        assert v1.type == v2.type == "dataset"
        assert (v1.digest, v2.digest) == (summary["v1"]["digest"], summary["v2"]["digest"])
        assert v1.author == v2.author == AUTHOR
        assert "digits" in v1.message and "Relabel" in v2.message
        assert v1.metadata["rows"] == {"train": 1338, "test": 359}
        assert v2.metadata["rows"]["train"] == 1338 + 100
        assert v2.parent_number == 1
        assert v2.new_bytes == summary["v2"]["new_bytes"] < v2.size

        assert repo.aliases(ARTIFACT) == {"latest": 2, "best": 1}
        assert repo.resolve(f"{ARTIFACT}@best").digest == v1.digest
        best_moves = repo.alias_log(ARTIFACT, "best")
        assert len(best_moves) == 1
        assert best_moves[0].to_number == 1 and best_moves[0].from_number is None
        assert "baseline" in best_moves[0].message
        assert [m.to_number for m in repo.alias_log(ARTIFACT, "latest")] == [2, 1]

        packs = sum(p.stat().st_size for p in (repo.meta_dir / "packs").rglob("*.pack"))
        # The storage step measured the packs holding the data versions; later steps (tracked runs)
        # may only add to them.
        assert packs >= summary["storage"]["repository_bytes"]
        assert repo.fsck().ok


def test_restored_and_working_folders_hold_the_versions_bytes(demo: tuple[Path, dict[str, Any]]) -> None:
    workdir, _ = demo
    with mlark.Repo.open(workdir) as repo:
        for ref, folder in ((f"{ARTIFACT}:v1", workdir / "restored"), (f"{ARTIFACT}:v2", workdir / "data")):
            tree = repo.tree(ref)
            on_disk = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
            assert on_disk == sorted(e.path for e in tree.files())
            for entry in tree.files():
                assert (folder / entry.path).read_bytes() == b"".join(repo.read_file(ref, entry.path))


def test_the_edit_is_the_one_the_messages_describe(demo: tuple[Path, dict[str, Any]]) -> None:
    workdir, summary = demo
    v1, v2 = workdir / "restored", workdir / "data"
    labels1, labels2 = read_csv(v1 / "train" / "labels.csv"), read_csv(v2 / "train" / "labels.csv")
    assert len(labels2) == len(labels1) + 100
    assert [r["sample_id"] for r in labels2[: len(labels1)]] == [r["sample_id"] for r in labels1]
    changed = [int(a["sample_id"]) for a, b in zip(labels1, labels2) if a["label"] != b["label"]]
    assert changed == summary["edit"]["relabelled_sample_ids"]
    assert len(changed) == round(0.02 * len(labels1))
    features1 = (v1 / "train" / "features.csv").read_bytes()
    features2 = (v2 / "train" / "features.csv").read_bytes()
    assert features2.startswith(features1) and features2.count(b"\n") == features1.count(b"\n") + 100
    for name in ("test/features.csv", "test/labels.csv"):
        assert (v1 / name).read_bytes() == (v2 / name).read_bytes()


# -- narration, determinism and --force -----------------------------------------------------------

def test_text_narration_then_force_rerun_is_deterministic(demo: tuple[Path, dict[str, Any]],
                                                           tmp_path: Path) -> None:
    _, first = demo
    workdir = tmp_path / "again"
    proc = run_cli("demo", "--workdir", str(workdir))
    assert proc.returncode == ExitStatus.OK, proc.stderr
    assert "Step 1/" in proc.stdout and "fsck" in proc.stdout
    assert "byte-for-byte" in proc.stdout and "✗" not in proc.stdout
    with mlark.Repo.open(workdir) as repo:
        assert [v.digest for v in repo.history(ARTIFACT)] == [first["v2"]["digest"], first["v1"]["digest"]]

    again = run_demo_json(workdir, "--force")
    assert again["wiped_previous_demo"] is True
    assert (again["v1"]["digest"], again["v2"]["digest"]) == (first["v1"]["digest"], first["v2"]["digest"])
    assert again["storage"]["repository_bytes"] == first["storage"]["repository_bytes"]
    with mlark.Repo.open(workdir) as repo:
        assert [v.number for v in repo.history(ARTIFACT)] == [2, 1]  # wiped, not stacked on the old one


# -- refusals -------------------------------------------------------------------------------------

def test_refuses_a_non_empty_folder_that_is_not_a_demo_workspace(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("my thesis\n")
    for extra in ((), ("--force",)):
        proc = run_cli("demo", "--workdir", str(folder), *extra)
        assert proc.returncode == ExitStatus.USAGE
        assert "not empty" in proc.stderr and "not a demo workspace" in proc.stderr and "--workdir" in proc.stderr
        assert proc.stdout == ""
    assert sorted(os.listdir(folder)) == ["notes.txt"]
    assert (folder / "notes.txt").read_text() == "my thesis\n"

    proc = run_cli("demo", "--json", "--workdir", str(folder))
    assert proc.returncode == ExitStatus.USAGE
    doc = json.loads(proc.stdout)
    assert doc["error"] == "InvalidInput" and doc["exit_status"] == "USAGE"


def test_refuses_a_previous_demo_without_force(demo: tuple[Path, dict[str, Any]]) -> None:
    workdir, _ = demo
    before = sorted(os.listdir(workdir))
    proc = run_cli("demo", "--workdir", str(workdir))
    assert proc.returncode == ExitStatus.USAGE
    assert "previous demo" in proc.stderr and "--force" in proc.stderr
    assert sorted(os.listdir(workdir)) == before


def test_force_never_wipes_what_the_demo_did_not_create(tmp_path: Path) -> None:
    from mlark.demo.context import write_marker

    folder = tmp_path / "ws"
    (folder / "data").mkdir(parents=True)
    write_marker(folder, [".mlark", "data"])
    (folder / "thesis.tex").write_text("\\section{}\n")
    proc = run_cli("demo", "--force", "--workdir", str(folder))
    assert proc.returncode == ExitStatus.USAGE
    assert "thesis.tex" in proc.stderr and "refusing to wipe" in proc.stderr
    assert (folder / "thesis.tex").exists() and (folder / "data").is_dir()


def test_refuses_a_file_as_workdir(tmp_path: Path) -> None:
    target = tmp_path / "afile"
    target.write_text("x")
    proc = run_cli("demo", "--workdir", str(target))
    assert proc.returncode == ExitStatus.USAGE
    assert "not a folder" in proc.stderr
    assert target.read_text() == "x"


# -- structure ------------------------------------------------------------------------------------

def test_cli_import_stays_light_and_help_lists_demo() -> None:
    code = (
        "import sys; import mlark.cli.main; "
        "heavy = sorted(m for m in ('sklearn', 'pandas', 'numpy', 'pyarrow') if m in sys.modules); "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
    proc = run_cli("--help")
    assert proc.returncode == 0 and "demo" in proc.stdout
    proc = run_cli("demo", "--help")
    assert proc.returncode == 0 and "--workdir" in proc.stdout and "--force" in proc.stdout


def test_a_new_step_plugs_into_the_pipeline(tmp_path: Path) -> None:
    """How a later capability extends the demo: a @step function sharing the context."""
    from mlark.demo import RecordingReporter, run, step
    from mlark.demo import workspace

    @step("Count the artifacts")
    def count(ctx: Any) -> None:
        n = len(ctx.repo.artifacts())
        ctx.out.say(f"{n} artifacts")
        ctx.path("notes").mkdir()
        ctx.summary["artifacts"] = n

    out = RecordingReporter()
    summary = run(tmp_path / "ws", force=False, out=out, steps=[*workspace.STEPS, count])
    assert summary["artifacts"] == 0 and summary["steps"] == ["Create a fresh workspace", "Count the artifacts"]
    assert out.of("step") == [(1, 2, "Create a fresh workspace"), (2, 2, "Count the artifacts")]
    assert "0 artifacts" in out.of("say")
    # what a step creates through ctx.path() is recorded, so --force may later wipe it
    summary = run(tmp_path / "ws", force=True, out=RecordingReporter(), steps=[*workspace.STEPS])
    assert summary["wiped_previous_demo"] is True
    assert not (tmp_path / "ws" / "notes").exists()


def test_the_default_pipeline_order() -> None:
    from mlark.demo import pipeline

    titles = [s.title for s in pipeline()]
    assert titles[0] == "Create a fresh workspace"
    assert titles[-1].startswith("Verify every byte")


def test_tracked_runs_used_the_versions_they_name(demo: tuple[Path, dict[str, Any]]) -> None:
    import mlark

    workdir, summary = demo
    runs = summary["runs"]
    assert [r["data"] for r in runs] == ["digits-data:v1", "digits-data:v2"]
    assert all(r["status"] == "finished" and r["points"] == 10 for r in runs)
    assert summary["query"]["used_v1"] == ["forest-on-v1"]
    # Independently of the demo's own report: the repository records each run's input version.
    with mlark.Repo.open(workdir) as repo:
        for r in runs:
            run = mlark.get_run(r["id"], repo=repo)
            assert [v.ref for v in run.inputs()] == [r["data"]]
            assert run.params["data"] == r["data"]
            assert len(run.history("test_accuracy").values) == 10


def test_registry_lineage_and_diff_steps(demo: tuple[Path, dict[str, Any]]) -> None:
    import mlark

    workdir, summary = demo
    assert summary["diff"]["rows"]["changed"] == 27 and summary["diff"]["rows"]["added"] == 100
    assert summary["registry"]["stage"] == "production"
    assert "models:/digits@production" in summary["lineage"]["impact"]
    with mlark.Repo.open(workdir) as repo:
        # Independently: the registry's production version is the logged model, trained on digits-data@best.
        lineage = mlark.registry.lineage("models:/digits@production", repo=repo)
        assert lineage.version.ref == summary["registry"]["artifact"]
        assert [v.ref for v in lineage.inputs] == ["digits-data:v1"]


def test_serving_followed_the_promotion_and_rollback(demo: tuple[Path, dict[str, Any]]) -> None:
    import mlark

    workdir, summary = demo
    serving = summary["serving"]
    assert serving["failed"] == 0 and serving["requests"] == sum(serving["phases"])
    assert all(n > 0 for n in serving["phases"])  # champion, challenger, champion again
    with mlark.Repo.open(workdir) as repo:
        # Independently: the registry recorded the promotion and the rollback, and production is back on v1.
        events = [(e.kind, e.from_value, e.to_value, e.message) for e in mlark.registry.history("digits", repo=repo)]
        assert events[0][:3] == ("stage", "archived", "production") and "rollback of production" in events[0][3]
        assert ("stage", "development", "production", "Challenger promoted for a trial") in events
        assert mlark.registry.lineage("models:/digits@production", repo=repo).version.ref == "digits-forest:v1"
        assert serving["challenger"] == "digits-forest:v2"


def test_batch_scores_are_recorded_with_their_lineage(demo: tuple[Path, dict[str, Any]]) -> None:
    import mlark
    import pyarrow.parquet as pq

    workdir, summary = demo
    batch = summary["batch"]
    assert batch["recorded"] == "digits-scores:v1" and batch["model_version"] == "digits-forest:v1"
    with mlark.Repo.open(workdir) as repo:
        scores = pq.read_table(repo.get("digits-scores:v1", to=workdir / "check-scores") / "scores.parquet")
        scored = pq.read_table(repo.get(batch["input_version"], to=workdir / "check-input") / "digits-to-score.parquet")
        model = mlark.load_model("models:/digits@production", repo=repo)
        features = scored.to_pandas().set_index("sample_id")
        assert scores.column("sample_id").to_pylist() == features.index.tolist()
        assert scores.column("prediction").to_pylist() == model.predict(features).tolist()
        assert scores.num_rows == batch["rows"] == 359
        ups = {n.ref for n in mlark.lineage("digits-scores:v1", direction="up", repo=repo).topological()}
        assert {"digits-forest:v1", batch["input_version"], "digits-data:v1", f"run:{batch['run']}"} <= ups
