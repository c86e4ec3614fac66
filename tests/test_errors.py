"""budgetctl's exceptions cross process boundaries: pickled, and raised in a multiprocessing pool.

A ``multiprocessing.Pool`` sends a worker's exception back pickled; an exception class whose
``__init__`` takes other arguments than its message cannot be rebuilt there, and the pool's result
thread dies, leaving ``get()`` waiting for ever. Every class in ``budgetctl/errors.py`` (those
added later included: the classes are found, not listed) must round-trip with its message and
attributes.
"""

from __future__ import annotations

import inspect
import multiprocessing
import pickle
from decimal import Decimal
from typing import Any

import pytest

from budgetctl import errors

SAMPLES: dict[str, Any] = {
    "str": "alice",
    "object": "/data/p.json",
    "int": 7,
    "float": 2.5,
    "Decimal": Decimal("1.25"),
    "list[str] | tuple[str, ...]": ["gpt-4o", "gpt-4o-mini"],
    "str | None": "a message",
}


def _classes() -> list[type[errors.BudgetctlError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.BudgetctlError) and cls.__module__ == errors.__name__
    ]


def make(cls: type[errors.BudgetctlError]) -> errors.BudgetctlError:
    """An instance of ``cls`` built from sample values for its parameters' annotations."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for parameter in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        value = SAMPLES.get(str(parameter.annotation), f"{parameter.name}-value")
        if parameter.kind == parameter.KEYWORD_ONLY:
            kwargs[parameter.name] = value
        else:
            args.append(value)
    return cls(*args, **kwargs)


def raise_in_worker(name: str) -> None:
    raise make(getattr(errors, name))


CLASSES = _classes()


def test_every_error_class_is_found() -> None:
    assert len(CLASSES) >= 19
    assert errors.CorruptStateError in CLASSES and errors.BudgetExceededError in CLASSES


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_round_trips_through_pickle(cls: type[errors.BudgetctlError]) -> None:
    error = make(cls)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        copy = pickle.loads(pickle.dumps(error, protocol))
        assert type(copy) is cls
        assert str(copy) == str(error) and copy.message == error.message
        assert copy.exit_code == error.exit_code
        assert vars(copy) == vars(error)
        assert copy.args == error.args


def test_a_pool_worker_raising_one_reports_it() -> None:
    names = [cls.__name__ for cls in CLASSES]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pending = [(name, pool.apply_async(raise_in_worker, (name,))) for name in names]
        for name, result in pending:
            with pytest.raises(getattr(errors, name)) as caught:
                result.get(timeout=30)  # a lost exception would hang here, not fail
            assert str(caught.value) == str(make(getattr(errors, name)))
