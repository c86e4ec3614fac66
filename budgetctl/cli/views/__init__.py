"""Results as :class:`~budgetctl.cli.report.Report` objects: the JSON document a script reads and
the lines, tables and charts a person reads, built from the library's result values."""
