"""The append-only JSONL search log, which makes a search resumable.

Layout: one JSON object per line.
  {"type": "header", "version": 1, "search_index": 0, "spec_hash": ..., "spec": {...}}
  {"type": "trial", "search_index": 0, "key": ..., "config": {...}, "history": {...}, ...}
  ...
The first line is the header of the searcher's first search call; each later search call
of the same searcher (a second grid_search, say) appends its own header. Trial lines are
written per finished bucket, then flushed and fsync'ed, so a killed run loses at most the
bucket in flight. A trial is identified by its full config including the seed, so resuming
skips exactly the models that were finished.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import stat
import time
import warnings
from typing import Any, Iterable, Mapping

from dendrax.errors import ConfigError, DendraxError
from dendrax.config import ModelConfig
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
    headers: list[dict]
    trials: dict[str, dict]        # trial key -> its log record
    outcomes: dict[str, TrialOutcome] = dataclasses.field(default_factory=dict)
    torn_line: str | None = None   # an incomplete last line, ignored
    good_bytes: int = 0            # length of the file up to the end of its last whole line


def read_log(path: str) -> LogContents:
    """Parse and validate a log. A record counts once its newline is written: a last line
    without one, or one that does not parse, is a write cut short by a kill. It is
    returned as ``torn_line`` and otherwise ignored. An unparsable line anywhere else is
    corruption, and a whole line that parses but is not a valid record (a missing key, a
    mistyped field, a config that fails validation, a key that is not its config's) is
    an error too: every LogError names the file and the line."""
    check_regular_file(path, "read")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise LogError(f"cannot read the search log {path!r}: {e.strerror or e}") from None
    contents = LogContents(headers=[], trials={})
    complete_file = raw.endswith(b"\n")
    lines = raw.split(b"\n")
    if complete_file:
        lines.pop()  # the empty piece after the final newline
    for number, line in enumerate(lines, 1):
        is_last = number == len(lines)
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
        contents.good_bytes += len(line) + 1
        if record is None:
            continue
        try:
            _read_record(record, contents)
        except LogError as e:
            raise LogError(f"{path}: line {number}: {e}") from None
        except (ValueError, TypeError) as e:  # ConfigError is a ValueError
            raise LogError(f"{path}: line {number}: invalid {record.get('type')!r} record: "
                           f"{e}") from None
    if contents.trials and not contents.headers:
        raise LogError(f"{path}: trial lines but no header; this is not a dendrax search log")
    return contents


def _read_record(record: dict, contents: LogContents) -> None:
    """Check one parsed line and add it to ``contents``."""
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
        contents.headers.append(record)
    elif kind == "trial":
        key = record.get("key")
        if not isinstance(key, str):
            raise ValueError(f"'key' must be a string, got {key!r}")
        outcome = outcome_from_record(record)
        if trial_key(outcome.config) != key:
            raise ValueError(f"'key' {key!r} is not the key of its config "
                             f"({trial_key(outcome.config)!r}); the line was edited")
        contents.trials[key] = record
        contents.outcomes[key] = outcome
    else:
        raise ValueError(f"unknown record type {kind!r}; expected 'header' or 'trial'")


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


def check_writable(path: str) -> None:
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


class SearchLog:
    """An open, append-only log. ``resume=False`` refuses to touch a non-empty file;
    ``resume=True`` loads the finished trials (``completed``) and continues the file."""

    def __init__(self, path: str, resume: bool = False, verbose: bool = False):
        self.path = os.fspath(path)
        check_writable(self.path)
        self.headers: list[dict] = []
        self.completed: dict[str, TrialOutcome] = {}
        self.torn_line: str | None = None
        self._pending_header: dict | None = None
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
            warnings.warn(message, RuntimeWarning, stacklevel=3)
            if verbose:
                print(f"Warning: {message}")
            # Cut the fragment off so the next append starts on a fresh line.
            with open(self.path, "r+b") as f:
                f.truncate(contents.good_bytes)
        self.headers = contents.headers
        self.completed = dict(contents.outcomes)
        if verbose:
            print(f"Resuming from {self.path}: {len(self.completed)} finished models")

    def begin(self, search_index: int, spec: Mapping[str, Any],
              about: Mapping[str, Any] | None = None) -> None:
        """Check the spec of search call ``search_index`` against the log, or record it.
        ``about`` adds fields to a new header that describe the call without being part of
        its spec (not hashed, never compared on resume)."""
        digest = spec_hash(spec)
        if search_index < len(self.headers):
            logged = self.headers[search_index]
            if logged.get("spec_hash") != digest:
                diffs = spec_differences(logged.get("spec", {}), spec)
                raise LogError(
                    f"cannot resume from {self.path!r}: search #{search_index} there was run "
                    f"with a different spec (hash {logged.get('spec_hash')} vs {digest}). "
                    f"Differing fields: {'; '.join(diffs) or 'unknown'}. Use the same "
                    f"settings to resume, or another log_path for a new search.")
            return
        # Written with the call's first finished models (or by finish()), never before:
        # a call that fails before any model finished leaves the log as it was.
        self._pending_header = {"type": "header", "version": LOG_VERSION,
                                "search_index": search_index, "spec_hash": digest,
                                "spec": jsonable(spec), **jsonable(dict(about or {})),
                                "created": time.time()}

    def finish(self) -> None:
        """Write the current call's header if nothing has written it yet (a call that had
        nothing left to train), so that later calls' headers keep their positions."""
        self.append([])

    def append(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append records as lines (after the pending header, if any), then flush and fsync:
        they survive a crash after this. A failed write (disk full, say) is cut back off,
        so every line already in the file stays whole, and raised as a LogError."""
        records = list(records)
        header = self._pending_header
        if header is not None:
            records.insert(0, header)
        text = "".join(json.dumps(jsonable(r), allow_nan=False) + "\n" for r in records)
        if not text:
            return
        size = os.path.getsize(self.path)
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
                pass  # the next read treats a partial last line as torn
            raise LogError(f"cannot write to the search log {self.path!r}: "
                           f"{e.strerror or e}. The search stopped; the lines already "
                           f"written are intact, so it can be resumed once the problem is "
                           f"fixed") from None
        if header is not None:
            self.headers.append(header)
            self._pending_header = None
