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
import time
import warnings
from typing import Any, Iterable, Mapping

from dendrax.search.config import ModelConfig
from dendrax.search.trial import TrialOutcome

LOG_VERSION = 1


class LogError(RuntimeError):
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


def trial_key(config: ModelConfig) -> str:
    """Identity of one trained model: the whole config, seed included."""
    return _digest(config.to_dict())


def config_key(config: ModelConfig) -> str:
    """Identity of a configuration across its seeds: the whole config except the seed."""
    fields = config.to_dict()
    fields.pop("seed", None)
    return _digest(fields)


def outcome_record(outcome: TrialOutcome, search_index: int) -> dict:
    """The log line for one finished model; ``bucket`` is the trainer's own label."""
    record = {"type": "trial", "search_index": search_index, "key": trial_key(outcome.config),
              "config_key": config_key(outcome.config), "finished_at": time.time()}
    record.update(outcome.to_dict())
    return jsonable(record)


def outcome_from_record(record: Mapping[str, Any]) -> TrialOutcome:
    """Rebuild a TrialOutcome from its log line (None in histories was NaN)."""
    names = {f.name for f in dataclasses.fields(TrialOutcome)}
    fields = {k: v for k, v in record.items() if k in names}
    fields["config"] = ModelConfig.from_dict(record["config"])
    fields["history"] = {k: [math.nan if v is None else float(v) for v in vs]
                         for k, vs in (record.get("history") or {}).items()}
    return TrialOutcome(**fields)


# ---- reading -------------------------------------------------------------------------

@dataclasses.dataclass
class LogContents:
    headers: list[dict]
    trials: dict[str, dict]
    torn_line: str | None = None   # an incomplete last line, ignored
    good_bytes: int = 0            # length of the file up to the end of its last whole line


def read_log(path: str) -> LogContents:
    """Parse a log. A record counts once its newline is written: a last line without one, or
    one that does not parse, is a write cut short by a kill. It is returned as
    ``torn_line`` and otherwise ignored. An unparsable line anywhere else is corruption."""
    with open(path, "rb") as f:
        raw = f.read()
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
                record = json.loads(line)
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
        if record["type"] == "header":
            if record.get("version") != LOG_VERSION:
                raise LogError(f"{path}: log version {record.get('version')!r}; this dendrax "
                               f"reads version {LOG_VERSION}")
            contents.headers.append(record)
        elif record["type"] == "trial":
            contents.trials[record["key"]] = record
    if contents.trials and not contents.headers:
        raise LogError(f"{path}: trial lines but no header; this is not a dendrax search log")
    return contents


def spec_differences(logged: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Human-readable list of top-level spec fields that differ."""
    out = []
    for name in sorted(set(logged) | set(current)):
        a, b = logged.get(name, "<absent>"), current.get(name, "<absent>")
        if canonical(a) != canonical(b):
            out.append(f"{name} (log: {canonical(a)}, now: {canonical(b)})")
    return out


# ---- writing -------------------------------------------------------------------------

def check_writable(path: str) -> None:
    """Raise LogError unless ``path`` can be appended to (creating it if missing)."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise LogError(f"cannot write the search log {path!r}: it is a directory")
    if not os.path.isdir(directory):
        raise LogError(f"cannot write the search log {path!r}: directory {directory!r} "
                       f"does not exist")
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as e:
        raise LogError(f"cannot write the search log {path!r}: {e.strerror or e}") from None


class SearchLog:
    """An open, append-only log. ``resume=False`` refuses to touch a non-empty file;
    ``resume=True`` loads the finished trials (``completed``) and continues the file."""

    def __init__(self, path: str, resume: bool = False, verbose: bool = False):
        self.path = os.fspath(path)
        check_writable(self.path)
        self.headers: list[dict] = []
        self.completed: dict[str, TrialOutcome] = {}
        self.torn_line: str | None = None
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
        self.completed = {k: outcome_from_record(r) for k, r in contents.trials.items()}
        if verbose:
            print(f"Resuming from {self.path}: {len(self.completed)} finished models")

    def begin(self, search_index: int, spec: Mapping[str, Any]) -> None:
        """Check the spec of search call ``search_index`` against the log, or record it."""
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
        header = {"type": "header", "version": LOG_VERSION, "search_index": search_index,
                  "spec_hash": digest, "spec": jsonable(spec), "created": time.time()}
        self.append([header])
        self.headers.append(header)

    def append(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append records as lines, then flush and fsync: they survive a crash after this."""
        text = "".join(json.dumps(jsonable(r), allow_nan=False) + "\n" for r in records)
        if not text:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
