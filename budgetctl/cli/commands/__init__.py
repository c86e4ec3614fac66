"""Command functions: parse options, call one Ledger method, show a report. Registered in
:mod:`budgetctl.cli.root`; their docstrings are their ``--help`` text."""
