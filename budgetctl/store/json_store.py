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

import gc
import json
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from budgetctl import commits
from budgetctl.core import jsontext, rules
from budgetctl.core.money import to_text
from budgetctl.core.periods import Duration, format_utc
from budgetctl.core.rules import CAP, Budget, ClosedPeriod, RememberedCharge
from budgetctl.costing.interface import Price
from budgetctl.errors import (
    BudgetExceededError,
    CorruptStateError,
    FutureVersionError,
    HistoryKeptAsideWarning,
    StorageIOError,
    UnknownModelError,
    UnknownProjectError,
    UnknownUserError,
    UsageError,
    UserExistsError,
)
from budgetctl.store import codec, files, history, layout, lock, prices_file, request_ids
from budgetctl.store.interface import ChargeOutcome, ChargeRequest, ProjectView, ResetDue

FORMAT = "budgetctl-state"
VERSION = 2  # 2: request ids moved out of the state into their index (1 is read and migrated)


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


class _Txn:
    """The raw state document of one transaction, and the history events it will append."""

    def __init__(
        self, store: JsonStore, doc: dict[str, Any], now: datetime | None, dry_run: bool = False
    ) -> None:
        self.store = store
        self.doc = doc
        self.now = now
        self.dry_run = dry_run
        self.index: request_ids.RequestIdIndex | None = None  # opened by the first id looked up
        self.events: list[dict[str, Any]] = []
        self.dirty = False

    @property
    def users(self) -> dict[str, Any]:
        users: dict[str, Any] = self.doc["users"]
        return users

    def event(self, kind: str, **fields: Any) -> None:
        entry: dict[str, Any] = {"type": kind}
        if self.now is not None:
            entry["time"] = format_utc(self.now)
        entry.update(fields)
        self.events.append(entry)
        self.dirty = True

    def budget(self, user: str) -> Budget:
        """The user's budget, rolled over to ``now`` (the roll-over is recorded)."""
        raw = self.users.get(user)
        if raw is None:
            raise UnknownUserError(user, self.store.project, self.users)
        budget = self.store._decode(user, raw)
        if self.now is not None:
            budget = self._roll(budget)
        return budget

    def _roll(self, budget: Budget) -> Budget:
        assert self.now is not None
        rolled, closed = rules.roll_over(budget, self.now)
        if closed is not None:
            self.put(rolled)
            self.event("period", user=budget.user, **codec.encode_period(closed))
        return rolled

    def put(self, budget: Budget, *, fresh: bool = False) -> None:
        """Store ``budget``'s record; it keeps its link into the history unless ``fresh``."""
        self.users[budget.user] = history.relink(
            codec.encode(budget), None if fresh else self.users.get(budget.user)
        )
        self.dirty = True

    def cap(self) -> Budget | None:
        raw = self.doc.get("cap")
        if raw is None:
            return None
        cap = self.store._decode(CAP, raw)
        if self.now is not None:
            rolled, closed = rules.roll_over(cap, self.now)
            if closed is not None:
                self.put_cap(rolled)
                self.event("cap-period", **codec.encode_period(closed))
            cap = rolled
        return cap

    def put_cap(self, cap: Budget | None) -> None:
        self.doc["cap"] = history.relink(codec.encode(cap), self.doc.get("cap")) if cap else None
        self.dirty = True


class JsonStore:
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
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise CorruptStateError(self.path, "not a budgetctl state file (no 'format' field)")
        version = doc.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise CorruptStateError(self.path, "the 'version' field is missing or not a number")
        if version > VERSION:
            raise FutureVersionError(self.path, version, VERSION)
        if version < 1:
            raise CorruptStateError(self.path, f"unknown format version {version}")
        history = doc.get("history")
        if (
            not isinstance(doc.get("users"), dict)
            or not isinstance(history, dict)
            or not isinstance(history.get("size"), int)
            or history["size"] < 0
            or not isinstance(doc.get("request_ids", {}), dict)
            or not all(isinstance(seen, str) for seen in doc.get("request_ids", {}).values())
            or not (doc.get("cap") is None or isinstance(doc.get("cap"), dict))
        ):
            raise CorruptStateError(self.path, "the file's structure is not a budgetctl state")
        return doc

    def _decode(self, user: str, raw: Any) -> Budget:
        try:
            return codec.decode(user, raw)
        except codec.RecordError as exc:
            raise CorruptStateError(self.path, str(exc)) from None

    def _new_doc(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "project": self.project,
            "history": {"size": 0},
            "cap": None,
            "users": {},
        }

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

    @contextmanager
    def _transaction(
        self, now: datetime | None, *, create: bool = False, dry_run: bool = False
    ) -> Iterator[_Txn]:
        """Lock, read, yield the document; write it back if the block changed it (not dry-run).

        Nothing on disk changes unless the block completes and changed something: a dry run takes
        no lock (the state is replaced atomically, so one read is a consistent snapshot), an
        operation on a project that does not exist creates no file, and the tail of an
        interrupted transaction is cut only when this one commits.
        """
        if not create and not self.path.exists():
            raise self._missing()
        if dry_run:
            doc = self._load(must_exist=not create) if self._checked_dir() else None
            if doc is not None:
                self._check_history(doc["history"]["size"])
            txn = _Txn(self, doc if doc is not None else self._new_doc(), now, dry_run=True)
            try:
                yield txn
            finally:
                if txn.index is not None:
                    txn.index.close()
            return
        if create:
            self._ensure_dir()
        else:
            self._checked_dir()
        with lock.exclusive(self.data_dir, self.lock_timeout) as held, _gc_paused():
            doc = self._load(must_exist=not create)
            if doc is None:
                doc = self._new_doc()
            else:
                self._check_history(doc["history"]["size"])
            txn = _Txn(self, doc, now)
            try:
                yield txn
                if txn.dirty:
                    held.check()
                    self._commit(txn)
            finally:
                if txn.index is not None:
                    txn.index.close()

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
                lines = _each_chunk(fd, 0)
                os.rename(self.history_path, kept)
                self._sync_dir()
            else:
                lines = _copy_tail(fd, recorded, kept)
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
                f"{self.history_path} held {actual - recorded} bytes ({_lines(lines)}) that "
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
                _write_all(fd, lines)
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

    def _commit(self, txn: _Txn) -> None:
        doc = txn.doc
        recorded = doc["history"]["size"]
        self._adopt_old_names()
        self._sweep_temp_files()
        self._keep_tail(recorded)
        before = _inode(self.path)
        try:
            if "request_ids" in doc:  # a 0.1 state: its ids move to the index (once: it is then v2)
                self._ids(txn).build(recorded, doc.pop("request_ids"))
            if txn.events:
                lines = history.link_and_encode(txn.events, doc, recorded)
                self._append(lines)
                self._index_request_ids(txn, lines, recorded)
                doc["history"] = {"size": recorded + len(lines)}
            doc["version"] = VERSION
            data = history.ENCODER.encode(doc).encode("utf-8")
            self._replace(data)
        except BaseException:  # a failure, or an interrupt (Ctrl-C in a library caller, too)
            if _inode(self.path) == before:  # not committed: the old state does not count them
                self._take_back(recorded)
            raise

    def _index_request_ids(self, txn: _Txn, lines: bytes, offset: int) -> None:
        """Remember the request ids of the charges in ``lines`` (appended at ``offset``), after
        the history's fsync and before the state's replace (see budgetctl.store.request_ids)."""
        if not any("request_id" in event for event in txn.events):
            return
        assert txn.now is not None
        entries = []
        for event, line in zip(txn.events, lines.split(b"\n"), strict=False):
            if "request_id" in event:
                entries.append((event["request_id"], offset, txn.now))
            offset += len(line) + 1
        self._ids(txn).add(entries, rules.request_id_horizon(txn.now, request_ids.wall_clock()))

    def _ids(self, txn: _Txn) -> request_ids.RequestIdIndex:
        """The transaction's own handle on the index (closed with it: a store may be shared by
        threads, and a dry run takes no lock)."""
        if txn.index is None:
            txn.index = request_ids.RequestIdIndex(self.request_ids_path, self.history_path)
        return txn.index

    def _remembered(self, txn: _Txn, request_id: str) -> RememberedCharge | None:
        """What ``request_id`` was charged for in this project, or None (never, or forgotten)."""
        assert txn.now is not None
        horizon = rules.request_id_horizon(txn.now, request_ids.wall_clock())
        size = txn.doc["history"]["size"]
        inline = txn.doc.get("request_ids")
        if inline is not None:  # a 0.1 state, until a commit moves its ids to the index
            if request_ids.inline_find(inline, request_id, horizon) is None:
                return None
            found = self._ids(txn).scan(request_id, size, horizon)
            return found or rules.RememberedCharge(user="", cost=Decimal(0), known=False)
        return self._ids(txn).find(request_id, size, horizon, build=not txn.dry_run)

    def _remember(self, txn: _Txn, request_id: str, charge: RememberedCharge) -> None:
        """Note that this transaction charges ``request_id``. Here its charge event carries it,
        and the commit indexes it; a store that keeps ids in its document writes them there."""

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
                _write_all(fd, data)
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

    # --- operations ------------------------------------------------------------------------------

    def create(self, budget: Budget, *, replace: bool = False, dry_run: bool = False) -> Budget:
        return self.create_many([budget], replace=replace, dry_run=dry_run)[0]

    def create_many(
        self, budgets: Sequence[Budget], *, replace: bool = False, dry_run: bool = False
    ) -> list[Budget]:
        now = max((b.created_at for b in budgets), default=None)
        with self._transaction(now, create=True, dry_run=dry_run) as txn:
            for budget in budgets:
                if budget.user in txn.users and not replace:
                    raise UserExistsError(budget.user)
            for budget in budgets:
                txn.put(budget, fresh=True)
                txn.event(
                    "create",
                    user=budget.user,
                    total_budget=to_text(budget.total_budget),
                    duration=budget.duration.text if budget.duration else None,
                    current_cost=to_text(budget.current_cost),
                )
        return list(budgets)

    def change(
        self, user: str, now: datetime, changes: Mapping[str, Any], *, dry_run: bool = False
    ) -> Budget:
        with self._transaction(now, dry_run=dry_run) as txn:
            budget = rules.change(txn.budget(user), now, **changes)
            txn.put(budget)
            txn.event("set", user=user, **_settings(budget))
        return budget

    def charge(
        self,
        request: ChargeRequest,
        now: datetime,
        *,
        enforce: bool = False,
        dry_run: bool = False,
    ) -> ChargeOutcome:
        with self._transaction(now, dry_run=dry_run) as txn:
            budget = txn.budget(request.user)
            cap = txn.cap()
            rid = request.request_id
            this = _as_remembered(request)
            if rid is not None and rules.is_duplicate(rid, self._remembered(txn, rid), this):
                return ChargeOutcome(budget=budget, cap=cap, duplicate=True)
            if enforce:
                if rules.would_exceed(budget, request.cost):
                    raise BudgetExceededError(budget.current_cost, budget.total_budget)
                if cap is not None and rules.would_exceed(cap, request.cost):
                    raise BudgetExceededError(cap.current_cost, cap.total_budget, scope="project")
            budget = rules.charge(budget, request.cost, request.model)
            txn.put(budget)
            if cap is not None:
                cap = rules.charge(cap, request.cost, None)
                txn.put_cap(cap)
            event: dict[str, Any] = {
                "user": request.user,
                "model": request.model,
                "cost": to_text(request.cost),
                "prompt_tokens": request.prompt_tokens,
                "completion_tokens": request.completion_tokens,
                "cached_tokens": request.cached_tokens,
            }
            if rid is not None:
                event["request_id"] = rid
                self._remember(txn, rid, this)
            if request.estimated:
                event["estimated"] = True
            txn.event("charge", **event)
        return ChargeOutcome(budget=budget, cap=cap, duplicate=False)

    def reset(
        self, users: Sequence[str] | None, now: datetime, *, dry_run: bool = False
    ) -> list[tuple[str, ClosedPeriod]]:
        done: list[tuple[str, ClosedPeriod]] = []
        with self._transaction(now, dry_run=dry_run) as txn:
            names = list(txn.users) if users is None else list(users)
            for user in names:
                budget, closed = rules.reset(txn.budget(user), now)
                txn.put(budget)
                txn.event("period", user=user, **codec.encode_period(closed))
                done.append((user, closed))
        return done

    def reset_due(
        self, now: datetime, *, users: Sequence[str] | None = None, dry_run: bool = False
    ) -> ResetDue:
        # Stored boundaries are whole seconds: compare with now's whole second, or a boundary at
        # 00:00:00 would wait until 00:00:01 ("00:00:00.5Z" sorts before "00:00:00Z").
        now_text = format_utc(now.replace(microsecond=0))
        done: list[tuple[str, ClosedPeriod]] = []
        with self._transaction(now, dry_run=dry_run) as txn:
            raw_users = txn.users
            if users is None:
                selected = list(raw_users.items())
            else:
                for user in users:
                    if user not in raw_users:
                        raise UnknownUserError(user, self.project, raw_users)
                selected = [(user, raw_users[user]) for user in users]
            for user, raw in selected:
                # Timestamps are fixed-width UTC text: comparing text skips decoding idle users.
                if not isinstance(raw, dict):
                    raise CorruptStateError(self.path, f"user {user!r}: record is not an object")
                due_at = raw.get("next_reset_at")
                if due_at is None or due_at > now_text:
                    continue
                try:
                    rolled = codec.roll_over_record(user, raw, now)
                except codec.RecordError as exc:
                    raise CorruptStateError(self.path, str(exc)) from None
                if rolled is not None:
                    record, closed, period = rolled
                    raw_users[user] = record
                    txn.event("period", user=user, **closed)
                    done.append((user, period))
            cap_closed = None
            raw_cap = txn.doc.get("cap")
            if raw_cap is not None:
                cap = self._decode(CAP, raw_cap)
                rolled_cap, cap_closed = rules.roll_over(cap, now)
                if cap_closed is not None:
                    txn.put_cap(rolled_cap)
                    txn.event("cap-period", **codec.encode_period(cap_closed))
            checked = len(selected)
        return ResetDue(self.project, checked, tuple(done), cap_closed)

    def _snapshot(self) -> dict[str, Any]:
        with _gc_paused():
            doc = self._load(must_exist=True)
        assert doc is not None
        return doc

    def get(self, user: str, now: datetime) -> Budget:
        return self.get_with_cap(user, now)[0]

    def get_with_cap(self, user: str, now: datetime) -> tuple[Budget, Budget | None]:
        """One user's budget (with its recent closed periods) and the project cap, from one
        read, as of ``now``."""
        doc = self._snapshot()
        raw = doc["users"].get(user)
        if raw is None:
            raise UnknownUserError(user, self.project, doc["users"])
        budget = self._decode(user, raw)._replace(recent_periods=self._periods(doc, raw))
        return rules.roll_over(budget, now)[0], self._cap_of(doc, now, with_periods=True)

    def cap(self, now: datetime) -> Budget | None:
        """The project cap as of ``now`` (None when there is none or no project yet)."""
        doc = self._load(must_exist=False)
        return None if doc is None else self._cap_of(doc, now, with_periods=True)

    def _cap_of(
        self, doc: Mapping[str, Any], now: datetime, *, with_periods: bool = False
    ) -> Budget | None:
        raw = doc.get("cap")
        if raw is None:
            return None
        cap = self._decode(CAP, raw)
        if with_periods:
            cap = cap._replace(recent_periods=self._periods(doc, raw))
        return rules.roll_over(cap, now)[0]

    def _periods(self, doc: Mapping[str, Any], raw: Any) -> tuple[ClosedPeriod, ...]:
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

    def view(self, now: datetime) -> ProjectView:
        doc = self._snapshot()
        users = tuple(
            rules.roll_over(self._decode(name, raw), now)[0] for name, raw in doc["users"].items()
        )
        return ProjectView(self.project, users, self._cap_of(doc, now))

    def users(self) -> list[str]:
        doc = self._load(must_exist=False)
        return [] if doc is None else list(doc["users"])

    def delete(self, users: Sequence[str], *, dry_run: bool = False) -> list[str]:
        with self._transaction(None, dry_run=dry_run) as txn:
            for user in users:
                if user not in txn.users:
                    raise UnknownUserError(user, self.project, txn.users)
            for user in users:
                del txn.users[user]
                txn.event("delete", user=user)
        return list(users)

    def set_cap(
        self,
        now: datetime,
        total_budget: Decimal | None,
        duration: Duration | str | None = "keep",
        timezone: str | None = None,
        *,
        dry_run: bool = False,
    ) -> Budget:
        with self._transaction(now, create=True, dry_run=dry_run) as txn:
            cap = txn.cap()
            if cap is None:
                if total_budget is None:
                    raise UsageError("there is no project cap yet: give --budget AMOUNT to set one")
                cap = rules.new_budget(
                    CAP,
                    total_budget,
                    now,
                    duration=None if duration == "keep" else duration,  # type: ignore[arg-type]
                    timezone=timezone or "UTC",
                )
                cap = cap._replace(current_cost=self._spent_since(txn, cap.period_start))
            else:
                changes: dict[str, Any] = {"duration": duration, "timezone": timezone}
                if total_budget is not None:
                    changes["total_budget"] = total_budget
                moved = rules.change(cap, now, **changes)
                if moved.period_start != cap.period_start:  # a new grid: count its period
                    moved = moved._replace(current_cost=self._spent_since(txn, moved.period_start))
                cap = moved
            txn.put_cap(cap)
            txn.event("cap", current_cost=to_text(cap.current_cost), **_settings(cap))
        return cap

    def _spent_since(self, txn: _Txn, start: datetime) -> Decimal:
        """The project's spend from ``start`` on, exactly: its charges in the history (the part
        the state counts). Read only when a cap is set or moved onto a new grid."""
        size = txn.doc["history"]["size"]
        return rules.spent_since(history.read_events(self._history_paths(), size), start)

    def clear_cap(self, *, dry_run: bool = False) -> bool:
        with self._transaction(None, dry_run=dry_run) as txn:
            if txn.doc.get("cap") is None:
                return False
            txn.put_cap(None)
            txn.event("cap-clear")
        return True

    def set_price(self, price: Price | None, model: str, *, dry_run: bool = False) -> None:
        """Add, change or (``price=None``) remove a per-project custom price.

        Custom prices live in their own small file, ``<project>+prices.json``, so a charge reads
        them without parsing the (possibly large) state.
        """
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

    def history(self, user: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """History events (newest first), only as far as the state counts them."""
        size = self._snapshot()["history"]["size"]
        return history.read_events(self._history_paths(), size, user, limit)

    def _history_paths(self) -> tuple[Path, Path]:
        """Where readers look for the history: its name, then budgetctl 0.1's."""
        return self.history_path, self.old_files.history


def _settings(budget: Budget) -> dict[str, Any]:
    return {
        "total_budget": to_text(budget.total_budget),
        "duration": budget.duration.text if budget.duration else None,
        "timezone": budget.timezone,
    }


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while a state is parsed, changed and written.

    Parsing a large state allocates hundreds of thousands of dicts and strings, none of them in
    cycles; the collector's passes over them cost about 30% of a 100,000-user load.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _copy_tail(fd: int, start: int, target: Path) -> int:
    """Copy ``fd``'s bytes from ``start`` into the new file ``target`` (fsynced); their lines."""
    out = files.open_file(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        lines = _each_chunk(fd, start, lambda chunk: _write_all(out, chunk))
        os.fsync(out)
    except BaseException:
        with suppress(OSError):
            os.unlink(target)  # a partial copy: the tail is still in the history
        raise
    finally:
        os.close(out)
    return lines


def _each_chunk(fd: int, start: int, use: Callable[[bytes], None] | None = None) -> int:
    """Pass ``fd``'s bytes from ``start`` to ``use``, a MiB at a time; how many lines they are
    (a last line cut short counts)."""
    lines, offset, last = 0, start, b"\n"
    while chunk := os.pread(fd, 1 << 20, offset):
        if use is not None:
            use(chunk)
        lines += chunk.count(b"\n")
        offset += len(chunk)
        last = chunk[-1:]
    return lines + (last != b"\n")


def _lines(count: int) -> str:
    return "1 line" if count == 1 else f"{count} lines"


def _inode(path: Path) -> int | None:
    """The inode ``path`` names now (``os.replace`` of the state gives it a new one), or None."""
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _as_remembered(request: ChargeRequest) -> RememberedCharge:
    return RememberedCharge(
        user=request.user,
        cost=request.cost,
        model=request.model,
        prompt_tokens=request.prompt_tokens,
        completion_tokens=request.completion_tokens,
        cached_tokens=request.cached_tokens,
    )


def _prune_request_ids(ids: dict[str, Any], now: datetime) -> None:
    """Forget the ids kept in a document (the hosted store's) that are past the horizon."""
    request_ids.inline_prune(ids, rules.request_id_horizon(now, request_ids.wall_clock()))
