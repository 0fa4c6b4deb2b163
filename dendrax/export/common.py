"""What every exporter needs: a config's hyperparameters, a run name, the search's settings,
and one error for a target that cannot be used (``ExportError``).

An export has two phases. Its target (an Optuna storage URL, a TensorBoard folder, an
MLflow tracking URI) is checked first, without writing anything (the ``check_*`` function
of each exporter; ``dendrax show`` runs them before it reads the log). The writing then
runs inside :func:`writing`, which turns whatever the tracker's library or the file system
raises (SQLAlchemy, MLflow, OSError...) into an ``ExportError`` naming the target, the
cause and what to do.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Any, Iterator, Mapping, Sequence

from dendrax.errors import DendraxError
from dendrax.search.record import SearchRecord
from dendrax.search.results import SearchResult, format_value
from dendrax.search.table import parameter_value


class ExportError(DendraxError, RuntimeError):
    """An export target that cannot be used or written: an Optuna storage, a TensorBoard
    folder or an MLflow tracking URI that is empty, malformed, unreachable, in memory only,
    not writable, a file where a folder is needed, or already holding an export. The
    message names the target, the cause and what to do."""


class MissingExtraError(ExportError, ImportError):
    """An exporter's optional extra is not installed (an ImportError too, as it always was)."""


def require(module: str, extra: str, what: str):
    """Import ``module`` or raise MissingExtraError (an ImportError) naming the pip extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"{what} needs {module.split('.')[0]}: "
                                f"pip install 'dendrax[{extra}]'") from None


def describe(error: BaseException, limit: int = 300) -> str:
    """A foreign exception as one short line: its type and the first line of its message."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if len(text) > limit:
        text = text[:limit] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@contextlib.contextmanager
def writing(target: str, hint: str) -> Iterator[None]:
    """Run an export's writes: a DendraxError passes as it is; any other exception (the
    tracker library's, the file system's) becomes an ExportError "``target``: cause;
    ``hint``", chained to the original (``dendrax --debug`` shows its traceback)."""
    try:
        yield
    except DendraxError:
        raise
    except Exception as error:
        cause = error.strerror if isinstance(error, OSError) and error.strerror else None
        if cause and error.filename is not None:
            cause = f"{cause}: {os.fsdecode(error.filename)!r}"
        raise ExportError(f"{target}: {cause or describe(error)}; {hint}") from error


def text_target(target: Any, what: str, example: str) -> str:
    """``target`` (a str or path object) as a string that can name a file or URL, else an
    ExportError: not a string, empty (an unset shell variable?), holding a NUL character
    or characters no file name can."""
    if isinstance(target, os.PathLike):
        target = os.fspath(target)
    if not isinstance(target, str):
        raise ExportError(f"{what} {target!r} is a {type(target).__name__}, not a path or "
                          f"URL; give one such as {example}")
    if not target.strip():
        raise ExportError(f"{what} {target!r} is empty (an unset shell variable?); give one "
                          f"such as {example}")
    if "\0" in target:
        raise ExportError(f"{what} {target!r} contains a NUL character, which no path or "
                          f"URL may hold; give one such as {example}")
    try:
        os.fsencode(target)
    except UnicodeError:
        raise ExportError(f"{what} {target!r} holds characters that cannot be encoded in a "
                          f"file name (a lone surrogate?); give one such as "
                          f"{example}") from None
    return target


def same_file(path: str, others: Sequence[Any]) -> Any:
    """The first of ``others`` (the search logs a command reads) that names the same file
    as ``path``, else None."""
    for other in others:
        if other is None:
            continue
        try:
            if os.path.realpath(path) == os.path.realpath(os.fspath(other)):
                return other
            if os.path.exists(path) and os.path.samefile(path, other):
                return other
        except (OSError, ValueError, TypeError):
            continue
    return None


def _limit(name: str, default: int) -> int:
    try:
        return os.pathconf("/", name)
    except (AttributeError, ValueError, OSError):
        return default


def too_long(path: str) -> str | None:
    """Why ``path`` cannot be a file name here (longer than PATH_MAX bytes, or a part
    longer than NAME_MAX), else None."""
    full = os.fsencode(os.path.abspath(path))
    path_max, name_max = _limit("PC_PATH_MAX", 4096), _limit("PC_NAME_MAX", 255)
    if len(full) >= path_max:
        return f"the path is {len(full):,} bytes long, over the {path_max:,} allowed"
    longest = max(len(part) for part in full.split(os.fsencode(os.sep)))
    if longest > name_max:
        return f"a name in it is {longest:,} bytes long, over the {name_max:,} allowed"
    return None


def check_folder(path: str, what: str, *, avoid: Sequence[Any] = (),
                 name: str | None = None) -> bool:
    """Check that a folder can be written at ``path``: it is a writable folder, or missing
    with a writable folder as its nearest existing ancestor (every missing one is created
    on export). Returns whether it exists. Raises ExportError naming ``what`` and ``name``
    (the target as given, a file:// URI say; default ``path``)."""
    label = f"{what} {path!r}" if name is None or name == path else \
        f"{what} {name!r} (folder {path!r})"
    clash = same_file(path, avoid)
    if clash is not None:
        raise ExportError(f"{label} is the search log {os.fspath(clash)!r} this command "
                          f"reads; name a new folder")
    try:
        problem = too_long(path)
        if problem:
            raise ExportError(f"{label}: {problem}; name a shorter one")
        if os.path.lexists(path):
            if not os.path.isdir(path):
                raise ExportError(f"{label} is a file, not a folder; name a new or existing "
                                  f"folder (it is created if missing)")
            if not os.access(path, os.W_OK | os.X_OK):
                raise ExportError(f"{label} is a folder this user cannot write into; name "
                                  f"another, or change its permissions")
            return True
        ancestor = os.path.dirname(os.path.abspath(path))
        while not os.path.lexists(ancestor):
            parent = os.path.dirname(ancestor)
            if parent == ancestor:
                break
            ancestor = parent
        if not os.path.isdir(ancestor):
            raise ExportError(f"{label}: {ancestor!r} in its path is a file, not a folder; "
                              f"name a folder that can be created")
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise ExportError(f"{label}: cannot create it, {ancestor!r} is not writable by "
                              f"this user; name another folder")
        return False
    except (OSError, ValueError) as error:  # a name too long, a loop of links...
        cause = error.strerror if isinstance(error, OSError) else None
        raise ExportError(f"{label}: {cause or describe(error)}") from None


SQLITE_HEADER = b"SQLite format 3\x00"


def check_sqlite_file(path: str, target: str, what: str, *, create_folders: bool,
                      avoid: Sequence[Any] = (), example: str = "sqlite:///search.db") -> None:
    """Check an SQLite database file for an export: not the same file as one of ``avoid``
    (the log), not a folder, an SQLite database or an empty file if it exists, else in an
    existing writable folder (unless the tracker creates the folders: ``create_folders``).
    ``target`` is the URL as given, for the message."""
    clash = same_file(path, avoid)
    if clash is not None:
        raise ExportError(f"{what} {target!r} names the search log {os.fspath(clash)!r} "
                          f"this command reads as its database; name a new file, e.g. "
                          f"{example}")
    try:
        problem = too_long(path)
        if problem:
            raise ExportError(f"{what} {target!r}: {problem}; name a shorter one")
        if os.path.isdir(path):
            raise ExportError(f"{what} {target!r} names a folder, not a database file; name "
                              f"a file in it, e.g. sqlite:///{os.path.join(path, 'search.db')}")
        if os.path.lexists(path):
            if not os.path.isfile(path):
                raise ExportError(f"{what} {target!r} names something that is not a regular "
                                  f"file; name a database file, e.g. {example}")
            with open(path, "rb") as handle:
                header = handle.read(len(SQLITE_HEADER))
            if header and header != SQLITE_HEADER:  # an empty file is a new database
                raise ExportError(f"{what} {target!r} names a file that is not an SQLite "
                                  f"database ({os.path.getsize(path):,} bytes of something "
                                  f"else); name a new file or an existing database")
            if not os.access(path, os.W_OK):
                raise ExportError(f"{what} {target!r} names a database this user cannot "
                                  f"write; name another file")
            return
        if create_folders:
            check_folder(os.path.dirname(os.path.abspath(path)), what, name=target)
            return
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise ExportError(f"{what} {target!r}: its folder {folder!r} does not exist "
                              f"(or is not a folder); create it first, or name another file")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ExportError(f"{what} {target!r}: its folder {folder!r} is not writable by "
                              f"this user; name a file elsewhere")
    except ExportError:
        raise
    except (OSError, ValueError) as error:
        cause = error.strerror if isinstance(error, OSError) else None
        raise ExportError(f"{what} {target!r}: {cause or describe(error)}") from None


def hyperparameters(result: SearchResult, names: Sequence[str]) -> dict[str, Any]:
    """The searched parameters of a result: its params, else its full config's value."""
    return {n: parameter_value(result, n) for n in names}


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def run_name(index: int, result: SearchResult, names: Sequence[str]) -> str:
    """"003 n_neurons=12 n_dendrites=6": a sortable, readable run name from ``names`` (the
    parameters that vary, see dendrax.search.table.varying_parameters)."""
    values = hyperparameters(result, names)
    text = " ".join(f"{k}={format_value(v)}" for k, v in values.items())
    return f"{index:03d} {text}".strip()[:200]


def export_settings(record: SearchRecord) -> dict[str, Any]:
    """The flat settings every exporter records: dataset, epochs, subset, batch size,
    budget, seed, validation fraction, halving and seeds per config (those known)."""
    settings = record.settings
    budget = settings.get("budget") if isinstance(settings.get("budget"), Mapping) else {}
    return {k: v for k, v in {
        "dataset": settings.get("dataset"), "n_epochs": settings.get("n_epochs"),
        "subset_size": settings.get("subset_size"), "batch_size": settings.get("batch_size"),
        "max_params": budget.get("max_params"),
        "min_param_ratio": budget.get("min_param_ratio"), "seed": settings.get("seed"),
        "validation_fraction": settings.get("validation_fraction"),
        "halving": settings.get("halving"),
        "seeds_per_config": record.seeds_per_config}.items() if v is not None}
