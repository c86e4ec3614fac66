"""Command functions: parse options, call one Ledger method, show a report. Registered in
:mod:`budgetctl.cli.root`; their docstrings are their ``--help`` text.

These modules do not use ``from __future__ import annotations`` (the rest of the package does):
Typer reads a command's parameter types from its signature, and a string annotation costs one
``eval`` (a compile) per parameter each time a command is built. A name imported for type
checking only is quoted where it annotates.
"""
