"""Random sequences of ledger operations on every store, checked against the reference model.

A hypothesis state machine creates budgets, charges (with and without request ids, retries the
same charge and sends conflicting ones under a used id, charges exactly up to a total and one cent
past it with ``enforce``), changes, resets, runs ``reset_due`` twice at moments that move forward
(sometimes exactly onto a period boundary), sets and clears the project cap and deletes users. After
every step each store's balances, periods and over-budget flags equal the model's as of the same
``now``; on a store that keeps a history (``has_history``), its replay equals every balance too.

One difference is allowed, and only for a store without history (the hosted store): a cap set (or
moved onto a new grid) counts the charges made earlier in its period from the history, which such a
store does not have; its figure must lie between 0 and the exact one, and the model takes it over.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from budgetctl.store.interface import Store
from tests.contract.driver import Failed, ModelDriver, StoreDriver
from tests.contract.model import DURATIONS, KEEP, Balance, LedgerModel, Outcome

if TYPE_CHECKING:
    from tests.contract.conftest import Replayed, StoreFactory

T0 = datetime(2026, 1, 15, 12, tzinfo=timezone.utc)
CENT = Decimal("0.01")
USERS = ["alice", "bob", "carol"]
DURATION_NAMES = list(DURATIONS)
durations = st.sampled_from(DURATION_NAMES)
settings_to = st.one_of(st.just(KEEP), durations)
totals = st.sampled_from(["0", "1", "2.5", "5", "10"]).map(Decimal)
cap_totals = st.sampled_from(["0", "3", "7.5", "20"]).map(Decimal)
costs = st.sampled_from(["0", "0.000001", "0.25", "1", "2.5"]).map(Decimal)
request_ids = st.one_of(st.none(), st.sampled_from(["r1", "r2", "r3"]))
models = st.sampled_from([None, "gpt-4o", "claude"])
steps = st.one_of(
    st.sampled_from([0, 1, 3599, 3600, 6 * 3600, 86400, 2 * 86400 + 1]),
    st.integers(min_value=0, max_value=2 * 86400),
)


class ContractMachine(RuleBasedStateMachine):
    """One store and the model, driven by the same operations. Time moves forward only, and by at
    most 2 days a step, so no request id gets old enough to be forgotten (90 days)."""

    def __init__(
        self,
        factory: StoreFactory,
        check_replay: Callable[[Store, datetime], None],
        history_of: Callable[[Store], Replayed],
    ) -> None:
        super().__init__()
        self.factory = factory
        self.check_replay = check_replay
        self.history_of = history_of
        self.store = StoreDriver(factory())
        self.model = ModelDriver(LedgerModel())
        self.now = T0
        self.sent: list[dict[str, Any]] = []  # charges sent with a request id

    def both(self, op: str, /, **kwargs: Any) -> Any:
        got = self.store.run(op, **kwargs)
        want = self.model.run(op, **kwargs)
        assert got == want, f"{self.factory.name} store: {op}({kwargs})"
        return got

    # --- time ----------------------------------------------------------------------------------

    @rule(seconds=steps)
    def advance(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule(user=st.sampled_from([*USERS, None]))
    def advance_to_boundary(self, user: str | None) -> None:
        """To the end of a user's period (or the cap's, for None), when it is at most 2 days on."""
        users, cap = self.model.model.snapshot(self.now)
        balance = cap if user is None else users.get(user)
        end = balance.next_reset_at if balance is not None else None
        if end is not None and end - self.now <= timedelta(days=2):
            self.now = end

    # --- budgets -------------------------------------------------------------------------------

    @initialize(budgets=st.tuples(*[st.tuples(st.just(user), totals, durations) for user in USERS]))
    def first_budgets(self, budgets: tuple[tuple[str, Decimal, str | None], ...]) -> None:
        self.both("create", budgets=list(budgets), now=self.now)

    @rule(
        users=st.lists(st.sampled_from(USERS), min_size=1, max_size=2, unique=True),
        total=totals,
        duration=durations,
        replace=st.booleans(),
    )
    def create(self, users: list[str], total: Decimal, duration: str | None, replace: bool) -> None:
        budgets = [(user, total, duration) for user in users]
        self.both("create", budgets=budgets, now=self.now, replace=replace)

    @rule(user=st.sampled_from(USERS), total=st.one_of(st.none(), totals), duration=settings_to)
    def change(self, user: str, total: Decimal | None, duration: Any) -> None:
        if total is None and duration is KEEP:
            total = Decimal(1)
        self.both("change", user=user, now=self.now, total=total, duration=duration)

    @rule(user=st.sampled_from([*USERS, None]))
    def reset(self, user: str | None) -> None:
        self.both("reset", users=None if user is None else [user], now=self.now)

    @rule(user=st.sampled_from([*USERS, None]))
    def reset_due(self, user: str | None) -> None:
        users = None if user is None else [user]
        first = self.both("reset_due", now=self.now, users=users)
        again = self.both("reset_due", now=self.now, users=users)
        if not isinstance(first, Failed):
            assert again == (first[0], {}, None), "reset-due closed a period twice"

    @rule(users=st.lists(st.sampled_from(USERS), min_size=1, max_size=2, unique=True))
    def delete(self, users: list[str]) -> None:
        self.both("delete", users=users, now=self.now)

    # --- the cap -------------------------------------------------------------------------------

    @rule(total=st.one_of(st.none(), st.just("clear"), cap_totals), duration=settings_to)
    def set_cap(self, total: Decimal | str | None, duration: Any) -> None:
        """Set the cap (or change it, or move it onto a new grid), or clear it."""
        if total == "clear":
            self.both("clear_cap", now=self.now)
            return
        kwargs = {"now": self.now, "total": total, "duration": duration}
        got = self.store.run("set_cap", **kwargs)
        want = self.model.run("set_cap", **kwargs)
        if self.model.backfilled and not self.factory.has_history:
            assert isinstance(got, Balance) and isinstance(want, Balance)
            assert Decimal(0) <= got.spent <= want.spent
            assert got._replace(spent=Decimal(0), over_budget=False) == want._replace(
                spent=Decimal(0), over_budget=False
            )
            model = self.model.model
            assert model.cap is not None
            model.cap.spent = got.spent
        else:
            assert got == want, f"{self.factory.name} store: set_cap({kwargs})"

    @rule(user=st.sampled_from(USERS))
    def get(self, user: str) -> None:
        self.both("get", user=user, now=self.now)

    # --- charges -------------------------------------------------------------------------------

    @rule(
        batch=st.lists(
            st.fixed_dictionaries(
                {
                    "step": steps,
                    "user": st.sampled_from(USERS),
                    "how": st.sampled_from(
                        ["fixed", "to user total", "past user total", "to cap", "past cap"]
                    ),
                    "cost": costs,
                    "request_id": request_ids,
                    "model": models,
                    "tokens": st.integers(min_value=0, max_value=3),
                    "enforce": st.booleans(),
                    "dry_run": st.sampled_from([False, False, False, True]),
                }
            ),
            min_size=1,
            max_size=3,
        )
    )
    def charge(self, batch: list[dict[str, Any]]) -> None:
        """A few charges, ``step`` seconds apart; some cost exactly what is left of the user's
        budget or of the cap, or one cent more."""
        for spec in batch:
            self._charge(**spec)

    def _charge(
        self,
        step: int,
        user: str,
        how: str,
        cost: Decimal,
        request_id: str | None,
        model: str | None,
        tokens: int,
        enforce: bool,
        dry_run: bool,
    ) -> None:
        self.now += timedelta(seconds=step)
        users, cap = self.model.model.snapshot(self.now)
        target = cap if how in ("to cap", "past cap") else users.get(user)
        if how != "fixed" and target is not None:
            cost = max(target.total - target.spent, Decimal(0))
            if how.startswith("past"):
                cost += CENT
        kwargs = {
            "user": user,
            "cost": cost,
            "now": self.now,
            "request_id": request_id,
            "model": model,
            "prompt_tokens": tokens,
            "completion_tokens": 2 * tokens,
            "enforce": enforce,
            "dry_run": dry_run,
        }
        self.both("charge", **kwargs)
        if request_id is not None:
            self.sent.append(kwargs)

    @rule(
        data=st.data(),
        change=st.sampled_from(
            ["none", "user", "cost", "model", "prompt", "completion", "cached", "enforce"]
        ),
    )
    def retry(self, data: st.DataObject, change: str) -> None:
        """A charge sent before under a request id, again: as it was (a duplicate, if it was
        charged), or with one thing changed (a conflict; ``enforce`` is not part of the charge)."""
        if not self.sent:
            return
        kwargs = dict(data.draw(st.sampled_from(self.sent)))
        kwargs.update(now=self.now, dry_run=False)
        if change == "user":
            kwargs["user"] = data.draw(st.sampled_from([u for u in USERS if u != kwargs["user"]]))
        elif change == "cost":
            kwargs["cost"] += CENT
        elif change == "model":
            kwargs["model"] = "other-model" if kwargs["model"] else "gpt-4o"
        elif change in ("prompt", "completion", "cached"):
            key = f"{change}_tokens"
            kwargs[key] = kwargs.get(key, 0) + 1
        elif change == "enforce":
            kwargs["enforce"] = not kwargs["enforce"]
        got = self.both("charge", **kwargs)
        if isinstance(got, Outcome) and change in ("none", "enforce"):
            # the id was charged by this retry, or before it (then the retry is a duplicate)
            assert self.model.model.ids[kwargs["request_id"]].cost == kwargs["cost"]

    # --- after every step ------------------------------------------------------------------------

    @invariant()
    def balances_agree(self) -> None:
        got = self.store.snapshot(self.now)
        assert got == self.model.snapshot(self.now), f"{self.factory.name} store"
        if got.exists and self.factory.has_history:
            self.check_replay(self.store.store, self.now)
            charged = sum((cost for _, cost in self.model.model.charges), Decimal(0))
            assert self.history_of(self.store.store).charged == charged, "a charge lost or doubled"


def test_random_operations_agree_with_the_model(
    store_factory: StoreFactory,
    check_replay: Callable[[Store, datetime], None],
    history_of: Callable[[Store], Replayed],
) -> None:
    run_state_machine_as_test(
        lambda: ContractMachine(store_factory, check_replay, history_of),
        settings=settings(
            max_examples=30,
            stateful_step_count=25,
            deadline=None,
            # Shrinking a failure over HTTP takes minutes; the steps are printed as they ran.
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
        ),
    )
