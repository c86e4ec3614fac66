"""The differential test against LiteLLM 1.110.2, a few sequences of it (bench/differential.py).

LiteLLM is never a dependency of budgetctl or of its tests: it lives in bench/.venv-litellm, which
``python bench/differential.py`` (or ``python bench/run.py --litellm``) installs from PyPI. Tests
never touch the network, so where that venv does not exist these tests are skipped, saying so and
how to create it; where it exists they run. `.ci/run` creates it before the suite and sets
``BUDGETCTL_REQUIRE_LITELLM=1``, which turns that skip into a failure: in CI they always run.
The full run (thousands of sequences) is the bench script's job; its last result is in
docs/library.md.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from budgetctl import BudgetManager

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"
VENV_PYTHON = BENCH / ".venv-litellm" / "bin" / "python"

pytestmark = [pytest.mark.litellm]


@pytest.fixture
def litellm_python() -> str:
    """bench/.venv-litellm's python; a skip where it is absent, a failure where it is required."""
    if not VENV_PYTHON.exists():
        why = (
            "LiteLLM's venv bench/.venv-litellm is absent; `python bench/differential.py` "
            "creates it (from PyPI) and runs the full differential"
        )
        if os.environ.get("BUDGETCTL_REQUIRE_LITELLM"):
            pytest.fail(why + " (BUDGETCTL_REQUIRE_LITELLM is set: it must be there)")
        pytest.skip(why)
    return str(VENV_PYTHON)


def differential() -> Any:
    sys.path.insert(0, str(BENCH))
    try:
        import differential as module
    finally:
        sys.path.remove(str(BENCH))
    return module


def test_a_few_sequences_differ_only_as_documented(litellm_python: str) -> None:
    module = differential()
    tally = module.run_differential(40, 30, seed=20261201, python=litellm_python)
    assert tally.sequences == 40 and tally.comparisons > 1000
    assert not tally.unexplained, "\n\n".join(tally.unexplained[:5])
    assert set(tally.categories) <= set(module.DOCUMENTED)


class Sabotaged(BudgetManager):
    """A BudgetManager with one LiteLLM behaviour broken, which the harness must catch."""

    def get_model_cost(self, user: str) -> Any:
        return {}


def test_the_harness_catches_an_undocumented_difference(litellm_python: str) -> None:
    module = differential()
    tally = module.run_differential(10, 30, seed=7, python=litellm_python, factory=Sabotaged)
    assert tally.unexplained and "get_model_cost" in "".join(tally.unexplained)


def test_every_documented_difference_is_in_the_library_docs() -> None:
    library = (REPO / "docs" / "library.md").read_text()
    for name in differential().DOCUMENTED:
        assert re.search(rf"`{re.escape(name)}`", library), name


def test_the_litellm_side_is_litellm_1_110_2(litellm_python: str) -> None:
    probe = subprocess.run(
        [litellm_python, "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert probe.stdout.strip() == "1.110.2"
