"""Holds through the Ledger API (DESIGN.md section 10), in one process with a hand-moved clock.

Reserve against the user's budget and the project cap (to the cent), plain checks that count open
holds, commit (the actual cost replaces the hold in one step), release, expiry by itself, and the
history every step leaves: after each test the history still replays to the balances.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import T0, Clock, digest

from budgetctl import BudgetExceededError, Ledger
from budgetctl.core import events, rules
from budgetctl.core.rules import Hold
from budgetctl.errors import (
    HoldCommittedError,
    RequestIdConflictError,
    UnknownHoldError,
    UnknownUserError,
    UsageError,
)

MINUTE = timedelta(minutes=1)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def book(data_dir: Path, clock: Clock) -> Iterator[Ledger]:
    ledger = Ledger("p", clock=clock)
    ledger.create("alice", "10")
    ledger.create("bob", "100")
    yield ledger
    assert_replays(ledger)  # whatever the test did, the history explains every balance


def balances(book: Ledger) -> dict[str, Decimal]:
    """The spend the store keeps for each budget (the cap under rules.CAP)."""
    doc = book.store.load(must_exist=True)  # type: ignore[attr-defined]
    found = {user: Decimal(raw["current_cost"]) for user, raw in doc["users"].items()}
    if doc.get("cap"):
        found[rules.CAP] = Decimal(doc["cap"]["current_cost"])
    return found


def stored_holds(book: Ledger) -> set[str]:
    """The ids of the holds in the project's state, expired or not."""
    doc = book.store.load(must_exist=True)  # type: ignore[attr-defined]
    return set(doc.get("holds") or {})


def assert_replays(book: Ledger) -> None:
    assert rules.replay(reversed(book.history())) == balances(book)


def kinds(book: Ledger) -> list[str]:
    """The history's event types, oldest first."""
    return [event.type for event in reversed(book.history())]


def state_file(data_dir: Path) -> str:
    return digest(data_dir / "p.json")


def written(data_dir: Path) -> tuple[str, str]:
    """The state and its history (the request-id index is derived from them, and may be built
    by a read)."""
    return digest(data_dir / "p.json"), digest(data_dir / "p+history.jsonl")


# --- reserve --------------------------------------------------------------------------------------


def test_a_hold_within_the_budget_and_the_cap(book: Ledger, clock: Clock) -> None:
    book.set_cap("50")
    result = book.reserve("alice", "4", model="gpt-4o", ttl="90s")
    assert result.allowed and result.blocked_by is None
    hold = result.hold
    assert isinstance(hold, Hold)
    assert hold.hold_id.startswith("h_") and len(hold.hold_id) == 26
    assert (hold.user, hold.amount) == ("alice", Decimal(4))
    assert (hold.created_at, hold.expires_at) == (T0, T0 + timedelta(seconds=90))
    assert (result.reserved, result.cap_reserved, result.available) == (4, 4, 6)
    assert result.current_cost == 0  # nothing is spent by a hold
    assert book.holds() == book.holds("alice") == [hold]
    assert book.holds("bob") == []
    standing = book.standing("alice")
    assert (standing.reserved, standing.cap_reserved, standing.available) == (4, 4, 6)
    assert book.standing("bob").cap_reserved == 4 and book.standing("bob").reserved == 0
    event = book.history()[0]
    assert isinstance(event, events.HoldPlaced)
    assert event.to_json() == {
        "type": "hold",
        "time": "2026-01-15T12:00:00Z",
        "user": "alice",
        "hold_id": hold.hold_id,
        "amount": "4",
        "expires_at": "2026-01-15T12:01:30Z",
    }
    assert book.reserve("alice", "1").hold.expires_at == T0 + 15 * MINUTE  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("amount", "fits"), [("3", True), ("3.01", False), ("2.99", True), ("3.00000001", False)]
)
def test_a_hold_must_fit_spend_plus_open_holds_under_the_user_budget(
    book: Ledger, data_dir: Path, amount: str, fits: bool
) -> None:
    book.charge_cost("alice", "3")
    book.reserve("alice", "4")
    before = state_file(data_dir), len(book.history())
    result = book.reserve("alice", amount)  # 3 spent + 4 held + 3 lands exactly on 10
    assert result.allowed is fits
    if fits:
        assert result.hold is not None and result.reserved == 4 + Decimal(amount)
        return
    assert (result.hold, result.blocked_by) == (None, "user")
    assert result.reserved == 4 and result.available == 3
    assert (state_file(data_dir), len(book.history())) == before  # a refusal holds nothing


def test_landing_exactly_on_the_budget_then_one_cent_more(book: Ledger) -> None:
    book.charge_cost("alice", "3")
    assert book.reserve("alice", "4").allowed
    assert book.reserve("alice", "3").allowed  # 3 + 4 + 3 = 10 exactly
    assert book.standing("alice").available == 0
    refused = book.reserve("alice", "0.01")
    assert not refused.allowed and refused.blocked_by == "user"
    assert len(book.holds("alice")) == 2


@pytest.mark.parametrize(("amount", "fits"), [("3", True), ("3.01", False)])
def test_a_hold_must_fit_the_project_cap_counting_every_users_holds(
    book: Ledger, data_dir: Path, amount: str, fits: bool
) -> None:
    book.create("carol", "100")
    book.set_cap("10")
    book.charge_cost("alice", "2")
    assert book.reserve("bob", "5").allowed  # another user's hold counts against the cap
    before = state_file(data_dir)
    result = book.reserve("carol", amount)  # 2 spent + 5 held + 3 lands exactly on the cap
    assert result.allowed is fits, result
    if fits:
        assert result.cap_reserved == 5 + Decimal(amount) and result.reserved == Decimal(amount)
        assert book.standing("alice").cap_reserved == 8
    else:
        assert (result.hold, result.blocked_by) == (None, "project")
        assert result.cap_reserved == 5 and result.reserved == 0
        assert state_file(data_dir) == before


def test_the_user_budget_is_checked_before_the_cap(book: Ledger) -> None:
    book.set_cap("5")
    result = book.reserve("alice", "11")
    assert (result.allowed, result.blocked_by) == (False, "user")
    assert book.reserve("bob", "6").blocked_by == "project"


def test_reserve_refuses_bad_input_and_unknown_users(book: Ledger) -> None:
    with pytest.raises(UnknownUserError):
        book.reserve("nobody", "1")
    for ttl in ("0", "-5", "8d", "soon", 0, 7 * 24 * 3600 + 1):
        with pytest.raises(UsageError):
            book.reserve("alice", "1", ttl=ttl)
    with pytest.raises(UsageError):
        book.check_cost("alice", "1", ttl="60s")  # a time to live is for a hold
    assert book.holds() == []


def test_a_dry_run_reserve_says_whether_it_fits_and_holds_nothing(
    book: Ledger, data_dir: Path
) -> None:
    before = written(data_dir)
    result = book.reserve("alice", "10", dry_run=True)
    assert result.allowed and result.hold is not None
    assert not book.reserve("alice", "10.01", dry_run=True).allowed
    assert written(data_dir) == before and book.holds() == []


# --- plain checks and enforced charges count open holds ----------------------------------------


def test_a_plain_check_counts_open_holds(book: Ledger, data_dir: Path) -> None:
    book.reserve("alice", "6")
    before = state_file(data_dir)
    fits = book.check_cost("alice", "4")
    assert fits.allowed and fits.hold is None and fits.reserved == 6 and fits.available == 4
    over = book.check_cost("alice", "4.01")
    assert (over.allowed, over.blocked_by, over.hold) == (False, "user", None)
    book.set_cap("20")
    book.reserve("bob", "9")  # cap: 6 + 9 held of 20
    assert book.check_cost("bob", "5").allowed
    assert book.check_cost("bob", "5.01").blocked_by == "project"
    assert len(book.holds()) == 2  # checks hold nothing
    assert before != state_file(data_dir)  # (the cap and bob's hold were written)


def test_an_enforced_charge_counts_open_holds(book: Ledger) -> None:
    book.reserve("alice", "6")
    with pytest.raises(BudgetExceededError) as refused:
        book.charge_cost("alice", "4.01", enforce=True)
    assert refused.value.scope == "user"
    assert book.charge_cost("alice", "4", enforce=True).current_cost == 4
    book.set_cap("20")
    book.reserve("bob", "10")  # cap: 4 spent + 6 + 10 held of 20
    with pytest.raises(BudgetExceededError) as capped:
        book.charge_cost("bob", "0.01", enforce=True)
    assert capped.value.scope == "project"


# --- commit ---------------------------------------------------------------------------------------


def test_commit_replaces_the_hold_by_the_actual_cost_in_one_step(book: Ledger) -> None:
    book.set_cap("50")
    hold = book.reserve("alice", "4").hold
    assert hold is not None
    count = len(book.history())
    result = book.commit(hold.hold_id, "alice", "3.5", model="gpt-4o", request_id="r1")
    assert (result.held, result.cost, result.over_hold) == (4, Decimal("3.5"), None)
    assert not result.duplicate and not result.hold_missing and result.hold_id == hold.hold_id
    assert result.current_cost == Decimal("3.5") and result.cap is not None
    assert result.cap.current_cost == Decimal("3.5")
    standing = book.standing("alice")
    assert (standing.budget.current_cost, standing.reserved, standing.available) == (3.5, 0, 6.5)
    assert standing.cap_reserved == 0
    assert book.holds() == [] and not stored_holds(book)
    assert len(book.history()) == count + 1  # one event: spent up and reserved down together
    commit = book.history()[0]
    assert isinstance(commit, events.Commit)
    assert commit.to_json() == {
        "type": "commit",
        "time": "2026-01-15T12:00:00Z",
        "user": "alice",
        "model": "gpt-4o",
        "cost": "3.5",
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cached_tokens": 0,
        "request_id": "r1",
        "hold_id": hold.hold_id,
        "held": "4",
    }
    # the request id is remembered too: a plain charge retried under it is a duplicate
    assert book.charge_cost("alice", "3.5", model="gpt-4o", request_id="r1").duplicate


def test_commit_through_charge_methods_with_hold(book: Ledger) -> None:
    hold = book.reserve("alice", "4").hold
    assert hold is not None
    result = book.charge_cost("alice", "1", hold=hold.hold_id)
    assert result.held == 4 and book.holds() == []
    with pytest.raises(UsageError):  # a commit is never refused: no enforce with a hold
        book.charge_cost("alice", "1", hold=book.reserve("alice", "1").hold.hold_id, enforce=True)  # type: ignore[union-attr]
    with pytest.raises(UsageError):
        book.charge_cost("alice", "1", hold="not-a-hold-id")


def test_a_commit_above_its_hold_is_recorded_and_reported(book: Ledger) -> None:
    small = book.reserve("alice", "2").hold
    assert small is not None
    result = book.commit(small.hold_id, "alice", "2.5")
    assert result.over_hold == Decimal("0.5") and not result.hold_missing
    assert result.current_cost == Decimal("2.5")
    whole = book.reserve("alice", "7.5").hold  # fills the budget to the cent
    assert whole is not None
    over = book.commit(whole.hold_id, "alice", "9")  # past the budget: the money is spent
    assert over.over_hold == Decimal("1.5") and over.over_budget
    assert over.current_cost == Decimal("11.5")
    assert book.standing("alice").available == 0


def test_a_commit_of_an_expired_hold_still_records_the_charge(book: Ledger, clock: Clock) -> None:
    hold = book.reserve("alice", "4", ttl="60s").hold
    assert hold is not None
    clock.now += MINUTE  # expires_at exactly: no longer open
    result = book.commit(hold.hold_id, "alice", "3")
    assert result.hold_missing and result.held is None and result.over_hold is None
    assert result.current_cost == 3 and not stored_holds(book)
    assert kinds(book)[-2:] == ["expire", "commit"]  # archived by this write, then committed
    assert book.history()[0].to_json()["held"] is None


def test_a_commit_of_a_released_or_unknown_hold_still_records_the_charge(book: Ledger) -> None:
    hold = book.reserve("alice", "4").hold
    assert hold is not None
    book.release([hold.hold_id])
    result = book.commit(hold.hold_id, "alice", "3")
    assert result.hold_missing and result.current_cost == 3
    assert kinds(book)[-3:] == ["hold", "release", "commit"]
    never = book.commit("h_" + "0" * 24, "alice", "1")
    assert never.hold_missing and never.current_cost == 4


def test_committing_a_hold_twice(book: Ledger, data_dir: Path) -> None:
    hold = book.reserve("alice", "4").hold
    assert hold is not None
    first = book.commit(hold.hold_id, "alice", "3", model="m")
    before = written(data_dir)
    again = book.commit(hold.hold_id, "alice", "3.000", model="m")  # the same charge: a duplicate
    assert again.duplicate and not again.hold_missing and again.over_hold is None
    assert again.current_cost == first.current_cost == 3
    for cost, model in (("2", "m"), ("3", "other")):  # another charge under the same hold
        with pytest.raises(RequestIdConflictError) as conflict:
            book.commit(hold.hold_id, "alice", cost, model=model)
        assert conflict.value.exit_code == 1
    assert written(data_dir) == before  # nothing changed
    assert kinds(book).count("commit") == 1


def test_a_hold_is_committed_only_for_its_own_user(book: Ledger, data_dir: Path) -> None:
    hold = book.reserve("alice", "4").hold
    assert hold is not None
    before = written(data_dir)
    with pytest.raises(UsageError):
        book.commit(hold.hold_id, "bob", "1")
    assert written(data_dir) == before


# --- release --------------------------------------------------------------------------------------


def test_release_frees_the_hold(book: Ledger) -> None:
    hold = book.reserve("alice", "10").hold
    assert hold is not None
    assert not book.reserve("alice", "0.01").allowed
    assert book.release([hold.hold_id]) == [hold]
    assert book.standing("alice").available == 10 and book.holds() == []
    assert book.reserve("alice", "10").allowed
    released = book.history()[1]
    assert isinstance(released, events.HoldReleased) and released.to_json() == {
        "type": "release",
        "time": "2026-01-15T12:00:00Z",
        "user": "alice",
        "hold_id": hold.hold_id,
        "amount": "10",
    }


def test_release_of_an_unknown_hold_is_exit_4_and_changes_nothing(
    book: Ledger, data_dir: Path
) -> None:
    hold = book.reserve("alice", "4").hold
    assert hold is not None
    before = written(data_dir)
    unknown = "h_" + "f" * 24
    with pytest.raises(UnknownHoldError) as error:
        book.release([hold.hold_id, unknown])  # one unknown id: none is released
    assert error.value.exit_code == 4 and error.value.hold_id == unknown
    assert written(data_dir) == before and book.holds() == [hold]
    book.release(hold.hold_id)  # type: ignore[arg-type]  (one id alone is accepted too)
    with pytest.raises(UnknownHoldError):
        book.release([hold.hold_id])  # released already
    with pytest.raises(UsageError):
        book.release(["h_" + "1" * 24, "h_" + "1" * 24])


def test_release_of_a_committed_hold_is_exit_1_and_changes_nothing(
    book: Ledger, data_dir: Path
) -> None:
    hold = book.reserve("alice", "4").hold
    other = book.reserve("alice", "1").hold
    assert hold is not None and other is not None
    book.commit(hold.hold_id, "alice", "4")
    before = written(data_dir)
    with pytest.raises(HoldCommittedError) as error:
        book.release([other.hold_id, hold.hold_id])
    assert error.value.exit_code == 1
    assert written(data_dir) == before and book.holds() == [other]


def test_release_of_an_expired_hold_is_exit_4_whether_or_not_a_write_archived_it(
    book: Ledger, clock: Clock, data_dir: Path
) -> None:
    first = book.reserve("alice", "1", ttl="60s").hold
    second = book.reserve("alice", "2", ttl="60s").hold
    later = book.reserve("bob", "3", ttl="1h").hold
    assert first is not None and second is not None and later is not None
    clock.now += 2 * MINUTE  # both short holds expired; nothing has written since
    before = written(data_dir)
    with pytest.raises(UnknownHoldError):  # not open: as after "expire" is recorded
        book.release([first.hold_id])
    assert written(data_dir) == before
    assert book.release([later.hold_id]) == [later]  # a write: it archives what expired
    assert kinds(book)[-3:] == ["expire", "expire", "release"]
    assert not stored_holds(book)
    with pytest.raises(UnknownHoldError):
        book.release([second.hold_id])


# --- expiry ---------------------------------------------------------------------------------------


def test_a_hold_stops_counting_at_its_expiry_with_nothing_running(
    book: Ledger, clock: Clock, data_dir: Path
) -> None:
    hold = book.reserve("alice", "6", ttl="10m").hold
    assert hold is not None
    clock.now = hold.expires_at - timedelta(microseconds=1)
    assert book.holds() == [hold] and book.standing("alice").reserved == 6
    assert not book.check_cost("alice", "4.01").allowed
    files = written(data_dir)
    clock.now = hold.expires_at  # nothing has run since: the hold stops counting by itself
    assert book.holds() == [] and book.standing("alice").reserved == 0
    assert book.check_cost("alice", "10").allowed
    assert book.view().holds == ()
    assert written(data_dir) == files and stored_holds(book) == {hold.hold_id}
    # the next write archives it as "expire", and it counts for nothing there either
    assert book.reserve("alice", "10").allowed
    assert stored_holds(book) == {book.holds()[0].hold_id}
    assert kinds(book)[-2:] == ["expire", "hold"]
    expired = book.history()[1]
    assert isinstance(expired, events.HoldReleased) and expired.expired
    assert expired.time == hold.expires_at and expired.amount == 6


def test_any_charge_archives_expired_holds(book: Ledger, clock: Clock) -> None:
    book.reserve("alice", "6", ttl="60s")
    clock.now += 2 * MINUTE
    book.charge_cost("bob", "1")  # another user's write
    assert kinds(book)[-2:] == ["expire", "charge"] and not stored_holds(book)


def test_reset_due_archives_expired_holds(book: Ledger, clock: Clock, data_dir: Path) -> None:
    early = book.reserve("alice", "1", ttl="60s").hold
    late = book.reserve("bob", "1", ttl="1h").hold
    assert early is not None and late is not None
    clock.now += 2 * MINUTE
    dry = book.reset_due(dry_run=True)
    assert dry.expired == (early,) and stored_holds(book) == {early.hold_id, late.hold_id}
    done = book.reset_due()
    assert done.expired == (early,) and done.reset == ()
    assert stored_holds(book) == {late.hold_id} and book.holds() == [late]
    assert kinds(book)[-1] == "expire"
    before = written(data_dir)
    assert book.reset_due().expired == ()  # idempotent
    assert written(data_dir) == before


# --- delete, reload, replay -----------------------------------------------------------------------


def test_deleting_a_user_releases_their_holds(book: Ledger) -> None:
    book.set_cap("1000")
    mine = book.reserve("alice", "4").hold
    theirs = book.reserve("bob", "5").hold
    assert mine is not None and theirs is not None
    book.delete(["alice"])
    assert book.holds() == [theirs] and stored_holds(book) == {theirs.hold_id}
    assert book.standing("bob").cap_reserved == 5
    assert kinds(book)[-2:] == ["release", "delete"]
    with pytest.raises(UnknownHoldError):
        book.release([mine.hold_id])
    book.create("alice", "10")  # a new budget starts with nothing held
    assert book.standing("alice").reserved == 0


def test_holds_survive_a_reload(book: Ledger, clock: Clock, data_dir: Path) -> None:
    book.set_cap("30")
    placed = [book.reserve(user, "3", ttl="1h").hold for user in ("alice", "bob", "alice")]
    again = Ledger("p", data_dir, clock=clock)  # a new object, as another process would
    assert sorted(again.holds()) == sorted(placed)  # type: ignore[type-var]
    assert again.standing("alice").reserved == 6 and again.standing("bob").cap_reserved == 9
    assert not again.reserve("bob", "21.01").allowed
    first = placed[0]
    assert first is not None
    assert again.commit(first.hold_id, "alice", "2").held == 3
    assert sorted(book.holds()) == sorted(placed[1:])  # type: ignore[type-var]


def test_the_history_replays_to_the_balances_through_every_hold_step(
    book: Ledger, clock: Clock
) -> None:
    book.set_cap("60")
    book.create("carol", "10", duration="daily")
    ids = []
    for n, user in enumerate(("alice", "bob", "carol") * 3):
        result = book.reserve(user, "1.25", ttl=f"{(n + 1) * 10}m")
        assert result.hold is not None
        ids.append(result.hold.hold_id)
    book.commit(ids[0], "alice", "1")  # under
    book.commit(ids[1], "bob", "2")  # over
    book.release([ids[2]])
    book.charge_cost("carol", "0.5", request_id="c")
    clock.now += 45 * MINUTE  # the fourth hold (40m) has expired
    assert book.commit(ids[3], "alice", "1.5").hold_missing  # recorded all the same
    book.reset_due()
    clock.now += timedelta(days=1)  # carol's period ends, and every other hold expires
    assert book.commit(ids[8], "carol", "0.75").hold_missing
    book.reset(["bob"])
    book.delete(["alice"])
    assert_replays(book)
    assert balances(book) == {"bob": 0, "carol": Decimal("0.75"), rules.CAP: Decimal("5.75")}
    assert kinds(book).count("expire") == 6 and book.holds() == [] and not stored_holds(book)
