"""The registry with real scikit-learn models logged through runs: register, promote, aliases, history,
rollback; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from registry_testkit import Trained, state, train
from sqlalchemy import select

from mlark.errors import AliasInUse, Conflict, InvalidInput, InvalidName, NotFound
from mlark.lineage import edges
from mlark.meta.schema import lineage_edges
from mlark.ops import registry
from mlark.ops.add import VagueMessageWarning
from mlark.ops.repo import Repo


def stages(repo: Repo, model: str = "churn") -> dict[str, list[int]]:
    return registry.show(repo, model).stages


def test_full_lifecycle_with_history_and_rollback(repo: Repo, churn: Trained) -> None:
    before = datetime.now(timezone.utc)
    assert registry.register(repo, "churn", "churn-rf:v1", "First candidate: depth 3 on the May export") == 1
    assert registry.register(repo, "churn", "churn-rf@best", "Depth 6 on the June export",
                             description="deeper forest", tags={"team": "growth"}) == 2
    model = registry.show(repo, "churn")
    assert [(v.number, v.version, v.stage) for v in model.versions] == [
        (1, "churn-rf:v1", "development"), (2, "churn-rf:v2", "development")]
    assert model.versions[1].description == "deeper forest" and model.versions[1].tags == {"team": "growth"}
    assert [v.source_run_id for v in model.versions] == [r.id for r in churn.runs]

    registry.promote(repo, "churn", 1, "staging", "Passed offline eval on the May holdout")
    registry.promote(repo, "churn", 1, "production", "Shadow traffic for a week without incident")
    assert stages(repo) == {"development": [2], "production": [1]}

    repo.author = "bob"
    events = registry.promote(repo, "churn", 2, "production", "AUC +0.02 over v1 on the May holdout")
    assert stages(repo) == {"production": [2], "archived": [1]}  # one holder: the previous one is archived
    assert {(e.number, e.from_value, e.to_value) for e in events} == {
        (2, "development", "production"), (1, "production", "archived")}

    registry.set_alias(repo, "churn", 2, "champion", "Best AUC so far")
    registry.set_alias(repo, "churn", 1, "champion", "v2 has a calibration bug")
    assert registry.show(repo, "churn").aliases == {"champion": 1}

    history = registry.history(repo, "churn")
    after = datetime.now(timezone.utc)
    assert [(e.kind, e.number, e.field, e.from_value, e.to_value) for e in history] == [
        ("alias", 1, "champion", "2", "1"),
        ("alias", 2, "champion", None, "2"),
        ("stage", 2, "production", "development", "production"),
        ("stage", 1, "archived", "production", "archived"),
        ("stage", 1, "production", "staging", "production"),
        ("stage", 1, "staging", "development", "staging"),
        ("registered", 2, None, None, "2"),
        ("registered", 1, None, None, "1"),
    ]
    for e in history:  # who, when, from, to, why
        assert e.author in ("alice", "bob") and before <= e.at <= after and e.message
    assert [e.author for e in history[:4]] == ["bob"] * 4 and history[4].author == "alice"
    assert history[0].message == "v2 has a calibration bug"
    assert history[3].message == "archived: version 2 moved to production (AUC +0.02 over v1 on the May holdout)"
    assert [e.at for e in history] == sorted((e.at for e in history), reverse=True)
    assert history[6].version == "churn-rf:v2"

    # rollback production: back to version 1, version 2 back to where it was; recorded
    rolled = registry.rollback(repo, "churn", "production", "Latency regression in v2")
    assert stages(repo) == {"development": [2], "production": [1]}
    assert {(e.number, e.from_value, e.to_value) for e in rolled} == {
        (1, "archived", "production"), (2, "production", "development")}
    assert all(e.message == "rollback of production to version 1: Latency regression in v2" for e in rolled)
    assert registry.history(repo, "churn")[:2] == sorted(rolled, key=lambda e: e.id, reverse=True)
    assert registry.resolve(repo, "models:/churn@production").number == 1

    # a rollback is itself a move: rolling back again undoes it
    registry.rollback(repo, "churn", "production")
    assert stages(repo) == {"production": [2], "archived": [1]}

    # aliases roll back the same way
    registry.rollback(repo, "churn", "champion", "Calibration fixed")
    assert registry.show(repo, "churn").aliases == {"champion": 2}
    assert registry.history(repo, "churn")[0].message == "rollback of @champion to version 2: Calibration fixed"


def test_keep_previous_per_call_and_per_model(repo: Repo, churn: Trained) -> None:
    registry.register(repo, "churn", "churn-rf:v1", "First candidate")
    registry.register(repo, "churn", "churn-rf:v2", "Second candidate")
    registry.promote(repo, "churn", 1, "production", "Baseline goes live")
    registry.promote(repo, "churn", 2, "production", "A/B test against v1", archive_previous=False)
    assert stages(repo) == {"production": [1, 2]}
    assert registry.resolve(repo, "models:/churn@production").number == 2  # the one that entered last
    registry.rollback(repo, "churn", "production", "A/B test over")
    assert stages(repo) == {"development": [2], "production": [1]}

    registry.set_tags(repo, "churn", {"mlark.archive_previous": "false"}, "Canary releases keep the old model")
    registry.promote(repo, "churn", 2, "production", "Canary")
    assert stages(repo) == {"production": [1, 2]}
    registry.promote(repo, "churn", 1, "archived", "Canary done")
    registry.promote(repo, "churn", 1, "production", "Back as canary", archive_previous=True)  # the call wins
    assert stages(repo) == {"production": [1], "archived": [2]}
    with pytest.raises(InvalidInput, match="mlark.archive_previous must be true or false"):
        registry.set_tags(repo, "churn", {"mlark.archive_previous": "sometimes"}, "Typo")


def test_staging_holds_several_and_stage_refs_pick_the_latest_entrant(repo: Repo, churn: Trained) -> None:
    registry.register(repo, "churn", "churn-rf:v1", "First candidate")
    registry.register(repo, "churn", "churn-rf:v2", "Second candidate")
    registry.promote(repo, "churn", 2, "staging", "Candidate for the June release")
    registry.promote(repo, "churn", 1, "staging", "Candidate too, as a fallback")
    assert stages(repo) == {"staging": [1, 2]}
    assert registry.resolve(repo, "models:/churn@staging").number == 1
    assert registry.resolve(repo, "models:/churn@Staging").number == 1  # stages are case-insensitive
    assert registry.resolve(repo, "models:/churn").number == 2  # latest registered
    assert registry.resolve(repo, "models:/churn@latest").number == 2
    assert registry.resolve(repo, "churn/1").number == 1
    assert registry.promote(repo, "churn", 1, "staging", "Again") == []  # already there: nothing recorded
    assert len(registry.history(repo, "churn")) == 4


def test_versions_by_reference(repo: Repo, churn: Trained) -> None:
    registry.register(repo, "churn", "churn-rf:v1", "First candidate")
    registry.register(repo, "churn", "churn-rf:v2", "Second candidate")
    registry.promote(repo, "churn", "models:/churn/2", "staging", "By reference")
    registry.promote(repo, "churn", "churn-rf:v1", "staging", "By artifact version")
    registry.set_alias(repo, "churn", "2", "champion", "By number as text")
    registry.set_alias(repo, "churn", "models:/churn@champion", "stable", "Through another alias")
    assert stages(repo) == {"staging": [1, 2]}
    assert registry.show(repo, "churn").aliases == {"champion": 2, "stable": 2}


def test_alias_names(repo: Repo, churn: Trained) -> None:
    registry.register(repo, "churn", "churn-rf:v1", "First candidate")
    before = state(repo)
    for alias, fragment in (("production", "is a lifecycle stage"), ("Archived", "is a lifecycle stage"),
                            ("latest", "kept by mlark"), ("v2", "looks like a version number"),
                            ("../x", "invalid alias")):
        with pytest.raises(InvalidName, match=fragment):
            registry.set_alias(repo, "churn", 1, alias, "Should be refused")
    assert state(repo) == before
    assert registry.set_alias(repo, "churn", 1, "champion", "First") != []
    assert registry.set_alias(repo, "churn", 1, "champion", "Same again") == []
    with pytest.raises(NotFound, match="has no alias 'nope'; its aliases: champion"):
        registry.remove_alias(repo, "churn", "nope")
    removed = registry.remove_alias(repo, "churn", "champion", "Retired")
    assert [(e.field, e.from_value, e.to_value, e.message) for e in removed] == [("champion", "1", None, "Retired")]
    with pytest.raises(NotFound, match="has no alias 'champion'"):
        registry.resolve(repo, "models:/churn@champion")


def test_rollback_without_an_earlier_holder_changes_nothing(repo: Repo, churn: Trained) -> None:
    registry.register(repo, "churn", "churn-rf:v1", "First candidate")
    with pytest.raises(NotFound, match="no version of churn has ever been in production"):
        registry.rollback(repo, "churn", "production")
    registry.promote(repo, "churn", 1, "production", "First release")
    registry.set_alias(repo, "churn", 1, "champion", "First champion")
    before = state(repo)
    with pytest.raises(Conflict, match="churn@production has no earlier holder"):
        registry.rollback(repo, "churn", "production")
    with pytest.raises(Conflict, match="churn@champion has no earlier holder"):
        registry.rollback(repo, "churn", "champion")
    with pytest.raises(NotFound, match="churn@other has never been set"):
        registry.rollback(repo, "churn", "other")
    assert state(repo) == before


def test_list_and_search_always_carry_stages_and_aliases(repo: Repo, churn: Trained) -> None:
    registry.register(repo, "churn", "churn-rf:v1", "First candidate")
    registry.register(repo, "churn", "churn-rf:v2", "Second candidate", tags={"algo": "rf"})
    registry.register(repo, "churn-eu", "churn-rf:v2", "Same model, EU traffic")
    registry.promote(repo, "churn", 2, "production", "Go live")
    registry.set_alias(repo, "churn", 1, "baseline", "Keep the first one handy")
    listed = {m.name: m for m in registry.list_models(repo)}
    assert sorted(listed) == ["churn", "churn-eu"]
    assert listed["churn"].stages == {"development": [1], "production": [2]}
    assert listed["churn"].aliases == {"baseline": 1}
    doc = listed["churn"].to_dict()
    assert [(v["number"], v["stage"], v["aliases"]) for v in doc["versions"]] == [
        (1, "development", ["baseline"]), (2, "production", [])]
    found = registry.search(repo, "churn*", stage="production")
    assert [(v.model, v.number, v.stage) for v in found] == [("churn", 2, "production")]
    assert [(v.model, v.number) for v in registry.search(repo, alias="baseline")] == [("churn", 1)]
    assert [(v.model, v.number) for v in registry.search(repo, tags={"algo": "rf"})] == [("churn", 2)]
    assert [v.model for v in registry.search(repo, "churn-*")] == ["churn-eu"]
    with pytest.raises(InvalidInput, match="unknown stage 'live'"):
        registry.search(repo, stage="live")


def test_registering_records_a_lineage_edge_and_refuses_twice(repo: Repo, churn: Trained) -> None:
    registry.register(repo, "churn", "churn-rf:v1", "First candidate")
    mv = registry.resolve(repo, "models:/churn/1")
    with repo.db.read() as conn:
        rows = conn.execute(select(lineage_edges).where(lineage_edges.c.kind == edges.REGISTERED_AS)).all()
    assert [(r.src_type, r.src_id, r.dst_type, r.dst_id) for r in rows] == [
        ("version", churn.models[0].id, "registered_model_version", mv.id)]
    before = state(repo)
    with pytest.raises(Conflict, match=r"churn-rf:v1 is already registered in churn as version 1 \(models:/churn/1\)"):
        registry.register(repo, "churn", "churn-rf:v1", "Again")
    assert state(repo) == before
    # another registered model may list the same version
    assert registry.register(repo, "churn-eu", "churn-rf:v1", "EU candidate") == 1


def test_descriptions_and_tags_are_recorded(repo: Repo, churn: Trained) -> None:
    registry.register(repo, "churn", "churn-rf:v1", "First candidate")
    registry.set_description(repo, "churn", "Who will cancel next month", "Describe the task")
    registry.set_description(repo, "churn", "Depth-3 forest", "Describe v1", version=1)
    registry.set_tags(repo, "churn", {"owner": "growth", "tier": "1"}, "Ownership")
    registry.set_tags(repo, "churn", {"tier": None}, "Tier no longer used")
    model = registry.show(repo, "churn")
    assert model.description == "Who will cancel next month" and model.tags == {"owner": "growth"}
    assert model.versions[0].description == "Depth-3 forest"
    kinds = [(e.kind, e.number, e.field, e.from_value, e.to_value) for e in registry.history(repo, "churn")[:5]]
    assert kinds == [
        ("tags", None, "tier", "1", None),
        ("tags", None, "tier", None, "1"),
        ("tags", None, "owner", None, "growth"),
        ("description", 1, None, None, "Depth-3 forest"),
        ("description", None, None, None, "Who will cancel next month"),
    ]


def test_vague_messages_are_accepted_with_a_warning(repo: Repo, churn: Trained) -> None:
    with pytest.warns(VagueMessageWarning, match="does not say what changed or why"):
        registry.register(repo, "churn", "churn-rf:v1", "update")
    with pytest.raises(InvalidInput, match="a message is required"):
        registry.promote(repo, "churn", 1, "staging", "  ")


def test_rm_refuses_a_registered_version_unless_forced(repo: Repo, churn: Trained) -> None:
    registry.register(repo, "churn", "churn-rf:v1", "First candidate")
    registry.promote(repo, "churn", 1, "production", "Go live")
    with pytest.raises(AliasInUse, match=r"churn-rf:v1 is registered as models:/churn/1 \(production\)"):
        repo.rm("churn-rf:v1")
    repo.rm("churn-rf:v1", force=True)
    assert registry.show(repo, "churn").versions[0].version_removed
    import mlark

    with pytest.raises(NotFound, match="models:/churn@production is churn-rf:v1, which was removed"):
        mlark.load_model("models:/churn@production", repo=repo)
    registry.register(repo, "churn", "churn-rf:v2", "Replacement")
    with pytest.raises(Conflict, match="its artifact version churn-rf:v1 was removed"):
        registry.set_alias(repo, "churn", 1, "old", "Point at the removed one")


def test_logging_the_same_model_twice_in_a_run_is_one_version(repo: Repo, churn: Trained) -> None:
    # the manifest names the run, so the same forest logged by one run twice is the same bytes: one version
    from sklearn.ensemble import RandomForestClassifier

    from registry_testkit import COLUMNS, QUIET, churn_frame
    from mlark.ops import run_start

    frame = churn_frame(3)
    model = RandomForestClassifier(max_depth=2, n_estimators=5, random_state=0).fit(frame[COLUMNS], frame["churned"])
    with run_start.start_run(repo, "churn", "twice", capture_options=QUIET) as run:
        first = run.log_model(model, name="churn-small", input_example=frame[COLUMNS].head())
        second = run.log_model(model, name="churn-small", input_example=frame[COLUMNS].head())
    assert first.ref == second.ref == "churn-small:v1"
    assert first.metadata["run_id"] == run.id and first.metadata["flavor"] == "sklearn"
    assert [v.ref for v in run.outputs()] == ["churn-small:v1"]
