"""Data versioning: export a real data set, commit it, edit it, see the history and the storage saved,
pin a version with an alias, and roll back to it byte for byte.

The data set is scikit-learn's bundled copy of the UCI hand-written digits (no network). Images and
labels live in separate files, as annotation sets usually do, so a label fix touches only the labels.
Everything is deterministic (fixed seeds, fixed file modes): two runs give the same version digests.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlark.demo.context import DemoContext, step
from mlark.demo.report import fmt_bytes, fmt_ratio, fmt_time
from mlark.errors import MlarkError

if TYPE_CHECKING:
    import pandas as pd

ARTIFACT = "digits-data"
SEED = 7  # the split, the late batch and the relabelled rows all follow from it
TEST_SHARE = 0.2
LATE_BATCH = 100  # training samples that "arrive" after v1 and are appended in v2
RELABEL_SHARE = 0.02  # share of v1's training labels that the v2 review changes
FILE_MODE = 0o644  # fixed, so the version digests do not depend on the umask
DATA_DIR = "data"
RESTORE_DIR = "restored"

MESSAGE_V1 = (
    "Import the UCI hand-written digits (scikit-learn's bundled copy) as an 80/20 train/test split\n\n"
    "Images (8x8, grey levels 0-16) and labels are separate files keyed by sample_id. The newest "
    f"{LATE_BATCH} training samples are not labelled yet and are left out."
)
BEST_REASON = "v1 is the data our validated baseline was trained on; pin it while the v2 relabelling is reviewed"


def _need_data_extra() -> None:
    try:
        import numpy  # noqa: F401
        import pandas  # noqa: F401
        import skops  # noqa: F401
        import sklearn  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise MlarkError(
            f"the demo needs scikit-learn, skops, pandas and the server ({exc.name} is missing): "
            "pip install 'mlark[demo]'",
            missing=exc.name, extra="demo",
        ) from exc


def _load() -> dict[str, Any]:
    """The digits as two frames (features, labels) keyed by sample_id, and a deterministic split."""
    _need_data_extra()
    import numpy as np
    import sklearn
    from sklearn.datasets import load_digits

    bunch = load_digits(as_frame=True)
    frame = bunch.frame
    pixel_columns = list(bunch.feature_names)
    features = frame[pixel_columns].astype("int64")
    features.insert(0, "sample_id", np.arange(len(frame), dtype="int64"))
    labels = frame[["target"]].rename(columns={"target": "label"}).astype("int64")
    labels.insert(0, "sample_id", np.arange(len(frame), dtype="int64"))

    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(frame))
    n_test = round(len(frame) * TEST_SHARE)
    test_ids = np.sort(order[:n_test])
    train_ids = np.sort(order[n_test:])
    return {
        "features": features,
        "labels": labels,
        "test_ids": test_ids,
        "train_ids": train_ids[:-LATE_BATCH],  # collected first: in v1
        "late_ids": train_ids[-LATE_BATCH:],  # collected last: appended in v2
        "pixel_columns": pixel_columns,
        "sklearn_version": sklearn.__version__,
        "rows": len(frame),
    }


def _write_csv(frame: "pd.DataFrame", path: Path, *, append: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, header=not append, mode="a" if append else "w", lineterminator="\n")
    os.chmod(path, FILE_MODE)


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", newline="\n")
    os.chmod(path, FILE_MODE)


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under folder, by relative path: the bytes the demo later compares a rollback with."""
    out: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            out[path.relative_to(folder).as_posix()] = path.read_bytes()
    return out


def _readme(d: dict[str, Any], changes: list[str]) -> str:
    n_train, n_test = len(d["train_ids"]), len(d["test_ids"])
    text = f"""# Hand-written digits

Source: the UCI ML "Optical Recognition of Handwritten Digits" data set, as bundled with
scikit-learn {d["sklearn_version"]} (`sklearn.datasets.load_digits`): {d["rows"]} images of the digits
0-9, each an 8x8 grid of grey levels 0-16 (NIST bitmaps downsampled by E. Alpaydin and C. Kaynak).
https://archive.ics.uci.edu/dataset/80/optical+recognition+of+handwritten+digits

Layout (CSV, one row per image, joined on `sample_id`):

- `train/features.csv`, `test/features.csv`: `sample_id`, `pixel_0_0` ... `pixel_7_7`
- `train/labels.csv`, `test/labels.csv`: `sample_id`, `label`

Split: {n_test} test and {n_train + len(d["late_ids"])} training images, drawn with seed {SEED}. The
{LATE_BATCH} training images with the highest ids were collected last.

Written by `mlark demo`.
"""
    if changes:
        text += "\n## Changes\n\n" + "".join(f"- {c}\n" for c in changes)
    return text


@step("Export a real data set as files")
def export_v1(ctx: DemoContext) -> None:
    d = _load()
    ctx.state["digits"] = d
    root = ctx.path(DATA_DIR)
    feats, labels = d["features"], d["labels"]
    train, test = d["train_ids"], d["test_ids"]
    _write_csv(feats.iloc[train], root / "train" / "features.csv")
    _write_csv(labels.iloc[train], root / "train" / "labels.csv")
    _write_csv(feats.iloc[test], root / "test" / "features.csv")
    _write_csv(labels.iloc[test], root / "test" / "labels.csv")
    _write_text(root / "README.md", _readme(d, []))
    ctx.state["v1_files"] = _snapshot(root)

    ctx.out.say(f"scikit-learn ships the UCI hand-written digits: {d['rows']} images of 8x8 grey levels, "
                "no download needed. The demo writes them out the way a team would keep them: images and "
                "labels as separate CSV files, split 80/20 with a fixed seed, and a README saying where "
                f"they come from. The {LATE_BATCH} newest training images are held back: they arrive later.")
    rows = {"train": len(train), "test": len(test)}
    table = []
    for rel, data in ctx.state["v1_files"].items():
        if rel.endswith(".csv"):
            columns = data.split(b"\n", 1)[0].count(b",") + 1
            shape = f"{rows[rel.split('/')[0]]} rows x {columns} columns"
        else:
            shape = f"{len(data.splitlines())} lines"
        table.append([f"{DATA_DIR}/{rel}", shape, fmt_bytes(len(data))])
    ctx.out.table("exported files", ["file", "shape", "size"], table)
    ctx.summary["dataset"] = {
        "source": "UCI ML hand-written digits, sklearn.datasets.load_digits",
        "sklearn_version": d["sklearn_version"],
        "rows": d["rows"],
        "feature_columns": len(d["pixel_columns"]),
        "classes": 10,
        "split_seed": SEED,
        "files": sorted(ctx.state["v1_files"]),
    }


@step("Commit it as version 1")
def commit_v1(ctx: DemoContext) -> None:
    d = ctx.state["digits"]
    root = ctx.path(DATA_DIR)
    metadata = {
        "source": "UCI ML hand-written digits (sklearn.datasets.load_digits)",
        "sklearn_version": d["sklearn_version"],
        "rows": {"train": len(d["train_ids"]), "test": len(d["test_ids"])},
        "columns": {"features": 1 + len(d["pixel_columns"]), "labels": 2},
        "feature_names": f"{d['pixel_columns'][0]} .. {d['pixel_columns'][-1]}",
        "label": "label (digit 0-9)",
        "split_seed": SEED,
    }
    outcome = ctx.repo.add_outcome(root, name=ARTIFACT, type="dataset", message=MESSAGE_V1, metadata=metadata)
    v = outcome.version
    ctx.state["v1"] = outcome
    ctx.out.command(f'mlark add {DATA_DIR} --name {ARTIFACT} --type dataset -m "Import the UCI hand-written '
                    f'digits ..." --meta source=... --meta split_seed={SEED}')
    ctx.out.say(f"{v.ref} (digest {v.digest[:12]}): {v.file_count} files, {fmt_bytes(v.size)}. "
                f"mlark cut them into {outcome.stats.chunks} chunks (the tree that lists them is one of them) "
                f"and stored {fmt_bytes(v.new_bytes)} after zstd compression. The message says what and why; "
                "the metadata records the source, the row counts and the seed.")
    ctx.summary["v1"] = {"ref": v.ref, "digest": v.digest, "size": v.size, "new_bytes": v.new_bytes,
                         "chunks": outcome.stats.chunks, "chunks_new": outcome.stats.chunks_new}


@step("Edit the data and commit version 2")
def commit_v2(ctx: DemoContext) -> None:
    import numpy as np
    import pandas as pd

    d = ctx.state["digits"]
    root = ctx.path(DATA_DIR)
    labels_path = root / "train" / "labels.csv"
    train_labels = pd.read_csv(labels_path)
    rng = np.random.default_rng(SEED + 1)
    k = max(1, round(len(train_labels) * RELABEL_SHARE))
    rows = np.sort(rng.choice(len(train_labels), size=k, replace=False))
    old = train_labels.loc[rows, "label"].to_numpy()
    new = (old + rng.integers(1, 10, size=k)) % 10  # always a different digit
    train_labels.loc[rows, "label"] = new
    _write_csv(train_labels, labels_path)

    late = d["late_ids"]
    _write_csv(d["features"].iloc[late], root / "train" / "features.csv", append=True)
    _write_csv(d["labels"].iloc[late], labels_path, append=True)
    changed_ids = [int(i) for i in train_labels.loc[rows, "sample_id"]]
    changes = [
        f"{k} training labels ({RELABEL_SHARE:.0%}) changed after the label review (simulated: rows drawn with "
        f"seed {SEED + 1}); sample_ids {', '.join(map(str, changed_ids[:5]))}, ...",
        f"{len(late)} late-arriving training images appended to train/features.csv and train/labels.csv",
    ]
    _write_text(root / "README.md", _readme(d, changes))

    ctx.out.say(f"Two realistic edits to the working folder {DATA_DIR}/: a label review changes {k} of "
                f"{len(train_labels)} training labels ({RELABEL_SHARE:.0%}, chosen with a fixed seed), and the "
                f"{len(late)} late training images are appended. The test split is untouched.")
    ctx.out.table("what changed in data/", ["file", "change"], [
        ["train/labels.csv", f"{k} labels changed, {len(late)} rows appended"],
        ["train/features.csv", f"{len(late)} rows appended"],
        ["README.md", "Changes section added"],
        ["test/features.csv, test/labels.csv", "unchanged"],
    ])
    message = (
        f"Relabel {k} training digits ({RELABEL_SHARE:.0%}) flagged by the label review; append the {len(late)} "
        "late training images\n\n"
        "The review found labels that disagree with the images; the late batch is now labelled. "
        "The test split is unchanged so scores stay comparable."
    )
    v1 = ctx.state["v1"].version
    metadata = dict(v1.metadata)
    metadata["rows"] = {"train": len(train_labels) + len(late), "test": len(d["test_ids"])}
    metadata["relabelled"] = {"count": k, "sample_ids": changed_ids, "seed": SEED + 1}
    metadata["appended"] = len(late)
    outcome = ctx.repo.add_outcome(root, name=ARTIFACT, message=message, metadata=metadata)
    v = outcome.version
    s = outcome.stats
    ctx.state["v2"] = outcome
    ctx.out.command(f'mlark add {DATA_DIR} --name {ARTIFACT} -m "Relabel {k} training digits ..."')
    per_file = _reuse_by_file(ctx, f"{ARTIFACT}:v1", v.ref)
    ctx.out.table(f"chunks of {v.ref}, file by file", ["file", "size", "chunks", "already stored", "new bytes"],
                  [[f["path"], fmt_bytes(f["size"]), str(f["chunks"]), str(f["chunks_reused"]),
                    fmt_bytes(f["new_chunk_bytes"])] for f in per_file])
    whole = [f["path"] for f in per_file if f["chunks"] and f["chunks_reused"] == f["chunks"]]
    partly = [f["path"] for f in per_file if 0 < f["chunks_reused"] < f["chunks"]]
    ctx.out.say(f"{v.ref} is {fmt_bytes(v.size)}, but only {s.chunks_new} of the {s.chunks} chunks it needs were "
                f"new ({fmt_bytes(s.bytes_new)} before compression; the tree that lists the files is one of them). "
                + (f"Unchanged files ({', '.join(whole)}) were already stored. " if whole else "")
                + (f"Content-defined chunking cut the unchanged start of {', '.join(partly)} into the same chunks "
                   "as in v1, so only the chunks around the change are new. " if partly else "")
                + f"mlark stored {fmt_bytes(v.new_bytes)} for it after compression.")
    ctx.summary["edit"] = {"relabelled_rows": k, "relabelled_sample_ids": changed_ids, "appended_rows": len(late),
                           "train_rows_v1": len(train_labels), "train_rows_v2": len(train_labels) + len(late)}
    ctx.summary["v2"] = {"ref": v.ref, "digest": v.digest, "size": v.size, "new_bytes": v.new_bytes,
                         "chunks": s.chunks, "chunks_new": s.chunks_new, "new_chunk_bytes": s.bytes_new,
                         "files": per_file}


def _reuse_by_file(ctx: DemoContext, old_ref: str, new_ref: str) -> list[dict[str, Any]]:
    """For each file of new_ref: how many of its chunks old_ref already had (read from the two trees)."""
    known = {c.digest for e in ctx.repo.tree(old_ref).files() for c in e.chunks}
    rows = []
    for entry in ctx.repo.tree(new_ref).files():
        fresh = [c for c in entry.chunks if c.digest not in known]
        rows.append({"path": entry.path, "size": entry.size, "chunks": len(entry.chunks),
                     "chunks_reused": len(entry.chunks) - len(fresh), "new_chunk_bytes": sum(c.size for c in fresh)})
    return rows


def _short(ref: str | None) -> str:
    return "-" if ref is None else ref.removeprefix(f"{ARTIFACT}:")


def _folder_bytes(folder: Path) -> tuple[int, int]:
    total = count = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            total += os.path.getsize(os.path.join(dirpath, name))
            count += 1
    return total, count


@step("History and the storage saved")
def history_and_storage(ctx: DemoContext) -> None:
    repo = ctx.repo
    history = repo.history(ARTIFACT)
    ctx.out.table(f"history of {ARTIFACT}", ["version", "time (UTC)", "author", "size", "new bytes", "aliases"],
                  [[_short(v.ref), fmt_time(v.created_at), v.author, fmt_bytes(v.size), fmt_bytes(v.new_bytes),
                    ", ".join(v.aliases) or "-"] for v in history])
    for v in history:
        ctx.out.say(f"{_short(v.ref)}: {v.message.splitlines()[0]}")
    ctx.out.command(f"mlark log {ARTIFACT}")
    v1, v2 = repo.resolve(f"{ARTIFACT}:v1"), repo.resolve(f"{ARTIFACT}:v2")
    s2 = ctx.state["v2"].stats
    packs_bytes, pack_count = _folder_bytes(repo.meta_dir / "packs")
    naive = v1.size + v2.size
    reused = s2.bytes - s2.bytes_new
    ctx.out.table(f"storage of {ARTIFACT}", ["measure", "bytes", ""], [
        [f"{_short(v2.ref)}: size of its files", fmt_bytes(v2.size), ""],
        [f"{_short(v2.ref)}: chunks already stored (reused)", fmt_bytes(reused), f"{fmt_ratio(reused, s2.bytes)} of the bytes read"],
        [f"{_short(v2.ref)}: new chunks, before compression", fmt_bytes(s2.bytes_new), ""],
        [f"{_short(v2.ref)}: newly stored (after zstd)", fmt_bytes(v2.new_bytes), f"{fmt_ratio(v2.new_bytes, v2.size)} of its size"],
        ["two full copies (v1 + v2)", fmt_bytes(naive), ""],
        [f"repository: .mlark/packs ({pack_count} packs)", fmt_bytes(packs_bytes),
         f"{fmt_ratio(packs_bytes, naive)} of two copies"],
    ])
    db_bytes = sum(p.stat().st_size for p in repo.meta_dir.glob("meta.db*") if p.is_file())
    ctx.out.say(f"Keeping both versions costs {fmt_bytes(packs_bytes)} of packs instead of {fmt_bytes(naive)} for "
                f"two copies: {fmt_bytes(naive - packs_bytes)} saved, by storing unchanged chunks once and by "
                "compressing the chunks it stores with zstd. Not counted: the metadata database .mlark/meta.db "
                f"(history, aliases, chunk index), {fmt_bytes(db_bytes)} at this moment with its write-ahead log.")
    ctx.summary["storage"] = {
        "v1_size": v1.size,
        "v2_size": v2.size,
        "v2_bytes_read": s2.bytes,
        "v2_reused_bytes": reused,
        "v2_new_chunk_bytes": s2.bytes_new,
        "v2_new_bytes": v2.new_bytes,
        "naive_bytes": naive,
        "repository_bytes": packs_bytes,
        "pack_count": pack_count,
        "saved_bytes": naive - packs_bytes,
        "saved_fraction": round(1 - packs_bytes / naive, 4) if naive else 0.0,
        "metadata_db_bytes": db_bytes,
    }


@step("Pin the good version with an alias")
def alias_best(ctx: DemoContext) -> None:
    repo = ctx.repo
    repo.alias_set(f"{ARTIFACT}:v1", "best", message=BEST_REASON)
    ctx.out.say("latest moves by itself with every commit. best is a name the team moves on purpose, "
                "with a reason; every move of every alias is logged, so any past state can be shown and restored.")
    ctx.out.command(f'mlark alias set {ARTIFACT}:v1 best -m "{BEST_REASON}"')
    moves = repo.alias_log(ARTIFACT)
    ctx.out.table(f"alias log of {ARTIFACT}, newest first", ["when (UTC)", "alias", "move", "who", "why"], [
        [fmt_time(m.at), m.alias, f"{_short(m.to_dict()['from'])} -> {_short(m.to_dict()['to'])}", m.author,
         m.message.splitlines()[0] if m.message else ""] for m in moves])
    ctx.out.command(f"mlark alias log {ARTIFACT}")
    targets = repo.aliases(ARTIFACT)
    ctx.summary["aliases"] = {name: f"{ARTIFACT}:v{n}" for name, n in sorted(targets.items())}
    ctx.summary["alias_log"] = [m.to_dict() for m in moves]


@step("Roll back to the pinned version")
def rollback(ctx: DemoContext) -> None:
    repo = ctx.repo
    ref = f"{ARTIFACT}@best"
    dest = ctx.path(RESTORE_DIR)
    ctx.out.say("Suppose the review of v2's relabelling is rejected. Ask for the version best points at; mlark "
                "writes its exact files back, checking every chunk's digest as it reads.")
    report = repo.get_report(ref, to=dest)
    ctx.out.command(f"mlark get {ref} --to {RESTORE_DIR}")
    ctx.out.say(f"{ref} is {report.version.ref}: {report.files_written} files, {fmt_bytes(report.bytes_written)} "
                f"written to {RESTORE_DIR}/.")

    original: dict[str, bytes] = ctx.state["v1_files"]
    restored = _snapshot(dest)
    missing = sorted(set(original) - set(restored))
    extra = sorted(set(restored) - set(original))
    differ = sorted(p for p in set(original) & set(restored) if original[p] != restored[p])
    compared = sum(len(original[p]) for p in set(original) & set(restored))
    identical = not (missing or extra or differ)
    problems = "; ".join(f"{label}: {', '.join(items)}" for label, items in
                         (("missing", missing), ("extra", extra), ("different", differ)) if items)
    ctx.require(f"{RESTORE_DIR}/ is byte-for-byte the original v1 export", identical,
                problems or f"{len(restored)} files, {compared:,} bytes compared")

    data_status = repo.status(ctx.path(DATA_DIR))
    ctx.out.command(f"mlark status {DATA_DIR}")
    ctx.require(f"{DATA_DIR}/ (the working folder) matches {data_status.version.ref} (latest)", data_status.clean,
                f"{data_status.unchanged} files unchanged" if data_status.clean else
                f"added {data_status.added}, removed {data_status.removed}, modified {data_status.modified}")
    restored_status = repo.status(dest)
    ctx.out.command(f"mlark status {RESTORE_DIR}")
    rows = [[path, kind] for kind, paths in (("added", restored_status.added), ("removed", restored_status.removed),
                                             ("modified", restored_status.modified)) for path in paths]
    ctx.out.table(f"{RESTORE_DIR}/ (v1) vs latest ({_short(restored_status.version.ref)})", ["file", "status"],
                  rows + [[f"{restored_status.unchanged} other file(s)", "unchanged"]])
    ctx.summary["rollback"] = {
        "ref": ref,
        "resolved": report.version.ref,
        "digest": report.version.digest,
        "path": str(report.path),
        "files": len(restored),
        "bytes_compared": compared,
        "identical": identical,
        "missing": missing,
        "extra": extra,
        "different": differ,
    }
    ctx.summary["status"] = {DATA_DIR: data_status.to_dict(), RESTORE_DIR: restored_status.to_dict()}


STEPS = (export_v1, commit_v1, commit_v2, history_and_storage, alias_best, rollback)
