"""diff: compare two versions (files, tables, model manifests and weights) or two runs.

References: a version (``churn-data``, ``churn-data:v3``, ``churn-data@best``,
``churn-data:<digest prefix>``), a registered model version (``models:/churn/2``,
``models:/churn@production``) or a run (``run:<id or unique prefix>``); a ``Version`` or ``Run``
object will do too. Both sides must be the same kind of thing: two versions of one artifact type,
or two runs (:class:`~mlark.diff.errors.KindMismatch`, an ``InvalidInput``, otherwise).

- Files come from the two trees alone (:mod:`mlark.ops.diff_files`): no file bytes are read.
- ``table=PATH`` (a file or a folder of table files) diffs that table of each version with
  :func:`mlark.diff.diff_tables`, by ``key`` or by content; ``table=True`` takes the one table file
  each version holds. A ``key`` alone implies ``table=True``.
- Model versions (type ``model``, or both holding ``mlark-model.json``): the manifests are compared
  (:mod:`mlark.ops.diff_models`) and the safetensors and ONNX files present in both, when their
  content differs, with :func:`mlark.diff.diff_state_dicts` / :func:`mlark.diff.diff_onnx`.

Only the files a semantic diff needs are materialised, verified (:mod:`mlark.ops.diff_local`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from mlark.core.names import validate_relpath
from mlark.core.refs import REF_FORMS, RegistryRef, parse_any_ref
from mlark.core.tree import Tree
from mlark.core.types import Version
from mlark.diff.errors import KindMismatch
from mlark.diff.result import DiffResult
from mlark.errors import InvalidInput, InvalidRef, NotFound
from mlark.ops.diff_files import diff_trees
from mlark.ops.diff_local import LocalFiles, entries_under, read_small, relabel, relabelled_errors
from mlark.ops.diff_models import ManifestDiff, diff_manifests, weight_pairs
from mlark.ops.diff_result import VersionDiff, VersionInfo, describe_type
from mlark.ops.diff_runs import RunDiff, diff_runs

if TYPE_CHECKING:
    from mlark.ops.repo import Repo

__all__ = ["DIFF_REF_FORMS", "RUN_SCHEME", "RunDiff", "VersionDiff", "diff", "diff_versions"]

RUN_SCHEME = "run:"
MODEL_TYPE = "model"
MANIFEST = "mlark-model.json"
DIFF_REF_FORMS = (f"a version ({REF_FORMS}), a registered model version (models:/NAME/N, models:/NAME@ALIAS) "
                  "or a run (run:<id or unique prefix>)")
Key = str | Sequence[str] | None


def diff(repo: "Repo", a: Any, b: Any, *, table: str | bool | None = None, key: Key = None,
         only_diff: bool = False, sample: int = 10) -> VersionDiff | RunDiff:
    """Compare ``a`` (old) with ``b`` (new): two versions, or two runs (see the module docstring)."""
    side_a, side_b = _side(repo, a), _side(repo, b)
    if isinstance(side_a, str) and isinstance(side_b, str):
        if table is not None or key is not None:
            raise InvalidInput("--table and --key compare tables inside versions; runs are compared by their "
                               "params and metrics", field="table")
        return diff_runs(repo, side_a, side_b, only_diff=only_diff)
    if isinstance(side_a, Version) and isinstance(side_b, Version):
        if side_a.type != side_b.type:
            raise KindMismatch(
                f"cannot diff {side_a.ref} ({describe_type(side_a.type)}) with {side_b.ref} "
                f"({describe_type(side_b.type)}): compare two versions of one type", kind_a=side_a.type,
                kind_b=side_b.type, ref_a=side_a.ref, ref_b=side_b.ref)
        return diff_versions(repo, side_a, side_b, table=table, key=key, sample=sample)
    what = [f"{_text(x)} ({'a run' if isinstance(s, str) else describe_type(s.type)})"
            for x, s in ((a, side_a), (b, side_b))]
    raise KindMismatch(f"cannot diff {what[0]} with {what[1]}: compare two versions, or two runs",
                       kind_a="run" if isinstance(side_a, str) else side_a.type,
                       kind_b="run" if isinstance(side_b, str) else side_b.type)


def _text(ref: Any) -> str:
    if isinstance(ref, Version):
        return ref.ref
    if hasattr(ref, "id") and hasattr(ref, "project"):
        return f"run:{ref.id}"
    return str(ref)


def _side(repo: "Repo", ref: Any) -> Version | str:
    """A Version, or a run's full id."""
    from mlark.ops.runs import Run

    if isinstance(ref, Version):
        return ref
    if isinstance(ref, Run):
        return ref.id
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidRef(f"diff takes two references, each {DIFF_REF_FORMS}; got {str(ref)[:80]!r}",
                         field="ref", value=str(ref)[:80])
    text = ref.strip()
    if text.startswith(RUN_SCHEME):
        run_id = text[len(RUN_SCHEME):]
        if not run_id:
            raise InvalidRef(f"{text!r} names no run: write run:<id or unique prefix>", field="ref", value=text)
        from mlark.tracking.records import resolve_run_id

        with repo.db.read() as conn:
            return resolve_run_id(conn, run_id)
    parsed = parse_any_ref(text)
    if isinstance(parsed, RegistryRef):
        from mlark.ops.registry import resolve_version

        return resolve_version(repo, parsed)
    if parsed.path is not None:
        raise InvalidRef(f"{text!r} names a path inside a version; diff whole versions "
                         f"({parsed.name}@{parsed.alias or 'latest'}) and pick the file with --table {parsed.path}",
                         field="ref", value=text)
    return repo.resolve(text)


# --------------------------------------------------------------------------- versions


def diff_versions(repo: "Repo", a: Version, b: Version, *, table: str | bool | None = None, key: Key = None,
                  sample: int = 10) -> VersionDiff:
    """Compare two versions: files from the trees; tables, model manifests and weights as asked and found."""
    if key is not None and table is None:
        table = True
    if table is False:
        table = None
    tree_a, tree_b = repo.tree(a), repo.tree(b)
    files = diff_trees(tree_a, tree_b)
    is_model = a.type == MODEL_TYPE or (_has_file(tree_a, MANIFEST) and _has_file(tree_b, MANIFEST))
    notes: list[str] = []
    tables: dict[str, DiffResult] = {}
    models: dict[str, DiffResult] = {}
    manifest: ManifestDiff | None = None
    with LocalFiles(repo) as local:
        if table is not None:
            path_a, path_b = _table_paths(a, tree_a, b, tree_b, table)
            label = path_b if path_a == path_b else f"{path_a} -> {path_b}"
            tables[label] = _engine(local, (a, tree_a, path_a), (b, tree_b, path_b), "table", key=key,
                                    sample=sample)
        if is_model:
            manifest = _manifests(repo, a, tree_a, b, tree_b, notes)
            for path_a, path_b, kind, same in weight_pairs(files):
                if same:
                    continue
                label = path_b if path_a == path_b else f"{path_a} -> {path_b}"
                models[label] = _engine(local, (a, tree_a, path_a), (b, tree_b, path_b), kind)
    return VersionDiff(VersionInfo.of(a), VersionInfo.of(b), files, tables, manifest, models, tuple(notes))


def _has_file(tree: Tree, path: str) -> bool:
    entry = tree.get(path)
    return entry is not None and entry.type == "file"


def _engine(local: LocalFiles, side_a: tuple[Version, Tree, str], side_b: tuple[Version, Tree, str], kind: str,
            **options: Any) -> DiffResult:
    """Run the diff engine of ``kind`` on local copies, naming the files ``name:v3/path`` in what it says."""
    from mlark.diff import diff_onnx, diff_state_dicts, diff_tables

    labels: dict[str, str] = {}
    paths = []
    for version, tree, path in (side_a, side_b):
        local_path = local.path(version, tree, path)
        labels[str(local_path)] = f"{version.ref}/{path}"
        paths.append(local_path)
    with relabelled_errors(labels):
        if kind == "table":
            result: DiffResult = diff_tables(paths[0], paths[1], **options)
        elif kind == "state_dict":
            result = diff_state_dicts(paths[0], paths[1])
        else:
            result = diff_onnx(paths[0], paths[1])
    return relabel(result, labels)  # type: ignore[no-any-return]


def _table_files(tree: Tree) -> list[str]:
    from mlark.diff.table.source import format_of_name

    return [e.path for e in tree.files()
            if format_of_name(e.path) and not e.path.rsplit("/", 1)[-1].startswith((".", "_"))]


def _table_paths(a: Version, tree_a: Tree, b: Version, tree_b: Tree, table: str | bool) -> tuple[str, str]:
    if table is True:
        found = [(v, _table_files(t)) for v, t in ((a, tree_a), (b, tree_b))]
        for version, names in found:
            if len(names) != 1:
                listed = f": {', '.join(names[:8])}" + (", ..." if len(names) > 8 else "") if names else ""
                raise InvalidInput(
                    f"{version.ref} holds {len(names)} table files (Parquet, CSV, Arrow){listed}; "
                    + ("name the one to compare with --table PATH" if names else "nothing to compare as a table"),
                    field="table", ref=version.ref, tables=names)
        return found[0][1][0], found[1][1][0]
    if not isinstance(table, str):
        raise InvalidInput(f"table must be a path inside the versions or True, got {type(table).__name__}",
                           field="table")
    path = validate_relpath(table.rstrip("/"))
    for version, tree in ((a, tree_a), (b, tree_b)):
        if not entries_under(tree, path):
            names = _table_files(tree)
            hint = (f"; its table files: {', '.join(names[:8])}" + (", ..." if len(names) > 8 else "")
                    if names else "; it holds no table files")
            raise NotFound(f"{version.ref} has no file or folder {path!r}{hint}", ref=version.ref, path=path)
    return path, path


def _manifests(repo: "Repo", a: Version, tree_a: Tree, b: Version, tree_b: Tree,
               notes: list[str]) -> ManifestDiff | None:
    from mlark.errors import MlarkError
    from mlark.models.manifest import Manifest

    entries = [tree_a.get(MANIFEST), tree_b.get(MANIFEST)]
    missing = [v.ref for v, e in zip((a, b), entries) if e is None or e.type != "file"]
    if missing:
        notes.append(f"{' and '.join(missing)} {'has' if len(missing) == 1 else 'have'} no {MANIFEST}: "
                     "model manifests not compared")
        return None
    ea, eb = entries
    assert ea is not None and eb is not None
    if ea.digest == eb.digest:
        return ManifestDiff((), (), (), (), (), ())
    manifests = []
    for version, entry in ((a, ea), (b, eb)):
        try:
            manifests.append(Manifest.decode(read_small(repo, entry)))
        except MlarkError as exc:
            if exc.__class__.__module__.startswith("mlark.models"):  # a manifest mlark cannot read, not a bad store
                notes.append(f"{MANIFEST} of {version.ref} cannot be read ({exc}): model manifests not compared")
                return None
            raise
    return diff_manifests(manifests[0], manifests[1])
