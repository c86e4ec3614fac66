"""The options of the command line that several commands share, defined once as ``Annotated``
aliases; those most commands share, added to a command by one decorator; and the few helpers that
turn them into a :class:`~budgetctl.ledger.Ledger` or read an input file. An option or argument
that only one module of commands takes is an alias in that module (``budgetctl.cli.commands.*``),
built with :func:`opt`, :func:`flag` and :func:`arg`: a one-shot command imports one module of
commands, and builds only the aliases it may use (each costs about 0.03 ms: a ``typer.Option`` and
an ``Annotated``; they were 50 in this module).

Amounts are taken as text and parsed by the library (exact Decimals, clear errors); token counts
are ints that the library range-checks. Environment variables are shown in ``--help``.

Adding a command
----------------
A command declares its own arguments and options with aliases (below, or in its own module),
and gets the shared ones (``-p/--project``, ``--data-dir``, ``--database-url``, ``--json``, and
where asked ``--prices``, ``--dry-run``, ``-q/--quiet``) from :func:`shared_options`, as one
:class:`CommonOptions` value::

    @shared_options(writes=True)     # -p, --data-dir, --database-url, --json, --dry-run, -q
    def release(opts: CommonOptions, holds: HoldIds) -> None:
        '''Free the holds ID... (the calls were not made).

        Example: budgetctl release h-1a2b
        '''
        ledger = opts.ledger()
        done = ledger.release(holds, dry_run=opts.dry_run)
        opts.output().show(views.released(done, opts.dry_run))

then one line in :data:`budgetctl.cli.root.COMMANDS` (``"release": ("holds", "release")``) and a
section in docs/cli.md (``tests/test_docs.py`` checks it). The shared options come after the
command's own in ``--help``, in the same order for every command, and ``-p``/``--data-dir``/
``--database-url``/``--prices`` also work before the command name
(:func:`budgetctl.cli.root.hoist`).

How it works: Typer builds a command's parameters from its function's signature
(``inspect.signature``), so a wrapper that takes ``**kwargs`` shows Typer no option at all, and
Typer issue #1898 reports a ``__signature__`` patched over a ``*args, **kw`` wrapper losing the
command's positional arguments (Typer 0.26). Here the wrapper takes keywords only (Typer passes
every parameter by keyword), and its ``__signature__`` lists every parameter with its resolved
``Annotated`` type: the command's own, minus the ``CommonOptions`` one, then one keyword
parameter per shared option. The wrapper gathers the shared ones into a ``CommonOptions``
(``tests/test_cli_options.py`` runs a command with a positional argument through it). This runs
once per command when its module is imported (under 0.1 ms each; a one-shot command imports one
module of commands).

A new option that several commands share goes into ``_SHARED`` (its alias and default, in
``--help`` order) and gets a flag of :func:`shared_options`; an option of one command is an alias
beside the command, in its module, that the command names in its own signature.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from budgetctl.cli import complete
from budgetctl.cli.output import Output
from budgetctl.core.record import Record
from budgetctl.errors import UsageError

if TYPE_CHECKING:
    from budgetctl.ledger import Ledger


def opt(
    *flags: str,
    metavar: str,
    help: str,
    envvar: str | None = None,
    completion: Callable[..., list[str]] | None = None,
) -> Any:
    """An option that takes a value (shown as ``metavar``, no default in ``--help``)."""
    return typer.Option(
        *flags,
        metavar=metavar,
        help=help,
        envvar=envvar,
        show_default=False,
        autocompletion=completion,
    )


def flag(*flags: str, help: str) -> Any:
    """An on/off option."""
    return typer.Option(*flags, help=help)


def arg(metavar: str, help: str, completion: Callable[..., list[str]] | None = None) -> Any:
    """A positional argument."""
    return typer.Argument(metavar=metavar, help=help, show_default=False, autocompletion=completion)


# --- shared by every command ----------------------------------------------------------------------
Project = Annotated[
    str,
    typer.Option(
        "--project",
        "-p",
        envvar="BUDGETCTL_PROJECT",
        metavar="NAME",
        help="Project: a namespace of users with its own state file.",
        autocompletion=complete.projects,
    ),
]
DataDir = Annotated[
    str | None,
    opt(
        "--data-dir",
        metavar="DIR",
        envvar="BUDGETCTL_DATA_DIR",
        help="Directory of the state files (default: the platform's user data directory).",
    ),
]
DatabaseUrl = Annotated[
    str | None,
    opt(
        "--database-url",
        metavar="URL",
        envvar="BUDGETCTL_DATABASE_URL",
        help="A PostgreSQL database (postgresql://USER@HOST:PORT/DATABASE) to use instead of the "
        "data directory; 'budgetctl db migrate' creates its tables.",
    ),
]
AsJson = Annotated[bool, flag("--json", help="Print one JSON document on stdout and nothing else.")]
DryRun = Annotated[bool, flag("--dry-run", help="Say what would change, and change nothing.")]
Quiet = Annotated[
    bool, flag("--quiet", "-q", help="Print nothing on success (cron mails only failures).")
]
Prices = Annotated[
    str | None,
    opt(
        "--prices",
        metavar="FILE",
        envvar="BUDGETCTL_PRICES",
        help="A LiteLLM-format price map whose entries win over the bundled table.",
    ),
]

# --- shared by several modules of commands --------------------------------------------------------
User = Annotated[str, arg("USER", "The user: any name, email or key id.", complete.users)]
OptionalUser = Annotated[
    str | None, arg("USER", "One user (default: all of them).", complete.users)
]
Replace = Annotated[bool, flag("--replace", help="Overwrite budgets that already exist.")]
Yes = Annotated[bool, flag("--yes", "-y", help="Do it without asking (needed in scripts).")]


# --- the shared options, added by a decorator ----------------------------------------------------
class CommonOptions(Record):
    """The shared options of one command run (those the command does not take keep their
    defaults here: no ``--dry-run`` is ``dry_run=False``)."""

    project: str = "default"
    data_dir: str | None = None
    database_url: str | None = None
    prices: str | None = None
    as_json: bool = False
    dry_run: bool = False
    quiet: bool = False

    def ledger(self) -> Ledger:
        """The project's ledger, with ``--data-dir`` (or ``--database-url``) and ``--prices``."""
        return open_ledger(self.project, self.data_dir, self.prices, self.database_url)

    def output(self) -> Output:
        """Where the command's report goes, with ``--json`` and ``-q``."""
        return Output(as_json=self.as_json, quiet=self.quiet)


# name: (annotation, default), in the order --help lists them, after the command's own options
_SHARED: dict[str, tuple[Any, Any]] = {
    "prices": (Prices, None),
    "project": (Project, "default"),
    "data_dir": (DataDir, None),
    "database_url": (DatabaseUrl, None),
    "as_json": (AsJson, False),
    "dry_run": (DryRun, False),
    "quiet": (Quiet, False),
}

CommandFunction = Callable[..., Any]


def shared_options(
    *,
    project: bool = True,
    data_dir: bool = True,
    as_json: bool = True,
    prices: bool = False,
    writes: bool = False,
    quiet: bool = False,
) -> Callable[[CommandFunction], CommandFunction]:
    """Add the shared options to a command whose function takes a ``CommonOptions`` parameter.

    Always ``--database-url``; ``-p/--project``, ``--data-dir`` and ``--json`` unless turned off
    (``db`` has no data dir); ``--prices`` for a
    command that prices calls; ``writes=True`` (a command that changes state) adds ``--dry-run``
    and ``-q/--quiet``; ``quiet=True`` adds ``-q/--quiet`` alone.
    """
    wanted = {
        "prices": prices,
        "project": project,
        "data_dir": data_dir,
        "database_url": True,
        "as_json": as_json,
        "dry_run": writes,
        "quiet": writes or quiet,
    }
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=default)
        for name, (kind, default) in _SHARED.items()
        if wanted[name]
    ]
    names = [parameter.name for parameter in added]

    def decorate(command: CommandFunction) -> CommandFunction:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.annotation is not CommonOptions]
        if len(own) != len(signature.parameters) - 1:
            raise TypeError(f"{command.__name__} needs exactly one CommonOptions parameter")
        (target,) = (p.name for p in signature.parameters.values() if p not in own)
        taken = {p.name for p in own} & set(names)
        if taken:
            raise TypeError(f"{command.__name__} declares shared options itself: {taken}")

        @functools.wraps(command)
        def run(**values: Any) -> Any:
            shared = CommonOptions(**{name: values.pop(name) for name in names})
            return command(**values, **{target: shared})

        run.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in (*own, *added)}
        run.__annotations__["return"] = signature.return_annotation
        return run

    return decorate


def open_ledger(
    project: str, data_dir: str | None, prices: str | None = None, database_url: str | None = None
) -> Ledger:
    """The project's ledger (imported here, so ``--help`` and completion stay light): on the
    budget server of ``BUDGETCTL_SERVER`` when it is set (client mode: docs/server.md), in the
    database at ``database_url`` when one is given, else in ``data_dir``. The driver is imported
    only when the database is first used."""
    from budgetctl.client import configured_server
    from budgetctl.ledger import Ledger

    if configured_server() is not None and database_url:
        raise UsageError(
            "BUDGETCTL_SERVER and --database-url (or BUDGETCTL_DATABASE_URL) are both set: a "
            "command runs on the budget server or on the database, not both; unset one"
        )
    return Ledger(
        project, data_dir or None, prices_file=prices or None, database_url=database_url or None
    )


def is_new_project(ledger: Ledger) -> bool:
    """True when the project has no state and no custom prices yet: a write creates it."""
    return not ledger.exists() and not ledger.store.prices()


def read_input(path: str, what: str) -> str:
    """The text of ``path`` (``-`` is stdin), for ``--response`` and ``--messages``."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as handle:
                data = handle.read()
    except OSError as exc:
        raise UsageError(f"cannot read the {what} file {path} ({exc.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"the {what} in {path} is not UTF-8 text") from None
    if not text.strip():
        source = "stdin" if path == "-" else path
        raise UsageError(f"the {what} on {source} is empty; pipe or pass a JSON document")
    return text


def confirm(question: str, command: str, done: str) -> None:
    """Ask ``question`` on a terminal (no: abort, exit 1); elsewhere say to pass --yes (exit 2).
    ``delete`` and ``reset --all`` ask first, as they cannot be undone."""
    from budgetctl.cli import output

    if not output.stdin_is_terminal():
        raise UsageError(f"{command} needs --yes when stdin is not a terminal; nothing was {done}")
    if not typer.confirm(question):
        raise typer.Abort()


def alert_value(text: str | None) -> str | None:
    """``--alert-at 80`` or ``80%``; ``none`` or ``off`` clears it (returned as None)."""
    if text is None:
        return None
    cleaned = text.strip().rstrip("%").strip()
    return None if cleaned.lower() in ("none", "off") else cleaned
