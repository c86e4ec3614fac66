"""Differential test: budgetctl's BudgetManager against LiteLLM's, call by call.

    python bench/differential.py [--sequences 3000] [--calls 30] [--seed 1] [--report FILE]

LiteLLM 1.110.2 runs in its own venv (bench/.venv-litellm, installed from PyPI on first use by
``run.ensure_litellm``; never a dependency of budgetctl or of its tests) behind
``scripts/litellm_driver.py``; budgetctl runs in this process. Each sequence starts both managers
empty, with one controlled clock (LiteLLM's ``time.time()`` is replaced in its module), and plays
random calls on both: create_budget, update_cost (completion, text, both, neither),
get_current_cost, get_model_cost, get_total_budget, is_valid_user, get_users, reset_cost,
reset_on_duration, projected_cost, update_budget_all_users, save_data, and clock moves. After
every call it compares the outcome (value and its type, or the exception's class) and then both
``user_dict``s.

Every difference is classified: either one of the deliberate differences documented in
docs/library.md (``DOCUMENTED`` below; each is checked, not merely excused: a text-form cost must
differ by exactly LiteLLM's 7 framing tokens a side, a period difference must come from a calendar
month or a reset job that did not run), or UNEXPLAINED, which fails the run (exit 1). After a
documented difference LiteLLM's record of that user is set to budgetctl's, so the calls after it
are compared from the same state.

The clock stops at every period boundary of either side on its way; at a stop the reset job
(``update_budget_all_users``) runs most of the time, as a cron job on time would. Daily and weekly
budgets are created with a ``created_at`` within their first period (or none), so both libraries'
periods can agree; monthly and yearly ones differ by design (28 and 365 days in LiteLLM).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH / "scripts"))

from diffwire import dec, enc, outcome  # noqa: E402

DRIVER = BENCH / "scripts" / "litellm_driver.py"
UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY_US = 86_400_000_000
START_US = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
FRAMING = 7  # tokens LiteLLM adds to a text by counting it as one chat message

# Deliberate differences, each described under the same name in docs/library.md.
DOCUMENTED = {
    "returns-floats": "budgets and costs come back as floats (LiteLLM returns a budget as it "
    "was given: the int 10, the string '10'; and an int 0 before a first charge)",
    "decimal-rounding": "costs summed exactly in Decimal differ from LiteLLM's float sums in the "
    "last digits",
    "record-has-every-key": "a record has current_cost, model_cost, created_at and "
    "last_updated_at from the start; LiteLLM's gains them later (a lifetime one never)",
    "calendar-periods": "monthly and yearly are calendar months and years (LiteLLM: 28 and 365 "
    "days)",
    "created-at-default": "created_at defaults to the time of the call (LiteLLM 1.110.2: the "
    "time LiteLLM was imported) and a named duration's period starts on the calendar",
    "period-over-without-job": "a period that has ended is over when read, whether or not the "
    "reset job ran",
    "text-framing": "input_text and output_text are counted as text (LiteLLM: as a chat message, "
    "+7 tokens each)",
    "projected-chat-rules": "projected_cost counts messages by OpenAI's chat rules (LiteLLM: the "
    "contents joined, as text)",
    "non-openai-tokenizer": "non-OpenAI models are counted with o200k_base (an estimate)",
    "strict-input": "a budget that is negative, NaN, infinite or not a number, and a user that is "
    "empty, not a string or int, or too long, is a ValueError (LiteLLM stores it)",
    "failed-create-changes-nothing": "a create_budget that raises changes nothing (LiteLLM's "
    "leaves {'total_budget': ...} behind)",
    "more-durations": "durations beyond LiteLLM's four (1d, 12h, 2w, 3mo, 1y) are accepted",
    "unknown-model-error": "an unknown model is UnknownModelError (LiteLLM: "
    "litellm.BadRequestError)",
    "older-map-models": "models only LiteLLM's older price map lists are priced",
    "int-user-key": "an int user is its string, as after LiteLLM's JSON round trip",
    "reset-on-duration-lifetime": "reset_on_duration on a lifetime budget does nothing (LiteLLM: "
    "KeyError 'last_updated_at')",
    "idempotent-response-id": "a completion whose id was already charged is not charged again",
}

USERS: list[tuple[Any, int]] = [
    ("alice", 30), ("bob", 20), ("carol", 10), (42, 4), ("42", 3), ("", 3), (None, 2),
    ("x" * 300, 1), (1.5, 1), (True, 1), ("a\nb", 1),
]  # fmt: skip
BUDGETS: list[tuple[Any, int]] = [
    (10, 20), (2.5, 10), (0, 5), (100.0, 5), (0.001, 5), (1e-06, 2), (-1, 2), (float("nan"), 1),
    (float("inf"), 1), ("10", 1), (None, 1), (True, 1),
]  # fmt: skip
DURATIONS: list[tuple[Any, int]] = [
    (None, 12), ("daily", 20), ("weekly", 12), ("monthly", 10), ("yearly", 4), ("", 1),
    ("hourly", 1), (5, 1), ("Daily", 1), ("1d", 1), ("none", 1), (["daily"], 1),
]  # fmt: skip
MODELS: list[tuple[str, int]] = [
    ("gpt-3.5-turbo", 20), ("gpt-4o", 15), ("gpt-4o-mini", 10), ("openai/gpt-4o", 4),
    ("claude-opus-latest", 6), ("claude-3-5-sonnet-20240620", 2), ("no-such-model", 2),
]  # fmt: skip
TEXTS = [
    "", "hello world", "it's a sunny day in san francisco", "Hey, how's it going?", "ok",
    "Summarise the ticket in two sentences and suggest a priority.", "naïve café ☕ 東京",
]  # fmt: skip


def pick(rng: random.Random, weighted: list[tuple[Any, int]]) -> Any:
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights)[0]


# --- the two sides ---------------------------------------------------------------------------


class LiteLLMSide:
    """LiteLLM's BudgetManager in its venv, behind scripts/litellm_driver.py."""

    def __init__(self, python: str, log: Path) -> None:
        from run import litellm_env

        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [python, str(DRIVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,  # LiteLLM's save threads race and print tracebacks: kept, not shown
            text=True,
            env=litellm_env(),
        )

    def ask(self, request: dict[str, Any]) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the LiteLLM driver stopped; see {self.log.name}")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.log.close()


class OursSide:
    """budgetctl's BudgetManager in this process, on the same clock."""

    def __init__(self, data_dir: Path, now_us: int, factory: Callable[..., Any]) -> None:
        self.now_us = now_us
        self.bm = factory("differential", data_dir=data_dir, clock=self.clock)

    def clock(self) -> datetime:
        return EPOCH + timedelta(microseconds=self.now_us)

    def call(self, method: str, kwargs: dict[str, Any]) -> Any:
        return outcome(lambda: getattr(self.bm, method)(**kwargs))

    def dump(self) -> dict[Any, Any]:
        return dict(self.bm.user_dict)


# --- comparing ---------------------------------------------------------------------------------


def number(tagged: Any) -> float | None:
    return float(tagged[1]) if tagged[0] in ("int", "float") else None


def same_number(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def close(a: float, b: float) -> bool:
    return same_number(a, b) or abs(a - b) <= 1e-9 * max(1e-9, abs(a), abs(b))


def diff_values(theirs: Any, ours: Any, path: str = "") -> list[tuple[str, str]]:
    """Where two tagged values differ: (path, kind); kinds: returns-floats, rounding, missing,
    extra, mismatch."""
    a, b = number(theirs), number(ours)
    if theirs[0] == "str" and b is not None:
        try:
            a = float(theirs[1])  # LiteLLM keeps a budget given as text as it was given
        except ValueError:
            a = None
        if a is not None and same_number(a, b):
            return [(path, "returns-floats")]
        a = None
    if a is not None and b is not None:
        if theirs[0] == ours[0] and same_number(a, b):
            return []
        if same_number(a, b):
            return [(path, "returns-floats")]
        return [(path, "rounding" if close(a, b) else "mismatch")]
    if theirs[0] == "dict" and ours[0] == "dict":
        t = {json.dumps(k): v for k, v in theirs[1]}
        o = {json.dumps(k): v for k, v in ours[1]}
        found: list[tuple[str, str]] = []
        for key in t.keys() | o.keys():
            name = f"{path}/{dec(json.loads(key))}"
            if key not in o:
                found.append((name, "missing"))
            elif key not in t:
                found.append((name, "extra"))
            else:
                found.extend(diff_values(t[key], o[key], name))
        return found
    if theirs[0] == "list" and ours[0] == "list" and len(theirs[1]) == len(ours[1]):
        found = []
        for index, (x, y) in enumerate(zip(theirs[1], ours[1], strict=True)):
            found.extend(diff_values(x, y, f"{path}[{index}]"))
        return found
    return [] if theirs == ours else [(path, "mismatch")]


@dataclass
class Context:
    """What the harness knows while classifying one call's differences."""

    method: str
    kwargs: dict[str, Any]
    ours: OursSide
    seen_ids: set[str]
    # users whose state may now differ, and the category that explains it (None: the call's own
    # comparison counted it already)
    explained: dict[str, str | None] = field(default_factory=dict)

    def explain(self, user: Any, category: str | None = None) -> None:
        self.explained[str(user)] = category


class Unexplained(Exception):
    pass


def litellm_text_cost(ours: OursSide, model: str, texts: list[str], framing: int) -> float:
    costing = ours.bm.ledger.costing
    price = costing.price(model)
    tokens = [costing.count_text(model, text).tokens + framing for text in texts]
    return float(tokens[0] * price.input_per_token + tokens[1] * price.output_per_token)


def classify_value_diffs(
    ctx: Context, diffs: list[tuple[str, str]], theirs: Any, ours: Any
) -> set[str]:
    """The documented categories that explain ``diffs`` of a call that succeeded on both sides."""
    found: set[str] = set()
    kw = ctx.kwargs
    user = kw.get("user")
    for path, kind in diffs:
        leaf = path.rsplit("/", 1)[-1]
        if kind == "returns-floats":
            found.add("returns-floats")
        elif kind == "rounding":
            found.add("decimal-rounding")
        elif kind == "extra" and leaf in SHAPE_KEYS and is_default(value_at(ours, path), leaf):
            found.add("record-has-every-key")
        elif ctx.method == "create_budget" and leaf in ("duration", *SHAPE_KEYS[:2]):
            if kw.get("created_at") is None:
                found.add("created-at-default")
            elif kw.get("duration") in ("monthly", "yearly"):
                found.add("calendar-periods")
            else:
                raise Unexplained(path)
        elif ctx.method == "update_cost" and ("/current_cost" in path or "/model_cost" in path):
            found.add(explain_cost(ctx, theirs, ours))
        elif ctx.method == "projected_cost":
            found.add(explain_projected(ctx, theirs, ours))
        elif ctx.method == "is_valid_user" and isinstance(user, int) and user is not True:
            found.add("int-user-key")  # LiteLLM's key is the string once its file is reloaded
        else:
            raise Unexplained(f"{path}: {kind}")
    if found - {"returns-floats", "decimal-rounding", "record-has-every-key"}:
        ctx.explain(user)
    return found


def value_at(tagged: Any, path: str) -> Any:
    for part in path.strip("/").split("/"):
        items = {str(dec(k)): v for k, v in tagged[1]}
        tagged = items[part]
    return tagged


def explain_cost(ctx: Context, theirs: Any, ours: Any) -> str:
    """An update_cost whose costs differ: the text form's framing, a tokenizer, or a repeated id."""
    kw = ctx.kwargs
    model, texts = kw.get("model"), [kw.get("input_text"), kw.get("output_text")]
    theirs_cost = number(value_at(theirs, "/user/current_cost"))
    ours_cost = number(value_at(ours, "/user/current_cost"))
    assert theirs_cost is not None and ours_cost is not None
    if model and all(texts):
        framed = litellm_text_cost(ctx.ours, model, texts, FRAMING)  # type: ignore[arg-type]
        plain = litellm_text_cost(ctx.ours, model, texts, 0)  # type: ignore[arg-type]
        if close(theirs_cost, ours_cost + framed - plain):
            return "text-framing"
        if ctx.ours.bm.ledger.costing.count_text(model, texts[0]).estimated:
            return "non-openai-tokenizer"
    completion = kw.get("completion_obj")
    if isinstance(completion, dict) and completion.get("id") in ctx.seen_ids:
        return "idempotent-response-id"
    raise Unexplained(f"update_cost: {theirs_cost!r} against {ours_cost!r}")


def explain_projected(ctx: Context, theirs: Any, ours: Any) -> str:
    kw = ctx.kwargs
    model, messages = kw["model"], kw["messages"]
    costing = ctx.ours.bm.ledger.costing
    price = costing.price(model)
    joined = "".join(m["content"] for m in messages)
    chat = costing.count_messages(model, messages).tokens
    plain = costing.count_text(model, joined).tokens
    expected = number(ours)
    assert expected is not None
    expected -= float((chat - plain) * price.input_per_token)
    if close(number(theirs) or 0.0, expected):
        return "projected-chat-rules"
    if costing.count_text(model, joined).estimated:
        return "non-openai-tokenizer"
    raise Unexplained(f"projected_cost: {theirs!r} against {ours!r}")


NAMED = (None, "daily", "weekly", "monthly", "yearly")
OLDER_ONLY = {"claude-3-5-sonnet-20240620"}  # in LiteLLM 1.75.0's price map, not in 1.110.2's


def model_of(kwargs: dict[str, Any]) -> Any:
    """The model a call is priced at: the text form's, else the completion's."""
    if kwargs.get("model") and kwargs.get("input_text") and kwargs.get("output_text"):
        return kwargs["model"]
    completion = kwargs.get("completion_obj")
    return completion.get("model") if isinstance(completion, dict) else kwargs.get("model")


SHAPE_KEYS = ("created_at", "last_updated_at", "current_cost", "model_cost")


def is_default(tagged: Any, key: str) -> bool:
    """A key budgetctl's record has from the start, at the value LiteLLM's absent key means."""
    if key in ("created_at", "last_updated_at"):
        return True
    return tagged == ["dict", []] if key == "model_cost" else number(tagged) == 0


def possible_user(user: Any) -> bool:
    if isinstance(user, int) and not isinstance(user, bool):
        return True
    return isinstance(user, str) and 0 < len(user) <= 256 and user.isprintable()


def valid_budget(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return False
    try:
        number = float(value)
    except ValueError:
        return False
    return math.isfinite(number) and number >= 0


def classify(ctx: Context, theirs: Any, ours: Any) -> set[str]:
    """The documented categories that explain how ``ours`` differs from ``theirs`` (LiteLLM's),
    or Unexplained."""
    kw, method = ctx.kwargs, ctx.method
    user = kw.get("user")
    if theirs == ours:
        return set()
    if method == "create_budget" and isinstance(user, int) and not isinstance(user, bool):
        ctx.explain(user, "int-user-key")  # LiteLLM's key is the int until its file is reloaded
    if theirs[0] == "ok" and ours[0] == "ok":
        return classify_value_diffs(ctx, diff_values(theirs[1], ours[1]), theirs[1], ours[1])
    if theirs[0] == "exc" and ours[0] == "exc":
        if theirs[1][0] in ours[1]:
            if method == "create_budget":  # LiteLLM's failed create may have left a record
                ctx.explain(user, "failed-create-changes-nothing")
            return set()
        if theirs[1][0] == "BadRequestError" and "UnknownModelError" in ours[1]:
            return {"unknown-model-error"}
        if theirs[1][0] == "BadRequestError" and model_of(kw) in OLDER_ONLY:
            return {"older-map-models"}  # priced here, so the unknown user is what is left
        raise Unexplained(f"{theirs[1][0]} against {ours[1][0]}")
    ctx.explain(user)
    if theirs[0] == "ok":  # only budgetctl raised
        bad = not possible_user(user) or not valid_budget(kw.get("total_budget"))
        if method == "create_budget" and "ValueError" in ours[1] and bad:
            return {"strict-input"}
        if method == "create_budget" and not possible_user(user) and "KeyError" in ours[1]:
            return {"strict-input"}
        raise Unexplained(f"LiteLLM returned {theirs[1]!r}, budgetctl raised {ours[1][0]}")
    # only LiteLLM raised
    duration = kw.get("duration")
    if method == "create_budget" and theirs[1][0] == "ValueError" and duration not in NAMED:
        return {"more-durations"}
    if theirs[1][0] == "BadRequestError" and model_of(kw) in OLDER_ONLY:
        return {"older-map-models"}
    if isinstance(user, int) and not isinstance(user, bool) and theirs[1][0] == "KeyError":
        return {"int-user-key"}
    if method == "reset_on_duration" and "last_updated_at" in theirs[2]:
        return {"reset-on-duration-lifetime"}
    raise Unexplained(f"LiteLLM raised {theirs[1][0]}: {theirs[2]}, budgetctl returned {ours[1]!r}")


# --- running ---------------------------------------------------------------------------------


@dataclass
class Tally:
    sequences: int = 0
    calls: int = 0
    comparisons: int = 0
    differing: int = 0
    categories: Counter[str] = field(default_factory=Counter)
    unexplained: list[str] = field(default_factory=list)


class Sequence:
    """One random sequence of calls on both managers."""

    def __init__(
        self,
        seed: int,
        lite: LiteLLMSide,
        work: Path,
        tally: Tally,
        factory: Callable[..., Any],
    ) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.lite = lite
        self.tally = tally
        self.now_us = START_US + self.rng.randrange(365 * DAY_US)
        folder = work / f"s{seed}"
        (folder / "litellm").mkdir(parents=True)
        self.lite.ask({"op": "new", "dir": str(folder / "litellm"), "t": self.now_us / 1e6})
        self.ours = OursSide(folder / "budgetctl", self.now_us, factory)
        self.seen_ids: set[str] = set()
        self.step = 0
        self.log: list[str] = []

    # the calls --------------------------------------------------------------------------------

    def user(self) -> Any:
        return pick(self.rng, USERS)

    def next_call(self) -> tuple[str, dict[str, Any]]:
        rng = self.rng
        method = rng.choices(
            [
                "create_budget", "update_cost", "get_current_cost", "get_model_cost",
                "get_total_budget", "is_valid_user", "get_users", "reset_cost",
                "reset_on_duration", "projected_cost", "update_budget_all_users", "save_data",
            ],
            [12, 22, 8, 8, 4, 4, 3, 4, 3, 5, 3, 1],
        )[0]  # fmt: skip
        if method == "create_budget":
            return method, self.create_kwargs()
        if method == "update_cost":
            return method, self.update_kwargs()
        if method == "projected_cost":
            messages = [
                {"role": rng.choice(["user", "system", "assistant"]), "content": rng.choice(TEXTS)}
                for _ in range(rng.randint(1, 3))
            ]
            return method, {"model": pick(rng, MODELS), "messages": messages, "user": self.user()}
        if method in ("get_users", "update_budget_all_users", "save_data"):
            return method, {}
        return method, {"user": self.user()}

    def create_kwargs(self) -> dict[str, Any]:
        rng = self.rng
        kwargs: dict[str, Any] = {
            "total_budget": pick(rng, BUDGETS),
            "user": self.user(),
            "duration": pick(rng, DURATIONS),
        }
        named = {"daily": 1, "weekly": 7, "monthly": 28, "yearly": 365}
        duration = kwargs["duration"]
        days = named.get(duration, 1) if isinstance(duration, str) else 1
        if rng.random() < 0.75:
            # within the first period, to the microsecond, so both libraries' periods can agree
            kwargs["created_at"] = (self.now_us - rng.randrange(days * DAY_US)) / 1e6
        return kwargs

    def update_kwargs(self) -> dict[str, Any]:
        rng = self.rng
        form = rng.choices(["completion", "text", "both", "neither"], [45, 35, 12, 8])[0]
        kwargs: dict[str, Any] = {"user": self.user()}
        if form in ("completion", "both"):
            kwargs["completion_obj"] = self.completion()
        if form in ("text", "both"):
            kwargs["model"] = pick(rng, MODELS)
            kwargs["input_text"] = rng.choice(TEXTS)
            kwargs["output_text"] = rng.choice(TEXTS)
        return kwargs

    def completion(self) -> dict[str, Any]:
        rng = self.rng
        prompt, completion = rng.randrange(0, 5000), rng.randrange(0, 2000)
        if self.seen_ids and rng.random() < 0.03:
            rid = rng.choice(sorted(self.seen_ids))  # a retry that sends the same response again
        else:
            rid = f"chatcmpl-{self.seed}-{self.step}"
        return {
            "id": rid,
            "object": "chat.completion",
            "created": 1_767_225_600,
            "model": pick(rng, MODELS),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "ok"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }

    # running and comparing ----------------------------------------------------------------------

    def run(self, calls: int) -> None:
        for self.step in range(calls):
            if self.rng.random() < 0.2:
                self.advance_clock()
            else:
                method, kwargs = self.next_call()
                self.play(method, kwargs)

    def play(self, method: str, kwargs: dict[str, Any], at_stop: bool = False) -> None:
        self.log.append(f"{method}({kwargs!r})")
        theirs = self.lite.ask(
            {"op": "call", "method": method, "kwargs": {k: enc(v) for k, v in kwargs.items()}}
        )
        ours = self.ours.call(method, kwargs)
        ctx = Context(method, kwargs, self.ours, set(self.seen_ids))
        self.count(lambda: classify(ctx, theirs, ours), f"{method} {theirs!r} / {ours!r}")
        completion = kwargs.get("completion_obj")
        if isinstance(completion, dict) and ours[0] == "ok":
            self.seen_ids.add(completion["id"])
        self.compare_states(ctx.explained, at_stop=at_stop, job=method == "update_budget_all_users")

    def count(self, check: Callable[[], set[str]], detail: str, compared: bool = True) -> set[str]:
        if compared:
            self.tally.comparisons += 1
        try:
            found = check()
        except Unexplained as exc:
            self.tally.differing += 1
            self.tally.categories["UNEXPLAINED"] += 1
            self.tally.unexplained.append(
                f"seed {self.seed} step {self.step}: {exc}\n  {detail}\n  calls: "
                + "\n    ".join(self.log[-8:])
            )
            return set()
        if found:
            self.tally.differing += 1
            self.tally.categories.update(found)
        return found

    def compare_states(self, explained: dict[str, str | None], *, at_stop: bool, job: bool) -> None:
        """Both user_dicts after a call: a difference the call did not explain must be a period
        that ended (at a clock stop), or it is unexplained."""
        theirs = self.lite.ask({"op": "dump"})[1]
        ours = enc(self.ours.dump())
        significant: dict[str, list[tuple[str, str]]] = {}
        for path, kind in diff_values(theirs, ours):
            user, _, rest = path.strip("/").partition("/")
            if kind in ("returns-floats", "rounding"):
                continue  # counted where a call returned it; floats drift between resyncs
            if kind == "extra" and rest in SHAPE_KEYS and is_default(value_at(ours, path), rest):
                continue  # a record's every key (record-has-every-key), counted at the call
            significant.setdefault(user, []).append((path, kind))
        # get_model_cost is 0 where LiteLLM's record has no model_cost: compare that too
        theirs_records = {str(k): v for k, v in dec(theirs).items()}
        for user in self.ours.dump():
            record = theirs_records.get(user)
            if isinstance(record, dict) and ("model_cost" in record) != self.charged_or_reset(user):
                significant.setdefault(user, []).append((f"/{user}/model_cost", "presence"))
        self.tally.comparisons += 1

        def check(user: str, own: list[tuple[str, str]]) -> set[str]:
            if user in explained:
                category = explained[user]
                return set() if category is None else {category}
            if at_stop and user in self.ours.dump():
                budget = self.ours.bm.ledger.get(user)
                if budget.duration is not None and budget.duration.text in ("monthly", "yearly"):
                    return {"calendar-periods"}
                if budget.duration is not None and not job:
                    return {"period-over-without-job"}
            raise Unexplained(f"state of user {user!r}: {own}")

        for user, own in sorted(significant.items()):
            self.count(lambda u=user, o=own: check(u, o), f"user_dict[{user!r}]", compared=False)
        if significant:
            self.resync()

    def charged_or_reset(self, user: str) -> bool:
        """Whether LiteLLM's record of ``user`` would have ``model_cost`` (budgetctl's
        get_model_cost is 0 exactly when it would not)."""
        return bool(self.ours.bm.get_model_cost(user) != 0)

    def resync(self) -> None:
        """LiteLLM's user_dict set to budgetctl's (in LiteLLM's key shape and order)."""
        theirs = dec(self.lite.ask({"op": "dump"})[1])
        ours = self.ours.dump()
        for user in list(theirs):
            if user not in ours:
                self.lite.ask({"op": "sync", "user": enc(user), "record": enc(None)})
        for user, record in ours.items():
            shaped = {"total_budget": record["total_budget"]}
            if "duration" in record:
                for key in ("duration", "created_at", "last_updated_at"):
                    shaped[key] = record[key]
            if self.charged_or_reset(user):  # LiteLLM sets both keys at a charge or a reset
                shaped["current_cost"] = record["current_cost"]
                shaped["model_cost"] = record["model_cost"]
            self.lite.ask({"op": "sync", "user": enc(user), "record": enc(shaped)})
        self.lite.ask({"op": "order", "users": [enc(user) for user in ours]})

    def advance_clock(self) -> None:
        rng = self.rng
        span = rng.choice([60_000_000, 3_600_000_000, 3 * DAY_US, 40 * DAY_US])
        target = self.now_us + rng.randrange(1, span)
        stops = sorted(us for us in self.boundaries() if self.now_us < us <= target)
        # The two sides' boundaries of one period can be a microsecond apart (LiteLLM adds days
        # to a float): stop after both.
        stop = stops[0] if stops else target
        while any(stop < us <= stop + 2 for us in stops):
            stop = max(us for us in stops if us <= stop + 2)
        self.now_us = stop
        self.ours.now_us = self.now_us
        self.lite.ask({"op": "clock", "t": self.now_us / 1e6})
        self.log.append(f"clock -> {self.now_us}")
        if stops and rng.random() < 0.85:
            self.play("update_budget_all_users", {}, at_stop=True)
        else:
            self.compare_states(set(), at_stop=bool(stops), job=False)

    def boundaries(self) -> list[int]:
        found = []
        ledger = self.ours.bm.ledger
        for budget in ledger.view().users if ledger.exists() else ():
            if budget.next_reset_at is not None:
                found.append(round((budget.next_reset_at - EPOCH) / timedelta(microseconds=1)))
        for record in dec(self.lite.ask({"op": "dump"})[1]).values():
            try:
                last, seconds = record["last_updated_at"], record["duration"] * 24 * 60 * 60
                us = math.ceil((last + seconds) * 1e6)
            except (KeyError, TypeError, ValueError, OverflowError):
                continue
            while us / 1e6 - last < seconds:  # LiteLLM's own test, in floats
                us += 1
            found.append(us)
        return found


def run_differential(
    sequences: int,
    calls: int,
    seed: int,
    *,
    python: str | None = None,
    factory: Callable[..., Any] | None = None,
    progress: bool = False,
) -> Tally:
    """Play ``sequences`` random sequences of ``calls`` calls on both managers; the tally."""
    from run import ensure_litellm

    if factory is None:
        from budgetctl import BudgetManager

        factory = BudgetManager
    python = python or ensure_litellm()
    if python is None:
        raise SystemExit("LiteLLM could not be installed into bench/.venv-litellm")
    tally = Tally()
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp:
        lite = LiteLLMSide(python, Path(tmp) / "litellm-driver.log")
        try:
            started = time.monotonic()
            for number_ in range(sequences):
                sequence = Sequence(seed + number_, lite, Path(tmp), tally, factory)
                sequence.run(calls)
                tally.sequences += 1
                tally.calls += sequence.step + 1
                if progress and (number_ + 1) % 100 == 0:
                    elapsed = time.monotonic() - started
                    print(f"{number_ + 1} sequences, {elapsed:.0f} s, {dict(tally.categories)}")
        finally:
            lite.close()
    return tally


def report(tally: Tally) -> str:
    lines = [
        f"sequences: {tally.sequences}, calls: {tally.calls}, comparisons: {tally.comparisons}, "
        f"differing: {tally.differing}",
        "",
        "| difference | comparisons | documented as |",
        "|---|---|---|",
    ]
    for name, count in tally.categories.most_common():
        lines.append(f"| `{name}` | {count:,} | {DOCUMENTED.get(name, 'NOT DOCUMENTED')} |")
    for example in tally.unexplained[:20]:
        lines.append("")
        lines.append(example)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=3000)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--report", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    tally = run_differential(args.sequences, args.calls, args.seed, progress=True)
    text = report(tally)
    print(text)
    if args.report:
        args.report.write_text(text + "\n")
    return 1 if tally.unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
