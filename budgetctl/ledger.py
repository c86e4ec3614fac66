"""The budgetctl library API: one project's budgets, with costing and a clock.

:class:`Ledger` is what the CLI and the ``BudgetManager`` facade are built on. Each method parses
and checks its input, prices the call when asked to, and runs one atomic store operation. Results
are frozen values with exact Decimals; nothing here prints.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from budgetctl.core import events, periods, rules
from budgetctl.core import hooks as hook_rules
from budgetctl.core.hooks import Delivery, DeliveryReport, Hook
from budgetctl.core.money import check_amount, parse_amount
from budgetctl.core.operations import ProjectView, ResetDue, Standing
from budgetctl.core.periods import UTC, Duration
from budgetctl.core.record import Record
from budgetctl.core.rules import KEEP, Budget, Changes, ChargeRequest, ClosedPeriod, Hold, Keep
from budgetctl.errors import UsageError
from budgetctl.store import json_store
from budgetctl.store.json_store import JsonStore

if TYPE_CHECKING:
    from budgetctl.costing.interface import Costing, Price, Usage
    from budgetctl.store.interface import HookStore, Store

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data dir: the argument, else ``BUDGETCTL_DATA_DIR``, else platformdirs' user data dir."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    env = os.environ.get("BUDGETCTL_DATA_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs  # only when no dir was given: it is not free to import

    return Path(platformdirs.user_data_path("budgetctl", appauthor=False))


def list_projects(data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Names of the projects that have a state file in the data dir, sorted."""
    return json_store.list_projects(resolve_data_dir(data_dir))


class ChargeResult(Record):
    """What one charge recorded (or, when ``duplicate``, would have)."""

    user: str
    model: str | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost: Decimal
    budget: Budget
    cap: Budget | None
    duplicate: bool
    estimated: bool
    request_id: str | None
    hold_id: str | None = None  # the hold this charge committed
    held: Decimal | None = None  # what that hold reserved; None if it was no longer open
    alerts: tuple[events.Alert | events.Over, ...] = ()  # recorded with it (user's, then cap's)

    @property
    def current_cost(self) -> Decimal:
        return self.budget.current_cost

    @property
    def hold_missing(self) -> bool:
        """A commit whose hold was no longer open (expired, released or unknown)."""
        return self.hold_id is not None and not self.duplicate and self.held is None

    @property
    def over_hold(self) -> Decimal | None:
        """How far the cost went past its hold, when it did."""
        if self.held is None or self.duplicate or self.cost <= self.held:
            return None
        return self.cost - self.held

    @property
    def remaining(self) -> Decimal:
        return self.budget.remaining

    @property
    def over_budget(self) -> bool:
        return self.budget.over_budget

    @property
    def crossed_alert(self) -> bool:
        """This charge crossed one of the user's alert thresholds (and left it not over budget)."""
        return not self.duplicate and rules.crossed_alert(self.budget, self.cost)

    @property
    def crossed(self) -> tuple[events.Alert, ...]:
        """The alert thresholds this charge crossed, the user's then the cap's (``user`` None)."""
        return tuple(a for a in self.alerts if isinstance(a, events.Alert))


class CheckResult(Record):
    """Whether a call of ``projected_cost`` fits the user's and the project's remaining budget."""

    user: str
    model: str | None  # None for a cost known in advance without a model
    prompt_tokens: int
    max_tokens: int
    projected_cost: Decimal
    budget: Budget
    cap: Budget | None
    allowed: bool
    blocked_by: str | None  # "user", "project" or None
    estimated: bool
    reserved: Decimal = Decimal(0)  # what the user's open holds reserve (this one included)
    cap_reserved: Decimal = Decimal(0)  # what every open hold reserves of the cap
    hold: Hold | None = None  # the hold placed, with reserve=True and when it fits

    @property
    def available(self) -> Decimal:
        """Budget - spent - reserved, never negative."""
        return rules.available(self.budget, self.reserved)

    @property
    def current_cost(self) -> Decimal:
        return self.budget.current_cost

    @property
    def total_budget(self) -> Decimal:
        return self.budget.total_budget

    @property
    def remaining(self) -> Decimal:
        return self.budget.remaining


def parse_duration_arg(value: Duration | str | None) -> Duration | None:
    if value is None or isinstance(value, Duration):
        return value
    return periods.parse_duration(value)


def parse_time_arg(value: datetime | str | float | None, tz_name: str) -> datetime | None:
    """A time given as a datetime, ISO text, or epoch seconds (LiteLLM's ``created_at``)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=periods.parse_timezone(tz_name))
        try:
            return periods.check_moment(value.astimezone(UTC))
        except OverflowError:  # datetime.min in a zone east of UTC
            raise UsageError(f"time {value!r} is out of range") from None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return periods.check_moment(datetime.fromtimestamp(float(value), UTC), value)
        except (OverflowError, OSError, ValueError):
            raise UsageError(f"time {value!r} is out of range") from None
    if isinstance(value, str):
        return periods.parse_datetime(value, periods.parse_timezone(tz_name))
    raise UsageError(f"cannot read time {value!r}")


class Ledger:
    """One project's budgets.

    ``clock`` returns the current time (aware, UTC); tests pass a fixed one and never sleep.
    ``prices_file`` is a LiteLLM-format price map whose entries win over the bundled table
    (default: ``BUDGETCTL_PRICES``). ``server`` (default ``BUDGETCTL_SERVER``): a budget
    server's URL, to be its client (:mod:`budgetctl.client.remote`); ``""`` for none.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Ledger:
        """A :class:`~budgetctl.client.remote.RemoteLedger` when a budget server is configured
        (``server=URL``, else ``BUDGETCTL_SERVER``) and neither a store nor a database URL is
        given; ``server=""`` keeps the ledger local whatever the environment says."""
        if cls is Ledger and kwargs.get("store") is None and kwargs.get("database_url") is None:
            from budgetctl.client import configured_server

            if configured_server(kwargs.get("server")) is not None:
                from budgetctl.client.remote import RemoteLedger

                return super().__new__(RemoteLedger)
        return super().__new__(cls)

    def __init__(
        self,
        project: str = "default",
        data_dir: str | os.PathLike[str] | None = None,
        *,
        prices_file: str | os.PathLike[str] | None = None,
        clock: Clock = system_clock,
        lock_timeout: float | None = None,
        store: Store | None = None,
        database_url: str | None = None,
        server: str | None = None,
    ) -> None:
        if store is not None:
            self.project = store.project  # the store validated it (a hosted name is no path)
        else:
            self.project = rules.check_project_name(project)
        self.data_dir = resolve_data_dir(data_dir)
        if database_url is None and store is None:
            database_url = os.environ.get("BUDGETCTL_DATABASE_URL") or None
        self.database_url = database_url
        if store is None and database_url is not None:
            from budgetctl.store.postgres.store import PostgresStore

            # The database's clock decides periods and hold expiry, unless a clock is given
            # (tests, backfills): hosts whose clocks disagree then agree.
            store = PostgresStore(
                self.project, database_url, use_database_clock=clock is system_clock
            )
        self.store: Store = store or JsonStore(project, self.data_dir, lock_timeout)
        if prices_file is None:
            prices_file = os.environ.get("BUDGETCTL_PRICES") or None
        self.prices_file = prices_file
        self.clock = clock
        self._costing: Costing | None = None

    # --- plumbing --------------------------------------------------------------------------------

    def now(self) -> datetime:
        moment = self.clock()
        if moment.tzinfo is None:
            raise UsageError("the clock must return an aware datetime")
        return moment.astimezone(UTC)

    def _creation_time(self) -> datetime:
        """When a new budget starts: the store's own clock where it keeps one (a database's, so
        hosts with skewed clocks agree), else :meth:`now`."""
        store_clock = getattr(self.store, "clock", None)
        moment = store_clock() if callable(store_clock) else None
        return moment if moment is not None else self.now()

    @property
    def costing(self) -> Costing:
        """Prices and token counts (loaded on first use, with the project's custom prices)."""
        if self._costing is None:
            from budgetctl.costing import load_costing

            self._costing = load_costing(self.prices_file, self.store.prices())
        return self._costing

    def exists(self) -> bool:
        return self.store.exists()

    # --- budgets ---------------------------------------------------------------------------------

    def create(
        self,
        user: str,
        budget: Decimal | str | float | int,
        *,
        duration: Duration | str | None = None,
        start: datetime | str | float | None = None,
        timezone: str = "UTC",
        alert_at: AlertArg = None,
        replace: bool = False,
        dry_run: bool = False,
    ) -> Budget:
        """A new budget for ``user``; UserExistsError if there is one, unless ``replace``.
        ``alert_at``: one alert threshold in percent, or several (``"50,80,100"``, a list)."""
        rules.check_user_name(user)
        periods.parse_timezone(timezone)
        record = rules.new_budget(
            user,
            parse_amount(budget, "budget"),
            self._creation_time(),
            duration=parse_duration_arg(duration),
            timezone=timezone,
            start=parse_time_arg(start, timezone),
            alert_at=parse_alerts(alert_at),
        )
        return self.store.create(record, replace=replace, dry_run=dry_run)

    def set(
        self,
        user: str,
        *,
        budget: Decimal | str | float | int | None = None,
        duration: Duration | str | Keep | None = KEEP,
        timezone: str | None = None,
        start: datetime | str | float | Keep | None = KEEP,
        alert_at: AlertArg | Keep = KEEP,
        dry_run: bool = False,
    ) -> Budget:
        """Change a budget's settings and keep its spend; a setting left at :data:`KEEP` (the
        default) is not changed (None means "none": no duration, no start, no alert)."""
        changes = Changes(
            total_budget=KEEP if budget is None else parse_amount(budget, "budget"),
            duration=KEEP if duration is KEEP else parse_duration_arg(duration),
            timezone=KEEP if timezone is None else timezone,
            alert_at=KEEP if alert_at is KEEP else parse_alerts(alert_at),
        )
        if timezone is not None:
            periods.parse_timezone(timezone)
        if start is not KEEP:
            tz = timezone or self.get(user).timezone
            changes = changes._replace(start=parse_time_arg(start, tz))
        return self.store.change(user, self.now(), changes, dry_run=dry_run)

    def get(self, user: str) -> Budget:
        """The user's budget as of now (a period that ended is shown rolled over)."""
        return self.store.get(user, self.now())

    def view(self) -> ProjectView:
        """Every budget of the project, and its cap, as of now."""
        return self.store.view(self.now())

    def users(self) -> list[str]:
        return self.store.users()

    def delete(self, users: Sequence[str], *, dry_run: bool = False) -> list[str]:
        return self.store.delete(_each_once(users), self.now(), dry_run=dry_run)

    # --- charges ---------------------------------------------------------------------------------

    def charge_cost(
        self,
        user: str,
        cost: Decimal | str | float | int,
        *,
        model: str | None = None,
        request_id: str | None = None,
        hold: str | None = None,
        enforce: bool = False,
        dry_run: bool = False,
    ) -> ChargeResult:
        """Record a cost known in advance."""
        amount = parse_amount(cost, "cost")
        return self._charge(
            ChargeRequest(user, amount, model, request_id=_rid(request_id)), enforce, dry_run, hold
        )

    def charge_tokens(
        self,
        user: str,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        *,
        cached_tokens: int = 0,
        cache_creation_tokens: int = 0,
        request_id: str | None = None,
        hold: str | None = None,
        enforce: bool = False,
        dry_run: bool = False,
    ) -> ChargeResult:
        """Record a call by its token counts, priced from the table."""
        from budgetctl.costing.interface import Usage

        rules.check_tokens(prompt_tokens, "prompt tokens")
        rules.check_tokens(completion_tokens, "completion tokens")
        rules.check_tokens(cached_tokens, "cached tokens")
        rules.check_tokens(cache_creation_tokens, "cache creation tokens")
        if cached_tokens + cache_creation_tokens > prompt_tokens:
            raise UsageError("cached tokens are part of the prompt: they cannot exceed it")
        usage = Usage(
            model=model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cached_tokens=cached_tokens,
            cache_creation_tokens=cache_creation_tokens,
            request_id=request_id,
        )
        return self.charge_usage(user, usage, hold=hold, enforce=enforce, dry_run=dry_run)

    def charge_text(
        self,
        user: str,
        model: str,
        input_text: str,
        output_text: str,
        *,
        request_id: str | None = None,
        hold: str | None = None,
        enforce: bool = False,
        dry_run: bool = False,
    ) -> ChargeResult:
        """Record a call by its prompt and completion text (the seed's text form)."""
        from budgetctl.costing.interface import Usage

        self.costing.price(model)  # an unknown model fails before any tokenizer is built
        prompt = self.costing.count_text(model, input_text)
        completion = self.costing.count_text(model, output_text)
        usage = Usage(
            model=model,
            prompt_tokens=prompt.tokens,
            completion_tokens=completion.tokens,
            request_id=request_id,
            estimated=prompt.estimated,
        )
        return self.charge_usage(user, usage, hold=hold, enforce=enforce, dry_run=dry_run)

    def charge_response(
        self,
        user: str,
        response: Any,
        *,
        model: str | None = None,
        request_id: str | None = None,
        hold: str | None = None,
        enforce: bool = False,
        dry_run: bool = False,
    ) -> ChargeResult:
        """Record a completion response: its model, usage and (unless given) its id.

        ``model`` prices a response that names none (Amazon Bedrock Converse); a model named in
        the response wins.
        """
        usage = self.costing.usage_from_response(response, model)
        if request_id is not None:
            usage = usage._replace(request_id=request_id)
        return self.charge_usage(user, usage, hold=hold, enforce=enforce, dry_run=dry_run)

    def charge_usage(
        self,
        user: str,
        usage: Usage,
        *,
        hold: str | None = None,
        enforce: bool = False,
        dry_run: bool = False,
    ) -> ChargeResult:
        """Record a normalised :class:`Usage`, priced from the table. ``hold``: the id of the hold
        placed for this call (:meth:`reserve`), freed in the same step (see :meth:`commit`)."""
        cost = self.costing.cost(usage)
        request = ChargeRequest(
            user=user,
            cost=cost,
            model=usage.model,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            request_id=_rid(usage.request_id),
            estimated=usage.estimated,
        )
        return self._charge(request, enforce, dry_run, hold)

    def _charge(
        self, request: ChargeRequest, enforce: bool, dry_run: bool, hold: str | None = None
    ) -> ChargeResult:
        rules.check_user_name(request.user)
        if request.model is not None:
            rules.check_text(request.model, "model")
        check_amount(request.cost, "cost")
        held: Decimal | None = None
        if hold is not None:
            if enforce:
                raise UsageError("a commit is never refused (the money is spent): drop --enforce")
            settled = self.store.commit_hold(
                rules.check_hold_id(hold), request, self.now(), dry_run=dry_run
            )
            outcome, held = settled.charge, settled.held
        else:
            outcome = self.store.charge(request, self.now(), enforce=enforce, dry_run=dry_run)
        if outcome.queued and not dry_run:
            self._dispatch()
        return ChargeResult(
            user=request.user,
            model=request.model,
            prompt_tokens=request.prompt_tokens,
            completion_tokens=request.completion_tokens,
            cached_tokens=request.cached_tokens,
            cost=request.cost,
            budget=outcome.budget,
            cap=outcome.cap,
            duplicate=outcome.duplicate,
            estimated=request.estimated,
            request_id=request.request_id,
            hold_id=hold,
            held=held,
            alerts=outcome.alerts,
        )

    # --- checks ----------------------------------------------------------------------------------

    def check(
        self,
        user: str,
        model: str,
        *,
        prompt: str | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        max_tokens: int = 0,
        reserve: bool = False,
        ttl: timedelta | str | float | None = None,
        dry_run: bool = False,
    ) -> CheckResult:
        """Would a call fit? Prices the prompt (one user message, or ``messages``) plus
        ``max_tokens`` of completion, against what the user's budget and the project cap have
        left after spend and open holds. ``reserve``: also hold that cost, atomically, when it
        fits (:meth:`reserve`)."""
        from budgetctl.costing.interface import Usage

        rules.check_tokens(max_tokens, "max tokens")
        if not reserve:
            self.store.get(user, self.now())  # an unknown user fails before any tokenizer
        self.costing.price(model)
        if messages is None:
            messages = [{"role": "user", "content": prompt or ""}]
        counted = self.costing.count_messages(model, messages)
        cost = self.costing.cost(
            Usage(model=model, prompt_tokens=counted.tokens, completion_tokens=max_tokens)
        )
        base = CheckResult(user, model, counted.tokens, max_tokens, cost, *_UNSET)
        base = base._replace(estimated=counted.estimated)
        return self._check(base, reserve, ttl, dry_run)

    def check_cost(
        self,
        user: str,
        cost: Decimal | str | float | int,
        *,
        model: str | None = None,
        reserve: bool = False,
        ttl: timedelta | str | float | None = None,
        dry_run: bool = False,
    ) -> CheckResult:
        """Would a call of a cost known in advance fit? (``model`` is only a label here: nothing
        is priced.) ``reserve``: also hold it when it fits (:meth:`reserve`)."""
        amount = parse_amount(cost, "cost")
        base = CheckResult(user, model, 0, 0, amount, *_UNSET)
        return self._check(base, reserve, ttl, dry_run)

    def reserve(
        self,
        user: str,
        cost: Decimal | str | float | int,
        *,
        model: str | None = None,
        ttl: timedelta | str | float | None = None,
        dry_run: bool = False,
    ) -> CheckResult:
        """Hold ``cost`` of the user's budget and of the project cap for ``ttl`` (default 15
        minutes), if it fits what they have left after spend and open holds; else hold nothing
        (``allowed`` False). Then make the call, and :meth:`commit` its actual cost with the
        hold's id (``result.hold.hold_id``), or :meth:`release` the hold if it was not made."""
        return self.check_cost(user, cost, model=model, reserve=True, ttl=ttl, dry_run=dry_run)

    def _check(
        self,
        base: CheckResult,
        reserve: bool,
        ttl: timedelta | str | float | None,
        dry_run: bool,
    ) -> CheckResult:
        now = self.now()
        if not reserve:
            if ttl is not None:
                raise UsageError("a time to live is for a hold: give it with reserve")
            found = self.store.standing(base.user, now)
            return _fits(base, found.budget, found.cap, found.reserved, found.cap_reserved)
        rules.check_user_name(base.user)
        # secrets.token_hex(12), without importing secrets (and hashlib, hmac, random) for every
        # command: 24 hex digits from os.urandom
        hold_id = "h_" + os.urandom(12).hex()
        outcome = self.store.reserve(
            hold_id, base.user, base.projected_cost, parse_ttl(ttl), now, dry_run=dry_run
        )
        return base._replace(
            budget=outcome.budget,
            cap=outcome.cap,
            allowed=outcome.hold is not None,
            blocked_by=outcome.blocked_by,
            reserved=outcome.reserved,
            cap_reserved=outcome.cap_reserved,
            hold=outcome.hold,
        )

    def commit(
        self,
        hold_id: str,
        user: str,
        cost: Decimal | str | float | int,
        *,
        model: str | None = None,
        request_id: str | None = None,
        dry_run: bool = False,
    ) -> ChargeResult:
        """Record the actual cost of the call hold ``hold_id`` was placed for, and free the hold,
        in one atomic step. Never refused: a cost above the hold is recorded (``over_hold``), and
        so is one whose hold expired or was released (``hold_missing``). Committing the same hold
        twice with the same charge is a duplicate; with another, RequestIdConflictError.
        (``charge_tokens``, ``charge_response`` and the other ``charge_*`` methods take
        ``hold=`` for a cost to be priced.)"""
        return self.charge_cost(
            user, cost, model=model, request_id=request_id, hold=hold_id, dry_run=dry_run
        )

    def release(self, hold_ids: Sequence[str], *, dry_run: bool = False) -> list[Hold]:
        """Free holds whose call was not made. UnknownHoldError (exit 4) for an id with no open
        hold (expired ones included), HoldCommittedError (exit 1) for one already committed;
        nothing changes then."""
        if isinstance(hold_ids, str):
            hold_ids = [hold_ids]
        ids = [rules.check_hold_id(hold_id) for hold_id in _each_once(hold_ids, "hold")]
        return self.store.release(ids, self.now(), dry_run=dry_run)

    def holds(self, user: str | None = None) -> list[Hold]:
        """The holds open now (``user``'s, when given), oldest first."""
        if user is not None:
            rules.check_user_name(user)
        return self.store.holds(self.now(), user)

    def standing(self, user: str) -> Standing:
        """The user's budget, the cap, and what open holds reserve of each (``available``)."""
        return self.store.standing(user, self.now())

    # --- resets ----------------------------------------------------------------------------------

    def reset(
        self, users: Sequence[str] | None = None, *, dry_run: bool = False
    ) -> list[tuple[str, ClosedPeriod]]:
        """Zero the current spend of ``users`` (all when None) now; archived as closed periods."""
        chosen = None if users is None else _each_once(users)
        done = self.store.reset(chosen, self.now(), dry_run=dry_run)
        if done and not dry_run and self._hook_store() is not None:
            self._dispatch()
        return done

    def reset_due(self, *, now: datetime | None = None, dry_run: bool = False) -> ResetDue:
        """Archive and reset every budget whose period ended (for cron), then deliver the hook
        events still undelivered (each attempt bounded by its hook's timeout). Idempotent."""
        if now is None:
            result = self.store.reset_due(self.now(), dry_run=dry_run)
        else:
            given = getattr(self.store, "at_given_time", None)  # a database store's own clock
            with given() if given is not None else contextlib.nullcontext():
                result = self.store.reset_due(now.astimezone(UTC), dry_run=dry_run)
        if dry_run or self._hook_store() is None or not result.outbox:
            return result
        report = self.deliver_pending()
        return result._replace(delivered=report.delivered, undelivered=len(report.failed))

    def roll_over(self, users: Sequence[str], *, dry_run: bool = False) -> ResetDue:
        """Archive and reset the given users' budgets if their period ended."""
        return self.store.reset_due(self.now(), users=list(users), dry_run=dry_run)

    # --- project cap -----------------------------------------------------------------------------

    def cap(self) -> Budget | None:
        """The project cap as of now, or None."""
        return self.store.cap(self.now())

    def set_cap(
        self,
        budget: Decimal | str | float | int | None = None,
        *,
        duration: Duration | str | Keep | None = KEEP,
        timezone: str | None = None,
        alert_at: AlertArg | Keep = KEEP,
        dry_run: bool = False,
    ) -> Budget:
        """Set or change the project cap; ``alert_at``: its alert thresholds (None: none)."""
        amount = parse_amount(budget, "cap") if budget is not None else None
        dur = KEEP if duration is KEEP else parse_duration_arg(duration)
        if timezone is not None:
            periods.parse_timezone(timezone)
        if alert_at is KEEP:  # a store without cap alerts still takes the call
            return self.store.set_cap(self.now(), amount, dur, timezone, dry_run=dry_run)
        return self.store.set_cap(
            self.now(), amount, dur, timezone, alert_at=parse_alerts(alert_at), dry_run=dry_run
        )

    def clear_cap(self, *, dry_run: bool = False) -> bool:
        return self.store.clear_cap(self.now(), dry_run=dry_run)

    # --- hooks ----------------------------------------------------------------------------------

    def _hook_store(self) -> HookStore | None:
        store = self.store
        return store if callable(getattr(store, "pending", None)) else None  # type: ignore[return-value]

    def _hooks(self) -> HookStore:
        store = self._hook_store()
        if store is None:
            raise UsageError("this store keeps no hooks: use the JSON store or PostgreSQL")
        return store

    def hooks(self) -> list[Hook]:
        """The project's hooks."""
        return self._hooks().hooks()

    def add_hook(
        self,
        *,
        run: str | None = None,
        url: str | None = None,
        on: Sequence[str] | str = hook_rules.KINDS,
        timeout: float = hook_rules.DEFAULT_TIMEOUT,
        dry_run: bool = False,
    ) -> Hook:
        """Add a hook: a command (``run``) or a URL (``url``), for events of kinds ``on``
        (``alert``, ``over``, ``reset``; a comma-separated string or a list)."""
        kinds = on.split(",") if isinstance(on, str) else on
        hook = Hook(hook_rules.hook_id_from(os.urandom(16)), run, url, tuple(kinds), timeout)
        hook = hook_rules.check_hook(hook)
        if dry_run:
            self._hooks().hooks()  # an unknown project fails as it would
            return hook
        return self._hooks().add_hook(hook, self.now())

    def remove_hook(self, hook_id: str, *, dry_run: bool = False) -> None:
        """Remove a hook and its undelivered events (UsageError when there is no such hook)."""
        hook_rules.check_hook_id(hook_id)
        store = self._hooks()
        if dry_run:
            found = any(hook.hook_id == hook_id for hook in store.hooks())
        else:
            found = store.remove_hook(hook_id, self.now())
        if not found:
            raise UsageError(f"project {self.project!r} has no hook {hook_id}")

    def test_hook(self, hook_id: str) -> str | None:
        """Send hook ``hook_id`` a ``test`` event now; None when it succeeded, else why not."""
        from budgetctl.notify import deliver

        hook_rules.check_hook_id(hook_id)
        found = [hook for hook in self.hooks() if hook.hook_id == hook_id]
        if not found:
            raise UsageError(f"project {self.project!r} has no hook {hook_id}")
        payload = {
            "id": "ev_test_" + os.urandom(8).hex(),
            "project": self.project,
            "event": "test",
            "type": "test",
            "time": periods.format_utc(self.now()),
        }
        return deliver(found[0], payload)

    def pending_deliveries(self) -> list[Delivery]:
        """The outbox: hook events not delivered yet."""
        return self._hooks().pending()

    def deliver_pending(self) -> DeliveryReport:
        """Try each undelivered hook event once, now (what ``reset-due`` does after its resets)."""
        store = self._hook_store()
        if store is None or not store.pending():  # nothing to send: no HTTP client is loaded
            return DeliveryReport(0)
        from budgetctl.notify import deliver_pending

        return deliver_pending(store, self.now)

    def _dispatch(self) -> None:
        """Start delivering the outbox in a detached process (the JSON store and PostgreSQL;
        with another store, or if it cannot start, ``reset-due`` delivers)."""
        from budgetctl.notify import spawn
        from budgetctl.store.postgres.store import PostgresStore

        if isinstance(self.store, JsonStore) and self.store.data_dir == self.data_dir:
            spawn(self.project, self.data_dir, None)
        elif isinstance(self.store, PostgresStore) and self.database_url is not None:
            spawn(self.project, self.data_dir, self.database_url)

    # --- prices ----------------------------------------------------------------------------------

    def set_price(
        self,
        model: str,
        input_per_token: Decimal | str,
        output_per_token: Decimal | str,
        *,
        cache_read_per_token: Decimal | str | None = None,
        cache_creation_per_token: Decimal | str | None = None,
        dry_run: bool = False,
    ) -> Price:
        """A per-project custom price (USD per token) for a private model."""
        from budgetctl.costing.interface import Price

        if not model or len(model) > 256:
            raise UsageError("a model name must be 1-256 characters")
        rules.check_text(model, "model")

        def rate(value: Decimal | str | None, what: str) -> Decimal | None:
            return None if value is None else parse_amount(value, what)

        price = Price(
            model=model,
            input_per_token=parse_amount(input_per_token, "input price"),
            output_per_token=parse_amount(output_per_token, "output price"),
            cache_read_per_token=rate(cache_read_per_token, "cache read price"),
            cache_creation_per_token=rate(cache_creation_per_token, "cache creation price"),
            provider="custom",
            source="project",
        )
        self.store.set_price(price, model, dry_run=dry_run)
        self._costing = None
        return price

    def set_price_per_million(
        self,
        model: str,
        input_per_million: Decimal | str,
        output_per_million: Decimal | str,
        *,
        cache_read: Decimal | str | None = None,
        cache_creation: Decimal | str | None = None,
        dry_run: bool = False,
    ) -> Price:
        """:meth:`set_price` with rates in USD per 1M tokens, as price lists quote them."""

        def per_token(value: Decimal | str, what: str) -> Decimal:
            return parse_amount(value, what).scaleb(-6)

        return self.set_price(
            model,
            per_token(input_per_million, "input price"),
            per_token(output_per_million, "output price"),
            cache_read_per_token=None
            if cache_read is None
            else per_token(cache_read, "cache read price"),
            cache_creation_per_token=None
            if cache_creation is None
            else per_token(cache_creation, "cache creation price"),
            dry_run=dry_run,
        )

    def prices(self, filter: str | None = None) -> list[Price]:
        """The prices ``models`` lists (names containing ``filter``): the project's custom
        prices, then the price file, then the bundled table."""
        from budgetctl.costing import list_prices

        return list_prices(filter, self.prices_file, self.store.prices())

    def remove_price(self, model: str, *, dry_run: bool = False) -> None:
        self.store.set_price(None, model, dry_run=dry_run)
        self._costing = None

    # --- history ---------------------------------------------------------------------------------

    def history(self, user: str | None = None, limit: int | None = None) -> list[events.Event]:
        """Charges, closed periods, holds and every other event (:mod:`budgetctl.core.events`),
        newest first."""
        if user is not None:
            self.store.get(user, self.now())  # unknown user: a clear error, not an empty list
        if limit is not None and limit < 1:
            raise UsageError("--limit must be at least 1")
        return self.store.history(user, limit)


def _each_once(users: Sequence[str], what: str = "user") -> list[str]:
    """``users`` as a list, if no user is named twice (``delete alice alice``): a usage error."""
    seen: set[str] = set()
    for user in users:
        if user in seen:
            raise UsageError(f"{what} {user!r} is named more than once; name each {what} once")
        seen.add(user)
    return list(users)


_UNSET: Any = (None, None, False, None, False)  # budget, cap, allowed, blocked_by, estimated


AlertArg = Decimal | str | float | int | Sequence[Decimal | str | float | int] | None


def parse_alerts(value: AlertArg) -> tuple[Decimal, ...] | None:
    """Alert thresholds from a number, ``"80"``, ``"50,80,100"`` (``%`` allowed) or a list;
    None for none."""
    if value is None:
        return None
    if isinstance(value, str):
        parts: Sequence[Any] = [p.strip().removesuffix("%") for p in value.split(",")]
    elif isinstance(value, (Decimal, float, int)):
        parts = [value]
    else:
        parts = list(value)
    return rules.check_alerts([parse_amount(p, "alert threshold") for p in parts])


def parse_ttl(value: timedelta | str | float | None) -> timedelta:
    """A hold's time to live: a timedelta, seconds, or ``<N>s``/``<N>m``/``<N>h`` (default 15m)."""
    if value is None:
        return rules.DEFAULT_HOLD_TTL
    if isinstance(value, timedelta):
        return rules.check_ttl(value)
    if isinstance(value, bool):
        raise UsageError(f"{value!r} is not a time to live")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = value.strip().lower()
        unit = {"s": 1, "m": 60, "h": 3600}.get(text[-1:], 0)
        number = text[:-1] if unit else text
        try:
            seconds = float(number) * (unit or 1)
        except ValueError:
            raise UsageError(
                f"{value!r} is not a time to live: give seconds, or N followed by s, m or h "
                "(90, 90s, 15m, 2h)"
            ) from None
    if not seconds == seconds or seconds in (float("inf"), float("-inf")):
        raise UsageError(f"{value!r} is not a time to live")
    if seconds <= 0 or seconds > rules.MAX_HOLD_TTL.total_seconds():
        raise UsageError("a hold's time to live must be more than 0 seconds and at most 7 days")
    return timedelta(seconds=seconds)


def _fits(
    base: CheckResult, budget: Budget, cap: Budget | None, held: Decimal, cap_held: Decimal
) -> CheckResult:
    """Whether ``base.projected_cost`` fits the user's budget, then the project cap's, after
    their spend and open holds."""
    blocked = None
    if not rules.fits(budget, held, base.projected_cost):
        blocked = "user"
    elif cap is not None and not rules.fits(cap, cap_held, base.projected_cost):
        blocked = "project"
    return base._replace(
        budget=budget,
        cap=cap,
        allowed=blocked is None,
        blocked_by=blocked,
        reserved=held,
        cap_reserved=cap_held,
    )


def _rid(request_id: str | None) -> str | None:
    if request_id is None:
        return None
    if not isinstance(request_id, str) or not request_id.strip() or len(request_id) > 512:
        raise UsageError("a request id must be a non-empty string of at most 512 characters")
    return rules.check_text(request_id, "request id")


__all__ = [
    "KEEP",
    "ChargeResult",
    "CheckResult",
    "Ledger",
    "list_projects",
    "resolve_data_dir",
    "system_clock",
]
