"""The budgetctl command line: parse options, call one :class:`~budgetctl.ledger.Ledger` method,
render the result (rich on a terminal, plain text in a pipe, one JSON document with ``--json``).

The package holds no ledger arithmetic and opens no state files: everything goes through the
library. Heavy modules (rich, tiktoken) load only on the paths that need them.
"""
