"""Project discovery and reset-due over every project, as library calls (no CLI)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from helpers import Clock, fingerprint

from budgetctl import Ledger
from budgetctl.costing.request_body import ChatRequest
from budgetctl.errors import CorruptStateError
from budgetctl.maintenance import ProjectResetDue, ResetDueAll, reset_due_all
from budgetctl.projects import DataDirProjects, find_projects


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def three(data_dir: Path, clock: Clock) -> Path:
    """Projects p1, p2, p3 with one daily budget each, charged $0.25."""
    for project in ("p2", "p1", "p3"):
        ledger = Ledger(project, clock=clock)
        ledger.create("carol", "1", duration="daily")
        ledger.charge_cost("carol", "0.25")
    return data_dir


# --- find_projects --------------------------------------------------------------------------------


def test_find_projects_in_a_missing_directory(data_dir: Path) -> None:
    assert find_projects() == DataDirProjects(data_dir, (), False)
    data_dir.mkdir()
    assert find_projects() == DataDirProjects(data_dir, (), True)


def test_find_projects_sorted_and_only_projects(three: Path, tmp_path: Path) -> None:
    (three / "notes.txt").write_text("not a project")
    (three / ".hidden.json").write_text("{}")
    found = find_projects()
    assert found == DataDirProjects(three, ("p1", "p2", "p3"), True)
    assert find_projects(str(three)) == found  # a path given, not only the environment
    elsewhere = find_projects(tmp_path / "other")
    assert (elsewhere.data_dir, elsewhere.projects) == (tmp_path / "other", ())


# --- reset_due_all --------------------------------------------------------------------------------


def test_reset_due_all_resets_every_project(three: Path, clock: Clock) -> None:
    clock.now += timedelta(days=1)
    done = reset_due_all(clock=clock)
    assert done.found.projects == ("p1", "p2", "p3")
    assert [r.project for r in done.results] == ["p1", "p2", "p3"]
    assert [[user for user, _ in r.reset] for r in done.results] == [["carol"]] * 3
    assert (done.failed, done.exit_code) == ((), 0)
    assert all(o.error is None for o in done.outcomes)
    assert Ledger("p2", clock=clock).get("carol").current_cost == 0
    again = reset_due_all(clock=clock)  # idempotent: nothing more has ended
    assert [r.reset for r in again.results] == [(), (), ()]


def test_reset_due_all_dry_run_and_now(three: Path, clock: Clock) -> None:
    before = fingerprint(three)
    assert [r.reset for r in reset_due_all(clock=clock).results] == [(), (), ()]
    later = clock.now + timedelta(days=1)
    preview = reset_due_all(now=later, dry_run=True, clock=clock)
    assert [len(r.reset) for r in preview.results] == [1, 1, 1]
    assert fingerprint(three) == before


def test_one_broken_project_does_not_stop_the_others(three: Path, clock: Clock) -> None:
    (three / "b0rken.json").write_text("{not json")
    clock.now += timedelta(days=1)
    seen: list[tuple[int, int, ProjectResetDue]] = []
    done = reset_due_all(clock=clock, progress=lambda n, total, o: seen.append((n, total, o)))
    assert done.found.projects == ("b0rken", "p1", "p2", "p3")
    assert done.failed == ("b0rken",)
    broken = done.outcomes[0]
    assert broken.result is None and isinstance(broken.error, CorruptStateError)
    assert done.exit_code == broken.error.exit_code == 1
    assert [r.project for r in done.results] == ["p1", "p2", "p3"]
    assert [(n, total, o.project) for n, total, o in seen] == [
        (1, 4, "b0rken"),
        (2, 4, "p1"),
        (3, 4, "p2"),
        (4, 4, "p3"),
    ]
    assert [o for _, _, o in seen] == list(done.outcomes)
    assert (three / "b0rken.json").read_text() == "{not json"


def test_reset_due_all_goes_over_what_was_found(three: Path, clock: Clock) -> None:
    found = find_projects()
    chosen = found._replace(projects=("p3",))
    before = fingerprint(three)
    clock.now += timedelta(days=1)
    done = reset_due_all(chosen, clock=clock)
    assert done.found == chosen and [r.project for r in done.results] == ["p3"]
    after = fingerprint(three)
    changed = {name for name in after if before.get(name) != after[name]}
    assert changed and all(name.startswith("p3") for name in changed)  # p1 and p2 untouched
    assert reset_due_all(found._replace(projects=()), clock=clock).outcomes == ()


def test_reset_due_all_of_a_missing_directory(data_dir: Path, tmp_path: Path) -> None:
    done = reset_due_all(tmp_path / "nowhere")
    assert done.found == DataDirProjects(tmp_path / "nowhere", (), False)
    assert (done.outcomes, done.results, done.failed, done.exit_code) == ((), (), (), 0)


def test_a_bug_is_not_taken_for_a_broken_project(
    three: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Ledger, **_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Ledger, "reset_due", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        reset_due_all(clock=clock)


def test_the_library_doc_example_runs(three: Path) -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "library.md").read_text()
    section = doc.split("## Every project of a data dir, and chat requests", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(compile(example, "docs/library.md", "exec"), namespace)
    assert namespace["found"] == find_projects()
    done, request = namespace["done"], namespace["request"]
    assert isinstance(done, ResetDueAll) and done.failed == () and len(done.results) == 3
    assert isinstance(request, ChatRequest)
    assert (request.model, request.max_tokens) == ("gpt-4o", 200)
