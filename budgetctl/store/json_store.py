"""The JSON store: one state file per project, an append-only history beside it, a lock.

Files in the data dir, for project ``P`` (docs/state-format.md; names in :mod:`.layout`):

- ``P.json``: the state, replaced atomically (temp file in the same dir, fsync, ``os.replace``,
  fsync of the dir), so a reader sees the old state or the new one, never half a file;
- ``P+history.jsonl``: one JSON event a line, appended before the state that counts it is
  written. The state records how many bytes of history it counts (``history.size``); readers
  never read past it. A tail beyond it was left by a writer that died before its commit, or is
  what was recorded after the backup a restored state came from: the next writer moves it to
  ``P+history.<n>.orphan.jsonl`` (never destroys it) and warns. So a crash at any instant leaves a
  balance that equals its history;
- the data dir itself is locked with ``flock`` across every read-modify-write (:mod:`.lock`: no
  lock file, so deleting a file cannot let two writers in);
- ``P+request-ids.sqlite``: the request ids charged, pointing into the history
  (:mod:`budgetctl.store.request_ids`), so a charge never reads them all.

Every file is opened without following symlinks and must be a regular file we own, in a data dir
only we can write (:mod:`.files`). A file that is not what budgetctl wrote is reported (file and
reason) and never overwritten.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from budgetctl import commits
from budgetctl.core import events, jsontext, rules
from budgetctl.core.rules import CAP, ClosedPeriod, RememberedCharge
from budgetctl.costing.interface import Price
from budgetctl.errors import (
    CorruptStateError,
    HistoryKeptAsideWarning,
    ProjectExistsError,
    StorageIOError,
    UnknownModelError,
    UnknownProjectError,
    UsageError,
)
from budgetctl.store import (
    codec,
    document,
    files,
    history,
    layout,
    lock,
    prices_file,
    request_ids,
)
from budgetctl.store import spend as spending
from budgetctl.store.document import FORMAT, VERSION, DocumentState, DocumentStore

if TYPE_CHECKING:  # only dump and restore use it: no charge pays for its import
    from budgetctl.store import snapshot

__all__ = ["FORMAT", "VERSION", "JsonStore", "list_projects", "state_path"]


def state_path(data_dir: Path, project: str) -> Path:
    return layout.files(data_dir, project).state


def list_projects(folder: Path) -> list[str]:
    """Names of the projects that have a state file in ``folder``, sorted ([] if it is missing).

    A 0.1 data dir may hold ``P.prices.json`` as project ``P``'s prices: that is no project.
    """
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StorageIOError(folder, f"cannot list the data directory ({exc.strerror})") from None
    found = []
    for project, name in layout.state_names(names).items():
        try:
            rules.check_project_name(project)
        except UsageError:
            continue
        if name.endswith(".prices.json") and _is_old_prices_file(folder / name):
            continue
        found.append(project)
    return sorted(found)


def _is_old_prices_file(path: Path) -> bool:
    try:
        fd = files.open_file(path, os.O_RDONLY)
    except (OSError, StorageIOError):
        return False  # listed; using it will say what is wrong
    try:
        return prices_file.is_prices_file(os.read(fd, 200))
    finally:
        os.close(fd)


class JsonStore(DocumentStore):
    """A project's ledger in ``<data_dir>/<project>.json``. See the module docstring."""

    def __init__(self, project: str, data_dir: Path, lock_timeout: float | None = None) -> None:
        self.project = rules.check_project_name(project)
        self.data_dir = Path(data_dir)
        self.files = layout.files(self.data_dir, project)
        self.old_files = layout.legacy(self.data_dir, project)  # budgetctl 0.1's names
        self.path = self.files.state
        self.history_path = self.files.history
        self.prices_path = self.files.prices
        self.request_ids_path = self.files.request_ids
        self.where = self.path
        # Read now, so that a bad BUDGETCTL_LOCK_TIMEOUT fails every command alike, reads too.
        self.lock_timeout = (
            lock.lock_timeout() if lock_timeout is None else lock.check_timeout(lock_timeout)
        )

    # --- reading ---------------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.path.exists()

    def _missing(self) -> StorageIOError | UnknownProjectError:
        """Why there is no state file: a data dir that is not a directory, or no such project."""
        if self.data_dir.exists() and not self.data_dir.is_dir():
            return StorageIOError(
                self.data_dir,
                "is not a directory",
                "give a folder as --data-dir/BUDGETCTL_DATA_DIR",
            )
        return UnknownProjectError(self.project, self.data_dir)

    def _load(self, must_exist: bool) -> dict[str, Any] | None:
        try:
            files.check_dir(self.data_dir)
            data = files.read_all(files.open_file(self.path, os.O_RDONLY))
        except FileNotFoundError:
            if must_exist:
                raise UnknownProjectError(self.project, self.data_dir) from None
            return None
        except OSError as exc:
            raise StorageIOError(self.path, f"cannot read ({exc.strerror})") from None
        return self._parse(data)

    def _parse(self, data: bytes) -> dict[str, Any]:
        if not data.strip():
            raise CorruptStateError(self.path, "the file is empty")
        try:
            doc = jsontext.loads(data)
        except UnicodeDecodeError:
            raise CorruptStateError(self.path, "the file is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise CorruptStateError(
                self.path, f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
            ) from None
        doc = document.check_document(doc, self.path)
        if not all(isinstance(seen, str) for seen in doc.get("request_ids", {}).values()):
            raise CorruptStateError(self.path, "the file's structure is not a budgetctl state")
        return doc

    # --- writing ---------------------------------------------------------------------------------

    def _ensure_dir(self) -> None:
        """The data dir, created (with its missing parents, each 0700) if need be, and checked."""
        try:
            files.check_dir(self.data_dir)
        except FileNotFoundError:
            files.make_dirs(self.data_dir)
            files.check_dir(self.data_dir)

    def _checked_dir(self) -> bool:
        """Whether the data dir exists (it is checked when it does)."""
        try:
            files.check_dir(self.data_dir)
        except FileNotFoundError:
            return False
        return True

    # --- the document store's interface (budgetctl.store.document) ------------------------------

    def load(self, must_exist: bool) -> dict[str, Any] | None:
        """The committed state (one read: a consistent snapshot)."""
        with jsontext.gc_paused():
            return self._load(must_exist)

    def load_for_change(self, must_exist: bool) -> dict[str, Any] | None:
        """The committed state, the history it counts checked to be all there."""
        doc = self.load(must_exist)
        if doc is not None:
            self._check_history(doc["history"]["size"])
        return doc

    @contextmanager
    def locked(self, *, create: bool, dry_run: bool) -> Iterator[lock.Held | None]:
        """The data dir's lock around a read-modify-write (none for a dry run: the state is
        replaced atomically, so one read is a consistent snapshot). An operation on a project that
        does not exist creates no file, and a dry run creates no directory."""
        if not create and not self.path.exists():
            raise self._missing()
        if dry_run:
            yield None
            return
        if create:
            self._ensure_dir()
        else:
            self._checked_dir()
        with lock.exclusive(self.data_dir, self.lock_timeout) as held, jsontext.gc_paused():
            yield held

    def close(self, state: DocumentState) -> None:
        if state.index is not None:
            state.index.close()
            state.index = None

    def _check_history(self, recorded: int) -> None:
        """A history shorter than the state counts has lost entries: the state is not trusted."""
        paths = (self.history_path, self.old_files.history)
        try:
            fd, path = files.open_first(paths, os.O_RDONLY)
        except FileNotFoundError:
            actual, path = 0, self.history_path
        except OSError as exc:
            raise StorageIOError(self.history_path, f"cannot read ({exc.strerror})") from None
        else:
            try:
                actual = os.fstat(fd).st_size
            finally:
                os.close(fd)
        if actual < recorded:
            raise CorruptStateError(
                path,
                f"the history is {actual} bytes but the state counts {recorded}: entries were lost",
            )

    def _adopt_old_names(self) -> None:
        """Give a project's files the names of this version (under the lock, before a commit).

        budgetctl 0.1 named them ``P.history.jsonl``, ``P.prices.json`` and ``P.lock``; the state
        keeps its name. Readers look under both names, so each rename is safe on its own. Lock
        files (0.1's ``P.lock``, and ``P+lock`` of earlier builds of this version) are removed.
        """
        old, new = self.old_files, self.files
        renamed = False
        for source, target in ((old.history, new.history), (old.prices, new.prices)):
            try:
                fd = files.open_file(source, os.O_RDONLY)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StorageIOError(source, f"cannot read ({exc.strerror})") from None
            try:
                if source == old.prices and not prices_file.is_prices_file(os.read(fd, 200)):
                    continue  # the state of a project named '<project>.prices'
            finally:
                os.close(fd)
            if os.path.lexists(target):
                raise StorageIOError(
                    source,
                    f"budgetctl 0.1's name for {target.name}, and both exist",
                    "was budgetctl 0.1 run after the upgrade? keep the right one, move the "
                    "other aside",
                )
            try:
                os.rename(source, target)
            except OSError as exc:
                raise StorageIOError(source, f"cannot rename ({exc.strerror})") from None
            renamed = True
        if renamed:
            self._sync_dir()
        for unused in (old.lock, new.lock):  # lock files: the data dir is locked instead
            with suppress(OSError):
                os.unlink(unused)  # a link is removed, not followed

    def _keep_tail(self, recorded: int) -> None:
        """Before appending: move what the history holds past what the state counts aside.

        That tail was appended by a writer that died before its commit, or the state was restored
        from a backup and it is what was recorded since: nothing tells the two apart for sure, so
        it is never destroyed. It goes to ``P+history.<n>.orphan.jsonl`` (the whole file when the
        state counts none of it), with a warning naming that file.
        """
        try:
            fd = files.open_file(self.history_path, os.O_RDWR)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageIOError(self.history_path, f"cannot read ({exc.strerror})") from None
        kept = layout.orphan(self.data_dir, self.project, time.time_ns())
        try:
            actual = os.fstat(fd).st_size
            if actual <= recorded:
                return
            if recorded == 0:
                lines = files.each_chunk(fd, 0)
                os.rename(self.history_path, kept)
                self._sync_dir()
            else:
                lines = files.copy_tail(fd, recorded, kept)
                self._sync_dir()
                os.ftruncate(fd, recorded)
                os.fsync(fd)
        except OSError as exc:
            raise StorageIOError(
                self.history_path, f"cannot keep its uncounted tail aside ({exc.strerror})"
            ) from None
        finally:
            os.close(fd)
        state = self.path.name
        warnings.warn(
            HistoryKeptAsideWarning(
                f"{self.history_path} held {actual - recorded} bytes "
                f"({files.count_lines(lines)}) that "
                f"{state} does not count: moved to {kept} (a command that was interrupted, or, "
                f"if {state} was restored from a backup, what was recorded after that backup, "
                "which its balances do not include)"
            ),
            stacklevel=1,
        )

    def _append(self, lines: bytes) -> None:
        try:
            fd = files.open_file(self.history_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                files.write_all(fd, lines)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise StorageIOError(
                self.history_path, f"cannot append to the history ({exc.strerror})"
            ) from None

    def _take_back(self, recorded: int) -> None:
        """After a failure before the commit: remove what this transaction appended (its own
        bytes, under the lock), so a full disk does not leave tails for the next writer."""
        with suppress(OSError, StorageIOError):
            fd = files.open_file(self.history_path, os.O_WRONLY)
            try:
                if os.fstat(fd).st_size > recorded:
                    os.ftruncate(fd, recorded)
                    os.fsync(fd)
            finally:
                os.close(fd)

    def commit(self, state: DocumentState) -> None:
        """Append the transaction's events to the history, index their request ids, then replace
        the state that counts them (the commit point); a failure before it takes back the history
        this transaction appended."""
        if state.held is not None:
            state.held.check()
        doc = state.doc
        recorded = doc["history"]["size"]
        self._adopt_old_names()
        self._sweep_temp_files()
        self._keep_tail(recorded)
        before = files.inode(self.path)
        try:
            if "request_ids" in doc:  # a 0.1 state: its ids move to the index (once)
                self._ids(state).build(recorded, doc.pop("request_ids"))
            if state.events:
                encoded = (event.to_json() for event in state.events)  # each dropped once written
                lines = history.link_and_encode(encoded, doc, recorded)
                self._append(lines)
                self._index_request_ids(state, lines, recorded)
                doc["history"] = {"size": recorded + len(lines)}
            doc["version"] = document.VERSION
            data = history.ENCODER.encode(doc).encode("utf-8")
            self._replace(data)
        except BaseException:  # a failure, or an interrupt (Ctrl-C in a library caller, too)
            if files.inode(self.path) == before:  # not committed: the old state does not count
                self._take_back(recorded)
            raise

    def _index_request_ids(self, state: DocumentState, lines: bytes, offset: int) -> None:
        """Remember the idempotency keys of the charges in ``lines`` (appended at ``offset``),
        after the history's fsync and before the state's replace (budgetctl.store.request_ids)."""
        kinds = {event.__class__ for event in state.events}  # (a set: one pass in C)
        if (events.Charge not in kinds and events.Commit not in kinds) or not any(
            rules.idempotency_keys(event) for event in state.events
        ):
            return  # e.g. a reset-due: 100,000 period events, no line worth splitting out
        entries = []
        for event, line in zip(state.events, lines.split(b"\n"), strict=False):
            for key in rules.idempotency_keys(event):
                entries.append((key, offset, state.now))
            offset += len(line) + 1
        if entries:
            horizon = rules.request_id_horizon(state.now, request_ids.wall_clock())
            self._ids(state).add(entries, horizon)

    def _ids(self, state: DocumentState) -> request_ids.RequestIdIndex:
        """The transaction's own handle on the index (closed with it: a store may be shared by
        threads, and a dry run takes no lock)."""
        if state.index is None:
            state.index = request_ids.RequestIdIndex(self.request_ids_path, self.history_path)
        index: request_ids.RequestIdIndex = state.index
        return index

    def remembered(self, state: DocumentState, key: str) -> RememberedCharge | None:
        """What ``key`` was charged for in this project, or None (never, or forgotten)."""
        horizon = rules.request_id_horizon(state.now, request_ids.wall_clock())
        size = state.doc["history"]["size"]
        inline = state.doc.get("request_ids")
        if inline is not None:  # a 0.1 state, until a commit moves its ids to the index
            if request_ids.inline_find(inline, key, horizon) is None:
                return None
            found = self._ids(state).scan(key, size, horizon)
            return found or RememberedCharge(user="", cost=Decimal(0), known=False)
        return self._ids(state).find(key, size, horizon, build=not state.dry_run)

    def _sweep_temp_files(self) -> None:
        """Delete temp files a writer killed before its ``os.replace`` left behind.

        Only a lock holder writes temp files, so under the lock every one of this project's is
        stale (``.<project>+<8 random chars>.tmp``: another project's name never matches).
        """
        pattern = layout.temp_pattern(self.project)
        with suppress(OSError):
            for entry in os.scandir(self.data_dir):
                if pattern.fullmatch(entry.name):
                    with suppress(OSError):
                        os.unlink(entry.path)

    def _temp_file(self) -> tuple[int, str]:
        """A new 0600 temp file in the data dir, named as :meth:`_sweep_temp_files` expects.

        (Not ``tempfile.mkstemp``: importing ``tempfile`` costs a one-shot command about 1 ms.)
        """
        while True:
            path = layout.temp(self.data_dir, self.project, os.urandom(4).hex())
            try:
                return files.open_file(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL), path
            except FileExistsError:
                continue

    def _replace(self, data: bytes, target: Path | None = None) -> None:
        target = target or self.path
        tmp = None
        try:
            fd, tmp = self._temp_file()
            try:
                files.write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            with commits.point():  # from here on the change is visible (see budgetctl.commits)
                os.replace(tmp, target)
                tmp = None
        except OSError as exc:
            raise StorageIOError(target, f"cannot write ({exc.strerror})") from None
        finally:
            if tmp is not None:
                with suppress(OSError):
                    os.unlink(tmp)
        # Committed: every reader now sees the new state. A failure to sync the directory cannot
        # undo that, so it is not reported as a failed change (a retry would charge twice).
        with suppress(OSError):
            self._sync_dir()

    def _sync_dir(self) -> None:
        dir_fd = os.open(self.data_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def spent_since(self, state: DocumentState, start: datetime) -> Decimal:
        """The project's spend from ``start`` on, exactly: its charges in the history (the part
        the state counts). Read only when a cap is set or moved onto a new grid."""
        size = state.doc["history"]["size"]
        return rules.spent_since(self._events(size), start)

    def recent_periods(self, doc: Mapping[str, Any], raw: Any) -> tuple[ClosedPeriod, ...]:
        """A record's most recent closed periods, newest first, following its history links."""
        offset = raw.get(history.LINK) if isinstance(raw, dict) else None
        if offset is None:
            return ()
        found = history.read_periods(
            self._history_paths(), doc["history"]["size"], offset, rules.RECENT_PERIODS
        )
        try:
            return tuple(codec.decode_period(event) for event in found)
        except codec.RecordError as exc:
            raise CorruptStateError(self.history_path, str(exc)) from None

    def history(
        self,
        user: str | None = None,
        limit: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[events.Event]:
        """History events (newest first), only as far as the state counts them; with ``since``
        or ``until``, those recorded in [since, until) (one read of the file)."""
        size = self._snapshot()["history"]["size"]
        return self._events(size, user, limit, since, until)

    def _events(
        self,
        size: int,
        user: str | None = None,
        limit: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[events.Event]:
        found = history.read_events(self._history_paths(), size, user, limit, since, until)
        try:
            return [events.from_json(raw) for raw in found]
        except events.EventError as exc:
            raise CorruptStateError(self.history_path, str(exc)) from None

    def spend(
        self, user: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> list[spending.Spend]:
        """The charges and commits (only ``user``'s) recorded in [since, until), oldest first,
        read from the history's text without typed events (one read of the file)."""
        size = self._snapshot()["history"]["size"]
        found = history.read_spend(self._history_paths(), size, user, since, until)
        if found is None:  # a line the quick read does not take: the typed read says what it is
            found = spending.from_events(reversed(self._events(size, user, None, since, until)))
        return found

    def spend_totals(
        self,
        key: str,
        user: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[Any, list[Any]] | None:
        """The sums of :meth:`spend`'s rows per user, model, UTC day or UTC hour (``report``),
        read from the history's text chunk by chunk, without the rows; None: read the rows."""
        size = self._snapshot()["history"]["size"]
        return history.read_spend_totals(self._history_paths(), size, key, user, since, until)

    # --- prices (their own small file: a charge reads them without parsing the state) -----------

    def set_price(self, price: Price | None, model: str, *, dry_run: bool = False) -> None:
        """Add, change or (``price=None``) remove a per-project custom price."""
        if not dry_run:
            self._ensure_dir()
        elif not self._checked_dir():
            return
        with lock.exclusive(self.data_dir, self.lock_timeout) as held:
            raw = prices_file.load(self.prices_path, self.old_files.prices)
            if price is None:
                if model not in raw:
                    raise UnknownModelError(model, sorted(raw)[:5])
                del raw[model]
            else:
                raw[model] = prices_file.encode_price(price)
            if not dry_run:
                held.check()
                self._adopt_old_names()
                self._replace(prices_file.dump(raw), self.prices_path)

    def prices(self) -> dict[str, Price]:
        """The project's custom prices (empty when it has none)."""
        if not self._checked_dir():
            return {}
        return prices_file.read(self.prices_path, self.old_files.prices)

    # --- a whole project: dump and restore ------------------------------------------------------

    def export(self) -> snapshot.Snapshot:
        """The whole project: one read of the state, and the history it counts."""
        doc = self.load(must_exist=False)
        prices = list(self.prices().values())
        if doc is None:
            if not prices:
                raise self._missing()
            doc = document.new_document(self.project)  # a project of custom prices only
        budgets = [self.decode(user, raw) for user, raw in doc["users"].items()]
        cap = None if doc.get("cap") is None else self.decode(CAP, doc["cap"])
        found = self._events(doc["history"]["size"])
        found.reverse()
        from budgetctl.store.snapshot import snapshot

        return snapshot(self.project, budgets, cap, prices, self._holds(doc), found)

    def restore(
        self,
        snap: snapshot.Snapshot,
        now: datetime,
        *,
        replace: bool = False,
        dry_run: bool = False,
    ) -> bool:
        """Write ``snap`` as this project (docs/state-format.md, "Restoring a project").

        Under the data dir's lock: the new history and prices are written to temp files and
        synced; then the project's files are moved aside (``P+state.<n>.replaced.json``...),
        the new ones renamed into place, the request id index rebuilt from the new history, and
        the new state written as every commit writes it, last. A failure on the way puts the old
        files back; only a crash (kill -9, power loss) in that short window can leave the project
        without a state, its old files then kept aside under those names, never destroyed.
        """
        doc, lines = restored_document(self.project, snap)
        raw_prices = {price.model: prices_file.encode_price(price) for price in snap.prices}
        if dry_run:
            existed = self._checked_dir() and self._has_data()
            if existed and not replace:
                raise ProjectExistsError(self.project, self.data_dir)
            return existed
        self._ensure_dir()
        with lock.exclusive(self.data_dir, self.lock_timeout) as held, jsontext.gc_paused():
            self._adopt_old_names()
            self._sweep_temp_files()
            existed = self._has_data()
            if existed and not replace:
                raise ProjectExistsError(self.project, self.data_dir)
            if not existed:
                self._keep_tail(0)  # a history no state counts: kept aside, with a warning
            staged: list[tuple[str, Path]] = []
            try:
                staged.append((self._stage(lines), self.history_path))
                if raw_prices:
                    staged.append((self._stage(prices_file.dump(raw_prices)), self.prices_path))
                held.check()
                self._swap(staged, history.ENCODER.encode(doc).encode("utf-8"), len(lines))
            finally:
                for tmp, _ in staged:
                    with suppress(OSError):
                        os.unlink(tmp)  # renamed into place already, unless it failed
        return existed

    def _has_data(self) -> bool:
        """Whether the project has a state or custom prices."""
        return self.path.exists() or bool(self.prices())

    def _stage(self, data: bytes) -> str:
        """``data`` in a new, synced temp file of this project; its path."""
        fd, tmp = self._temp_file()
        try:
            files.write_all(fd, data)
            os.fsync(fd)
        except OSError as exc:
            with suppress(OSError):
                os.unlink(tmp)
            raise StorageIOError(tmp, f"cannot write ({exc.strerror})") from None
        finally:
            os.close(fd)
        return tmp

    def _swap(self, staged: list[tuple[str, Path]], state: bytes, size: int) -> None:
        """The restore's commit: old files aside, staged ones in, the index, the state last."""
        stamp = time.time_ns()
        moved: list[tuple[Path, Path]] = []
        placed: list[Path] = []
        done = False
        try:
            with commits.point():  # from moving the old state aside on: not stopped by Ctrl-C
                for path in (self.path, self.history_path, self.prices_path):
                    if os.path.lexists(path):
                        aside = layout.replaced(path, stamp)
                        os.rename(path, aside)
                        moved.append((path, aside))
                self._drop_index()
                for tmp, target in staged:
                    os.rename(tmp, target)
                    placed.append(target)
                self._sync_dir()
                index = request_ids.RequestIdIndex(self.request_ids_path, self.history_path)
                try:
                    index.build(size, {})
                finally:
                    index.close()
                self._replace(state)
                done = True
        except OSError as exc:
            raise StorageIOError(self.path, f"cannot restore ({exc.strerror})") from None
        finally:
            if not done:  # put the old project back as it was
                with suppress(OSError):
                    for target in placed:
                        os.unlink(target)
                    self._drop_index()
                    for path, aside in moved:
                        os.rename(aside, path)
                    self._sync_dir()

    def _drop_index(self) -> None:
        """Delete the request id index (it is rebuilt from the history when next needed)."""
        for suffix in ("", "-wal", "-shm"):
            with suppress(FileNotFoundError):
                os.unlink(f"{self.request_ids_path}{suffix}")

    def _history_paths(self) -> tuple[Path, Path]:
        """Where readers look for the history: its name, then budgetctl 0.1's."""
        return self.history_path, self.old_files.history


def restored_document(project: str, snap: snapshot.Snapshot) -> tuple[dict[str, Any], bytes]:
    """The state document and the history file of ``snap``, linked as commits link them.

    Closed periods are chained as they were when they happened: each ``period`` event's ``prev``
    is its budget's previous one, and a budget deleted (or a cap cleared) starts a new chain, so
    ``show USER`` lists the same recent periods as in the store the snapshot came from.
    """
    doc = document.new_document(project)
    doc["users"] = {budget.user: codec.encode(budget) for budget in snap.budgets}
    doc["cap"] = None if snap.cap is None else codec.encode(snap.cap)
    if snap.holds:
        doc["holds"] = {hold.hold_id: document.encode_hold(hold) for hold in snap.holds}
    replay: dict[str, Any] = {"users": {}, "cap": None}  # the records as they were, for links
    chunks: list[bytes] = []
    offset = 0
    for event in snap.history:
        raw = event.to_json()
        kind, user = raw["type"], raw.get("user")
        if kind in ("create", "period"):
            replay["users"].setdefault(user, {})
        elif kind == "delete":
            replay["users"].pop(user, None)
        elif kind in ("cap", "cap-period"):
            replay["cap"] = replay["cap"] or {}
        elif kind == "cap-clear":
            replay["cap"] = None
        chunk = history.link_and_encode([raw], replay, offset)
        chunks.append(chunk)
        offset += len(chunk)
    for user, record in doc["users"].items():
        link = replay["users"].get(user, {}).get(history.LINK)
        if link is not None:
            record[history.LINK] = link
    if doc["cap"] is not None and replay["cap"] and history.LINK in replay["cap"]:
        doc["cap"][history.LINK] = replay["cap"][history.LINK]
    doc["history"] = {"size": offset}
    return doc, b"".join(chunks)
