"""The budgetctl command line (placeholder until the full CLI lands)."""

from __future__ import annotations

import sys

from budgetctl._version import __version__


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        print(f"budgetctl {__version__}")
        return
    print("budgetctl: the command line is not built yet", file=sys.stderr)
    raise SystemExit(2)
