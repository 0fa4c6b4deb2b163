"""The append-only JSONL search log, which makes a search resumable.

Layout: one JSON object per line.
  {"type": "header", "version": 1, "search_index": 0, "spec_hash": ..., "spec": {...}}
  {"type": "trial", "search_index": 0, "key": ..., "config": {...}, "history": {...}, ...}
  ...
The first line is the header of the searcher's first search call; each later search call
of the same searcher (a second grid_search, say) appends its own header. Headers are found
by their search index, never by position, and must agree: indices 0, 1, 2... in file order,
one spec per index, the same settings in every call. A file where they disagree (two logs
joined with cat, say) is refused by :func:`read_log`, naming the lines. Trial lines are
written per finished bucket, then flushed and fsync'ed, so a killed run loses at most the
bucket in flight. A trial is identified by its full config including the seed, so resuming
skips exactly the models that were finished.

One writer per log. A :class:`SearchLog` holds an exclusive advisory lock
(``fcntl.flock``) on the log file itself for as long as it is open, so a second process
given the same log is refused with a LogError naming the first (PID, host, command line),
before anything trains. The lock is taken on the log's own inode, not on a sidecar lock
file: it then holds whatever path reaches the file (a symlink, another relative path), and
nothing can delete the lock from under a running search. It belongs to the open file, so
the kernel drops it when the process exits or is killed, SIGKILL included; a lock never
outlives its writer. Because the log's own bytes cannot say who holds it, the holder
writes its PID, host and command line to a sidecar ``LOG.lock`` (next to the real file):
information only, written after the lock is taken, removed when the log is closed, and
trusted only while the lock is really held (a stale one left by a kill is overwritten).
Readers (:func:`read_log`, ``dendrax show``) take no lock and work while a search runs.
Within one process, a second SearchLog on the same file takes it over: the older object is
closed, and writing through it raises LogError (a notebook may rebuild a searcher with
``resume=True`` while the old one is still referenced). Where there is no ``fcntl``
(Windows), or the file system refuses locks (a warning says so), there is no lock across
processes; everything else is unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import socket
import stat
import sys
import threading
import time
import warnings
import weakref
from typing import Any, Iterable, Mapping

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; see the module docstring
    fcntl = None

from dendrax.config import ModelConfig
from dendrax.errors import ConfigError, DendraxError
from dendrax.spec import TrialOutcome

LOG_VERSION = 1


class LogError(DendraxError, RuntimeError):
    """The search log cannot be written, or does not belong to this search."""


# ---- canonical JSON and keys ---------------------------------------------------------

def jsonable(value: Any) -> Any:
    """Plain JSON values: numpy -> Python, tuples -> lists, NaN/inf -> None (strict JSON)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = value.to_dict() if hasattr(value, "to_dict") else dataclasses.asdict(value)
    if hasattr(value, "tolist") and callable(value.tolist):
        value = value.tolist()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def canonical(value: Any) -> str:
    return json.dumps(jsonable(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _digest(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode()).hexdigest()[:16]


def spec_hash(spec: Mapping[str, Any]) -> str:
    return _digest(spec)


def _strict_digest(fields: Mapping[str, Any]) -> str:
    # jsonable maps NaN and ±inf to None, so two configs differing only there would share
    # a key; validation refuses non-finite values, and this refuses them again.
    for name, value in fields.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{name}={value!r} must be a finite number; a trial key "
                              f"cannot tell NaN from infinity")
    return _digest(fields)


def trial_key(config: ModelConfig) -> str:
    """Identity of one trained model: the whole config, seed included. Distinct (valid)
    configs get distinct keys: the canonical JSON of a config of finite values is
    one-to-one, and non-finite values are refused."""
    return _strict_digest(config.to_dict())


def config_key(config: ModelConfig) -> str:
    """Identity of a configuration across its seeds: the whole config except the seed."""
    fields = config.to_dict()
    fields.pop("seed", None)
    return _strict_digest(fields)


def outcome_record(outcome: TrialOutcome, search_index: int) -> dict:
    """The log line for one finished model; ``bucket`` is the trainer's own label."""
    record = {"type": "trial", "search_index": search_index, "key": trial_key(outcome.config),
              "config_key": config_key(outcome.config), "finished_at": time.time()}
    record.update(outcome.to_dict())
    return jsonable(record)


def outcome_from_record(record: Mapping[str, Any]) -> TrialOutcome:
    """Rebuild a TrialOutcome from its log line (None in histories was NaN).

    Checks every field it reads; raises ValueError (or ConfigError for the config) saying
    which field is wrong, which :func:`read_log` turns into a LogError with file and line.
    """
    names = {f.name for f in dataclasses.fields(TrialOutcome)}
    fields = {k: v for k, v in record.items() if k in names}
    if not isinstance(record.get("config"), Mapping):
        raise ValueError(f"'config' must be an object, got {record.get('config')!r}")
    fields["config"] = ModelConfig.from_dict(record["config"])
    history = record.get("history") or {}
    if not isinstance(history, Mapping):
        raise ValueError(f"'history' must be an object of metric -> list, got {history!r}")
    fields["history"] = {str(k): _numbers(f"history[{k!r}]", vs) for k, vs in history.items()}
    if "total_params" not in record:
        raise ValueError("'total_params' is missing")
    for name, optional in _INT_FIELDS.items():
        value = fields.get(name)
        if (value is None and optional) or name not in fields:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name!r} must be an integer >= 0"
                             f"{' or null' if optional else ''}, got {value!r}")
    if not isinstance(fields.get("diverged", False), bool):
        raise ValueError(f"'diverged' must be true or false, got {fields['diverged']!r}")
    if not isinstance(fields.get("bucket", ""), str):
        raise ValueError(f"'bucket' must be a string, got {fields['bucket']!r}")
    for name in _FLOAT_FIELDS:
        if name in fields:
            fields[name] = _numbers(repr(name), [fields[name]])[0]
    return TrialOutcome(**fields)


# Integer fields of a trial line (True: may be null) and its float fields (null: NaN).
_INT_FIELDS = {"total_params": False, "bucket_size": False, "diverged_step": True,
               "diverged_epoch": True, "stopped_epoch": True}
_FLOAT_FIELDS = ("bucket_wall_time", "compile_time", "train_time", "padding_overhead")


def _numbers(what: str, values: Any) -> list[float]:
    if not isinstance(values, list):
        raise ValueError(f"{what} must be a list of numbers, got {values!r}")
    out = []
    for v in values:
        if v is None:
            out.append(math.nan)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(float(v))
        else:
            raise ValueError(f"{what} must hold numbers (or null), got {v!r}")
    return out


# ---- reading -------------------------------------------------------------------------

@dataclasses.dataclass
class LogContents:
    headers: list[dict]            # one per search call, in order: headers[i] is search #i
    trials: dict[str, dict]        # trial key -> its log record
    outcomes: dict[str, TrialOutcome] = dataclasses.field(default_factory=dict)
    torn_line: str | None = None   # an incomplete last line, ignored
    good_bytes: int = 0            # length of the file up to the end of its last whole line
    lines: int = 0                 # number of whole lines (blank ones included)
    header_lines: list[int] = dataclasses.field(default_factory=list)  # line of headers[i]
    # Population-based training's lineage: one record per exploit (dendrax.search.pbt).
    exploits: list[dict] = dataclasses.field(default_factory=list)

    def copy(self) -> "LogContents":
        return dataclasses.replace(self, headers=list(self.headers), trials=dict(self.trials),
                                   outcomes=dict(self.outcomes),
                                   header_lines=list(self.header_lines),
                                   exploits=list(self.exploits))


def read_log(path: str) -> LogContents:
    """Parse and validate a log. A record counts once its newline is written: a last line
    without one, or one that does not parse, is a write cut short by a kill. It is
    returned as ``torn_line`` and otherwise ignored. An unparsable line anywhere else is
    corruption, and a whole line that parses but is not a valid record (a missing key, a
    mistyped field, a config that fails validation, a key that is not its config's) is
    an error too: every LogError names the file and the line.

    The headers must agree, or the file is not one search (two logs joined with ``cat``,
    say): search #0's header comes first, each new search index is the next one, every
    call's spec equals search #0's in everything but the strategy and the space, and a
    trial line follows its call's header. A header repeated with the same index and the
    same spec hash describes the same search and is read once."""
    check_regular_file(path, "read")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise LogError(f"cannot read the search log {path!r}: {e.strerror or e}") from None
    contents = LogContents(headers=[], trials={})
    _parse_lines(raw, path, contents)
    if contents.trials and not contents.headers:
        raise LogError(f"{path}: trial lines but no header; this is not a dendrax search log")
    return contents


def _parse_lines(raw: bytes, path: str, contents: LogContents) -> None:
    """Read the lines of ``raw`` into ``contents``, which holds what comes before them
    (``contents.lines`` of them, numbered from 1). Shared by :func:`read_log` and a
    writer catching up with the lines it appended."""
    complete_file = raw.endswith(b"\n")
    lines = raw.split(b"\n")
    if complete_file or not raw:
        lines.pop()  # the empty piece after the final newline
    for i, line in enumerate(lines):
        number = contents.lines + 1
        is_last = i == len(lines) - 1
        try:
            if not line.strip():
                record = None
            else:
                record = json.loads(line)  # bytes that are not UTF-8 raise ValueError too
                if not isinstance(record, dict) or "type" not in record:
                    raise ValueError("not a log record")
            if is_last and not complete_file:
                raise ValueError("no trailing newline")
        except ValueError:
            if is_last:
                contents.torn_line = line.decode("utf-8", "replace")
                break
            raise LogError(f"{path}: line {number} is not a valid log record and is not the "
                           f"last line, so the log is corrupt (not just cut short)") from None
        if record is not None:
            try:
                _read_record(record, contents, number)
            except LogError as e:
                raise LogError(f"{path}: line {number}: {e}") from None
            except (ValueError, TypeError) as e:  # ConfigError is a ValueError
                raise LogError(f"{path}: line {number}: invalid {record.get('type')!r} "
                               f"record: {e}") from None
        contents.good_bytes += len(line) + 1
        contents.lines = number


def _search_index(record: Mapping[str, Any]) -> int:
    index = record.get("search_index")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"'search_index' must be an integer >= 0, got {index!r}")
    return index


_NOT_ONE_SEARCH = ("this file holds more than one search (two logs joined together, with "
                   "cat say, or another program's lines): one log holds the calls of one "
                   "searcher, so dendrax neither shows nor resumes it; keep each search in "
                   "its own log")


def _short(value: Any, limit: int = 60) -> str:
    text = canonical(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _check_header(record: dict, contents: LogContents, number: int) -> bool:
    """Check a header against the headers before it; True if it is a new search call,
    False if it repeats one (same index, same spec hash). Raises LogError if they
    disagree, naming the lines."""
    index = _search_index(record)
    known = len(contents.headers)
    if index < known:
        first, line = contents.headers[index], contents.header_lines[index]
        if first["spec_hash"] == record["spec_hash"]:
            return False  # the same call's header again: the same search
        diffs = [f"{name} (line {line}: {_short(first['spec'].get(name, '<absent>'))}, "
                 f"line {number}: {_short(record['spec'].get(name, '<absent>'))})"
                 for name in sorted(set(first["spec"]) | set(record["spec"]))
                 if canonical(first["spec"].get(name)) != canonical(record["spec"].get(name))]
        raise LogError(f"a second header for search #{index}, with another spec than the one "
                       f"at line {line} (they differ in {'; '.join(diffs) or 'their hash'}): "
                       f"{_NOT_ONE_SEARCH}")
    if index > known:
        before = (f"the headers before it (the last at line {contents.header_lines[-1]}) "
                  f"end at search #{known - 1}" if known else "it is the first header")
        raise LogError(f"the header of search #{index}, but {before}, so search #{known} "
                       f"has no header: {_NOT_ONE_SEARCH}")
    if known:
        first, line = contents.headers[0], contents.header_lines[0]
        settings = sorted(name for name in set(first["spec"]) | set(record["spec"])
                          if name not in ("strategy", "space")
                          and canonical(first["spec"].get(name, "<absent>"))
                          != canonical(record["spec"].get(name, "<absent>")))
        if settings:
            diffs = [f"{name} (line {line}: {_short(first['spec'].get(name, '<absent>'))}, "
                     f"line {number}: {_short(record['spec'].get(name, '<absent>'))})"
                     for name in settings]
            raise LogError(f"the header of search #{index} has other settings than search "
                           f"#0's at line {line}, while the calls of one searcher share all "
                           f"but the strategy and the space: {'; '.join(diffs)}; "
                           f"{_NOT_ONE_SEARCH}")
    return True


def _read_record(record: dict, contents: LogContents, number: int = 0) -> None:
    """Check one parsed line (line ``number``) and add it to ``contents``."""
    kind = record["type"]
    if kind == "header":
        if record.get("version") != LOG_VERSION:
            raise LogError(f"log version {record.get('version')!r}; this dendrax reads "
                           f"version {LOG_VERSION}")
        if not isinstance(record.get("spec_hash"), str) or not isinstance(record.get("spec"),
                                                                           dict):
            raise ValueError("a header needs a string 'spec_hash' and an object 'spec'")
        if spec_hash(record["spec"]) != record["spec_hash"]:
            raise ValueError(f"'spec_hash' {record['spec_hash']!r} is not the hash of its "
                             f"'spec'; the line was edited")
        if _check_header(record, contents, number):
            contents.headers.append(record)
            contents.header_lines.append(number)
    elif kind == "trial":
        key = record.get("key")
        if not isinstance(key, str):
            raise ValueError(f"'key' must be a string, got {key!r}")
        if "search_index" in record:
            index = _search_index(record)
            if index >= len(contents.headers):
                raise LogError(f"a trial of search #{index} before the header of search "
                               f"#{index}, which is written first: {_NOT_ONE_SEARCH}")
        outcome = outcome_from_record(record)
        if trial_key(outcome.config) != key:
            raise ValueError(f"'key' {key!r} is not the key of its config "
                             f"({trial_key(outcome.config)!r}); the line was edited")
        contents.trials[key] = record
        contents.outcomes[key] = outcome
    elif kind == "exploit":  # a PBT member copied another (dendrax.search.pbt)
        index = _search_index(record)
        if index >= len(contents.headers):
            raise LogError(f"an exploit of search #{index} before the header of search "
                           f"#{index}, which is written first: {_NOT_ONE_SEARCH}")
        for name in ("generation", "epoch", "member"):
            value = record.get(name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name!r} must be an integer >= 0, got {value!r}")
        for name in ("member_key", "parent_key"):
            if not isinstance(record.get(name), str):
                raise ValueError(f"{name!r} must be a string, got {record.get(name)!r}")
        for name in ("old", "new"):
            if not isinstance(record.get(name), dict):
                raise ValueError(f"{name!r} must be an object, got {record.get(name)!r}")
        contents.exploits.append(record)
    else:
        raise ValueError(f"unknown record type {kind!r}; expected 'header', 'trial' or "
                         f"'exploit'")


def spec_differences(logged: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Human-readable list of top-level spec fields that differ."""
    out = []
    for name in sorted(set(logged) | set(current)):
        a, b = logged.get(name, "<absent>"), current.get(name, "<absent>")
        if canonical(a) != canonical(b):
            out.append(f"{name} (log: {canonical(a)}, now: {canonical(b)})")
    return out


# ---- writing -------------------------------------------------------------------------

def check_regular_file(path: str, action: str = "write") -> None:
    """Refuse a path that exists but is not a regular file: opening a FIFO blocks forever,
    and a device such as /dev/full fails on the first write."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
        raise LogError(f"cannot {action} the search log (log_path) {path!r}: "
                       f"{getattr(e, 'strerror', None) or e}") from None
    if stat.S_ISDIR(mode):
        raise LogError(f"cannot {action} the search log {path!r}: it is a directory; "
                       f"log_path must name a file")
    if not stat.S_ISREG(mode):
        raise LogError(f"cannot {action} the search log {path!r}: it is not a regular file "
                       f"(a FIFO, device or socket); log_path must name a plain file")


def _check_path(path: str) -> None:
    """Raise LogError unless ``path`` is (or can be created as) a regular file that can be
    appended to."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise LogError(f"log_path={path!r} must be the path of a file")
    directory = os.path.dirname(os.path.abspath(path))
    check_regular_file(path)
    if not os.path.isdir(directory):
        raise LogError(f"cannot write the search log (log_path) {path!r}: directory "
                       f"{directory!r} does not exist")
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as e:
        raise LogError(f"cannot write the search log (log_path) {path!r}: "
                       f"{e.strerror or e}") from None


def check_writable(path: str) -> None:
    """Raise LogError unless ``path`` is (or can be created as) a regular file that can be
    appended to, and no other process is writing it (see :class:`SearchLog`). A cheap check
    to make before slow work (loading data); :class:`SearchLog` takes the lock itself."""
    _check_path(path)
    path = os.fspath(path)
    with _registry_lock:
        if _held.get(_file_key(os.stat(path))) is not None:
            return  # this process holds it; a new SearchLog takes it over
    _WriterLock.acquire(path, probe=True).release()


# ---- one writer per log --------------------------------------------------------------

_registry_lock = threading.Lock()
# The locks this process holds, by (device, inode) of the log; weak, so that a SearchLog
# nobody references any more releases its lock when it is collected.
_held: "weakref.WeakValueDictionary[tuple[int, int], _WriterLock]" = \
    weakref.WeakValueDictionary()
_warned_unlockable: set[str] = set()


def _file_key(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _holder_path(path: str) -> str:
    """The sidecar naming the writer: beside the real file, whichever path reached it."""
    return os.path.realpath(path) + ".lock"


def _release(fd: int | None, holder_path: str | None, locker: Any) -> None:
    """Give a lock up: remove our holder file (while still holding the lock, so it cannot
    be another writer's), then unlock and close. Runs once, from close(), when the lock
    is garbage-collected, or at interpreter exit; the kernel does it on a kill."""
    if holder_path is not None:
        try:
            os.remove(holder_path)
        except OSError:
            pass
    if fd is not None:
        try:
            locker.flock(fd, locker.LOCK_UN)
        except OSError:
            pass
        try:
            os.close(fd)
        except OSError:
            pass


class _WriterLock:
    """The exclusive lock on one log file, held by one SearchLog at a time (``owner``).

    ``fd`` is None where locking is not possible (no fcntl, or a file system that refuses
    it); the in-process rules (takeover, ``mutex``) hold all the same."""

    def __init__(self, fd: int | None, key: tuple[int, int], holder_path: str | None):
        self.fd = fd
        self.key = key
        self.mutex = threading.Lock()  # one write, read or takeover at a time
        self.owner: "weakref.ref[SearchLog] | None" = None
        self.forked = False
        # fcntl as it was when the lock was taken (tests replace the module's attribute)
        self._finalizer = weakref.finalize(self, _release, fd, holder_path, fcntl)

    @classmethod
    def acquire(cls, path: str, probe: bool = False) -> "_WriterLock":
        """Lock ``path`` for this process, or raise LogError naming the process that has it.
        ``probe``: only to check, so the holder file is not written."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)  # not inherited by exec'd children
        except OSError as e:
            raise LogError(f"cannot write the search log (log_path) {path!r}: "
                           f"{e.strerror or e}") from None
        key = _file_key(os.fstat(fd))
        if fcntl is None:
            os.close(fd)
            return cls(None, key, None)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = _describe_holder(path, os.fstat(fd))
            finally:
                os.close(fd)
            raise LogError(
                f"the search log {path!r} is being written by another process: {holder}. "
                f"One process writes a log at a time: wait for that search to finish or stop "
                f"it, or choose another log_path. (Reading the log, with dendrax show or "
                f"read_log, is fine meanwhile.)") from None
        except OSError as e:  # ENOLCK, EOPNOTSUPP...: a file system without locks
            os.close(fd)
            if path not in _warned_unlockable:
                _warned_unlockable.add(path)
                warnings.warn(f"cannot lock the search log {path!r} ({e.strerror or e}); "
                              f"nothing stops another process from writing it at the same "
                              f"time", RuntimeWarning, stacklevel=4)
            return cls(None, key, None)
        holder_path = None if probe else _holder_path(path)
        if holder_path is not None and not _write_holder(holder_path):
            holder_path = None
        return cls(fd, key, holder_path)

    @property
    def alive(self) -> bool:
        return self._finalizer.alive and not self.forked

    def release(self) -> None:
        with _registry_lock:
            if _held.get(self.key) is self:
                del _held[self.key]
        self._finalizer()

    def forget_after_fork(self) -> None:
        """In a forked child: close our copy of the descriptor without unlocking (the
        parent keeps the lock) and refuse writes from the child."""
        self._finalizer.detach()
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
        self.fd = None
        self.forked = True
        self.mutex = threading.Lock()


def _forget_locks_after_fork() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()
    for lock in list(_held.values()):
        lock.forget_after_fork()
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_locks_after_fork)


def _write_holder(holder_path: str) -> bool:
    """Write who holds the lock (atomically: a reader sees the old file or the new one)."""
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "command": _command_of(os.getpid()) or " ".join([sys.executable, *sys.argv])[:300],
            "since": time.time()}
    tmp = f"{holder_path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(info, f)
        os.replace(tmp, holder_path)
        return True
    except OSError:  # a read-only directory, say: the lock holds, only its description is lost
        try:
            os.remove(tmp)
        except OSError:
            pass
        return False


def _flock_pids(st: os.stat_result) -> list[int]:
    """PIDs holding a flock on this file, from Linux's /proc/locks ([] where unknown)."""
    pids = []
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            for line in f:
                fields = line.split()
                if "->" in fields or len(fields) < 6 or fields[1] != "FLOCK":
                    continue  # a waiter, or not a flock
                major, minor, inode = fields[5].split(":")
                if (int(major, 16), int(minor, 16), int(inode)) == (
                        os.major(st.st_dev), os.minor(st.st_dev), st.st_ino):
                    if int(fields[4]) > 0:  # 0: a process outside our PID namespace
                        pids.append(int(fields[4]))
    except (OSError, ValueError):
        return []
    return pids


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _describe_holder(path: str, st: os.stat_result) -> str:
    """"PID 123 on host 'h' (command: ...), since ..." from the sidecar, checked against
    the kernel's list of lock holders where there is one."""
    info = None
    try:
        with open(_holder_path(path), encoding="utf-8") as f:
            info = json.load(f)
        if not isinstance(info, dict) or not isinstance(info.get("pid"), int):
            info = None
    except (OSError, ValueError):
        pass
    pids = _flock_pids(st)
    here = socket.gethostname()
    if info is not None and info.get("host", here) == here:
        # On this host the sidecar must name a live holder (a killed writer leaves its own).
        holds = info["pid"] in pids if pids else _pid_alive(info["pid"])
        if not holds:
            info = None
    if info is None and pids:
        info = {"pid": pids[0], "host": here, "command": _command_of(pids[0])}
    if info is None:
        return "a process whose PID is unknown (no holder information beside the log)"
    text = f"PID {info['pid']} on host {info.get('host', '?')!r}"
    if info.get("command"):
        text += f" (command: {info['command']})"
    if isinstance(info.get("since"), (int, float)):
        text += time.strftime(", since %Y-%m-%d %H:%M:%S UTC", time.gmtime(info["since"]))
    return text


def _command_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            words = f.read().replace(b"\0", b" ").decode("utf-8", "replace").split()
    except OSError:
        return None
    return " ".join(words)[:300] or None


class SearchLog:
    """An open, append-only log. ``resume=False`` refuses to touch a non-empty file;
    ``resume=True`` loads the finished trials (``completed``) and continues the file.

    Its bookkeeping (``headers``, ``completed``) is what the file holds, not what it meant
    to write: after every write, whether it succeeded, failed or was interrupted (Ctrl-C),
    it reads back the lines it appended, as the log's only writer. A header is looked up
    by its search index: one already in the file with the same spec hash is reused, never
    written twice, and a trial already in the file is not written again.

    It holds the log's writer lock from construction until :meth:`close` (or the end of a
    ``with`` block, or garbage collection, or the exit of the process); see the module
    docstring. Opening a log that another process writes raises LogError naming it."""

    def __init__(self, path: str, resume: bool = False, verbose: bool = False):
        self.path = os.fspath(path) if isinstance(path, (str, os.PathLike)) else path
        _check_path(self.path)
        # What the file holds, up to the end of its last whole line (its good_bytes):
        # replaced as a whole, never edited in place, so an interrupt leaves it consistent.
        # Trial records are not kept (``completed`` holds their outcomes).
        self._contents = LogContents(headers=[], trials={})
        self._resumed_headers = 0  # headers the file held when this SearchLog opened it
        self.torn_line: str | None = None
        self._pending_header: dict | None = None
        self._lock: _WriterLock | None = None
        self._closed_because = "it was closed"
        while True:
            with _registry_lock:
                lock = _held.get(_file_key(os.stat(self.path)))
            taking_over = lock is not None
            if lock is None:
                lock = _WriterLock.acquire(self.path)
            with lock.mutex:  # a takeover waits for the older SearchLog's write in flight
                if not lock.alive:
                    continue  # closed by its owner meanwhile: take the lock afresh
                try:
                    self._load(resume, verbose)
                except BaseException:
                    if not taking_over:
                        lock.release()
                    raise
                previous = lock.owner() if lock.owner is not None else None
                if previous is not None and previous is not self:
                    previous._lock = None
                    previous._closed_because = (
                        "a newer SearchLog in this process (a new searcher with the same "
                        "log_path) opened the same file and writes it now; use one searcher "
                        "per log")
                lock.owner = weakref.ref(self)
                self._lock = lock
                with _registry_lock:
                    _held[lock.key] = lock
                return

    def _load(self, resume: bool, verbose: bool) -> None:
        if os.path.getsize(self.path) == 0:
            return
        if not resume:
            raise LogError(f"search log {self.path!r} already holds a search; pass resume=True "
                           f"to continue it, or choose another log_path")
        contents = read_log(self.path)
        if contents.torn_line is not None:
            self.torn_line = contents.torn_line
            message = (f"{self.path}: ignored a torn last line ({len(contents.torn_line)} "
                       f"characters, probably a run killed mid-write); that trial will be "
                       f"trained again")
            warnings.warn(message, RuntimeWarning, stacklevel=4)
            if verbose:
                print(f"Warning: {message}")
            # Cut the fragment off so the next append starts on a fresh line.
            try:
                with open(self.path, "r+b") as f:
                    f.truncate(contents.good_bytes)
            except OSError as e:  # K-11: an append-only (chattr +a) or read-only log
                raise LogError(
                    f"cannot resume from {self.path!r}: it ends in an incomplete line (a run "
                    f"killed mid-write) that cannot be cut off ({e.strerror or e}); the "
                    f"lines before it are intact: make the file writable, or resume from a "
                    f"copy of it") from None
        contents.torn_line = None
        contents.trials = {}
        self._contents = contents
        self._resumed_headers = len(contents.headers)
        if verbose:
            print(f"Resuming from {self.path}: {len(self.completed)} finished models")

    @property
    def headers(self) -> list[dict]:
        """The headers in the file, one per search call: ``headers[i]`` is search #i's."""
        return self._contents.headers

    @property
    def completed(self) -> dict[str, TrialOutcome]:
        """The finished models in the file, by trial key."""
        return self._contents.outcomes

    def header(self, search_index: int) -> dict | None:
        """Search #``search_index``'s header in the file, or None if it has none yet."""
        headers = self._contents.headers
        return headers[search_index] if 0 <= search_index < len(headers) else None

    @property
    def closed(self) -> bool:
        return self._lock is None

    def close(self) -> None:
        """Release the writer lock; later writes raise LogError. Safe to call twice. A
        pending header (a search call that wrote nothing) is dropped, as after a crash."""
        lock = self._lock
        if lock is None:
            return
        with lock.mutex:
            if self._lock is lock:
                self._lock = None
                lock.release()

    def __enter__(self) -> "SearchLog":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def begin(self, search_index: int, spec: Mapping[str, Any],
              about: Mapping[str, Any] | None = None) -> None:
        """Check the spec of search call ``search_index`` against its header in the file
        (found by index: a header there with the same spec hash is reused, never written
        again), or prepare a header to write with the call's first records. ``about`` adds
        fields to a new header that describe the call without being part of its spec (not
        hashed, never compared on resume)."""
        if isinstance(search_index, bool) or not isinstance(search_index, int) \
                or search_index < 0:
            raise LogError(f"search_index={search_index!r} must be an integer >= 0")
        digest = spec_hash(spec)
        lock = self._lock
        if lock is not None:
            with lock.mutex:
                if self._lock is lock:
                    self._catch_up()  # a write interrupted after its bytes reached the file
        logged = self.header(search_index)
        if logged is not None:
            if logged.get("spec_hash") != digest:
                diffs = spec_differences(logged.get("spec", {}), spec)
                if search_index >= self._resumed_headers:  # written by this SearchLog (I-9)
                    raise LogError(
                        f"cannot start another search as search #{search_index} in "
                        f"{self.path!r}: this searcher's search #{search_index} was "
                        f"interrupted (or failed) before it finished, and its header and "
                        f"finished models are in the log (from line "
                        f"{self._contents.header_lines[search_index]}). Run that search "
                        f"call again to finish it, or use another log_path for a new search. "
                        f"Differing fields: {'; '.join(diffs) or 'unknown'}.")
                raise LogError(
                    f"cannot resume from {self.path!r}: search #{search_index} there was run "
                    f"with a different spec (hash {logged.get('spec_hash')} vs {digest}). "
                    f"Differing fields: {'; '.join(diffs) or 'unknown'}. Use the same "
                    f"settings to resume, or another log_path for a new search.")
            self._pending_header = None  # in the file already: reused, never written again
            return
        if search_index > len(self.headers):
            raise LogError(f"cannot log search #{search_index} in {self.path!r}: the log "
                           f"holds headers up to search #{len(self.headers) - 1} only, and "
                           f"search calls are logged in order")
        # Written with the call's first finished models (or by finish()), never before:
        # a call that fails before any model finished leaves the log as it was.
        self._pending_header = {"type": "header", "version": LOG_VERSION,
                                "search_index": search_index, "spec_hash": digest,
                                "spec": jsonable(spec), **jsonable(dict(about or {})),
                                "created": time.time()}

    def finish(self) -> None:
        """Write the current call's header if the file does not hold it yet (a call that had
        nothing left to train), so that every call has its header, in order."""
        self.append([])

    def append(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append records as lines (after the pending header, if any), then flush and fsync:
        they survive a crash after this. A failed write (disk full, say) is cut back off,
        so every line already in the file stays whole, and raised as a LogError.

        Whatever happens, the bookkeeping then follows the file: a header or trial that
        reached it counts as written (an interrupt after the write), one that did not is
        still to write (a failed write), so calling again writes each line once. A trial
        whose key the file already holds is not written again."""
        records = [dict(r) for r in records]
        if not records and self._pending_header is None:
            return
        lock = self._lock
        if lock is None:
            raise LogError(f"cannot write to the search log {self.path!r}: this SearchLog "
                           f"can no longer write it, because {self._closed_because}")
        with lock.mutex:
            if self._lock is not lock:  # taken over while we waited
                raise LogError(f"cannot write to the search log {self.path!r}: this "
                               f"SearchLog can no longer write it, because "
                               f"{self._closed_because}")
            if lock.forked:
                raise LogError(f"cannot write to the search log {self.path!r} from a forked "
                               f"child process: the parent process is its writer")
            self._catch_up()
            text = self._text(records)
            if not text:
                return
            try:
                self._write(text)
            except BaseException as e:
                try:
                    self._catch_up()
                    if not isinstance(e, (OSError, LogError)):
                        self._sync_quietly()  # interrupted before its fsync, say
                except Exception:
                    pass  # the next write catches up; this error is the one to report
                raise
            self._catch_up()

    def _text(self, records: list[dict]) -> str:
        """The lines still to write: the pending header unless the file holds it, and the
        records whose trial key it does not."""
        header = self._pending_header
        if header is not None:
            logged = self.header(header["search_index"])
            if logged is not None:
                if logged.get("spec_hash") != header["spec_hash"]:
                    raise LogError(f"cannot write to the search log {self.path!r}: it already "
                                   f"holds a header for search #{header['search_index']} with "
                                   f"another spec")
                header = self._pending_header = None
        fresh = [r for r in records if not (r.get("type") == "trial"
                                            and r.get("key") in self.completed)]
        if header is not None:
            fresh.insert(0, header)
        return "".join(json.dumps(jsonable(r), allow_nan=False) + "\n" for r in fresh)

    def _catch_up(self) -> None:
        """Make the bookkeeping follow the file: read the whole lines past the known end
        (this writer's own, of a write that failed or was interrupted before its
        bookkeeping) and cut off an incomplete last line, so the next write starts on a
        fresh line. The state is replaced at once, so an interrupt here leaves the old
        one, and the next call catches up again."""
        known = self._contents.good_bytes
        try:
            size = os.path.getsize(self.path)
        except FileNotFoundError:  # K-3: mv or rm while the search runs
            raise LogError(f"the search log {self.path!r} was moved or deleted while the "
                           f"search ran, so the search stopped; a moved log is intact: put "
                           f"it back (or pass its new path) and resume from it "
                           f"(--resume / resume=True)") from None
        except OSError as e:
            raise LogError(f"cannot read the search log {self.path!r}: "
                           f"{e.strerror or e}") from None
        if size == known:
            return
        if size < known:
            raise LogError(f"the search log {self.path!r} is {size} bytes long, shorter than "
                           f"the {known} this search has written: another program changed "
                           f"it. Check the file, then resume from it with a new searcher "
                           f"(resume=True)")
        try:
            with open(self.path, "rb") as f:
                f.seek(known)
                tail = f.read(size - known)
        except OSError as e:
            raise LogError(f"cannot read the search log {self.path!r}: "
                           f"{e.strerror or e}") from None
        contents = self._contents.copy()
        _parse_lines(tail, self.path, contents)
        torn, contents.torn_line, contents.trials = contents.torn_line, None, {}
        self._contents = contents  # the whole lines count, even if the rest cannot be cut
        if torn is not None:
            try:
                with open(self.path, "r+b") as f:
                    f.truncate(contents.good_bytes)
            except OSError as e:
                raise LogError(f"cannot write to the search log {self.path!r}: it ends in "
                               f"an incomplete line that cannot be cut off "
                               f"({e.strerror or e}); the lines before it are intact, so "
                               f"the search can be resumed once the problem is "
                               f"fixed") from None

    def _sync_quietly(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _write(self, text: str) -> None:
        size = self._contents.good_bytes
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            try:
                with open(self.path, "r+b") as f:
                    f.truncate(size)
            except OSError:
                pass  # the next write reads back what remains, and cuts a partial line off
            raise LogError(f"cannot write to the search log {self.path!r}: "
                           f"{e.strerror or e}. The search stopped; the lines already "
                           f"written are intact, so it can be resumed once the problem is "
                           f"fixed") from None
