"""Search results: per-config aggregation over seeds, ranking by validation, the Pareto
front, the results files, and the value formatting the table, plots and exporters share.

Test accuracy is carried and reported but never used to choose or order configurations:
choosing on test would leak the selection into the number that is reported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import secrets
import stat
from typing import Any, Iterable, Mapping, Sequence

from dendrax.checks import shown
from dendrax.errors import DendraxError
from dendrax.search.log import LogError, jsonable

RANK_BY = ("val_mean", "val_lcb")


# ---- Student's t quantile -------------------------------------------------------------

def t_quantile(p: float, df: float) -> float:
    """The t with P(T ≤ t) = p for Student's t with ``df`` degrees of freedom.

    SciPy's ``stdtrit``, which is what ``scipy.stats.t.ppf`` computes; imported on the
    first call, since importing SciPy costs a quarter of a second (scipy.stats more than
    half) and importing the results must stay cheap.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p={p!r} must lie in (0, 1)")
    if df <= 0:
        raise ValueError(f"df={df!r} must be > 0")
    from scipy.special import stdtrit

    return float(stdtrit(df, p))


# ---- per-seed statistics -------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SeedStats:
    """Spread of one metric over a config's seeds.

    std uses ddof=1; the confidence interval is mean ± t(0.975, n−1) · std / √n.
    """

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    min: float
    max: float
    confidence: float = 0.95


def seed_stats(values: Sequence[float], confidence: float = 0.95) -> SeedStats | None:
    """Statistics over seeds, or None with fewer than two values (no spread to measure)."""
    values = [float(v) for v in values]
    n = len(values)
    if n < 2:
        return None
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * std / math.sqrt(n)
    return SeedStats(n=n, mean=mean, std=std, ci_low=mean - half, ci_high=mean + half,
                     min=min(values), max=max(values), confidence=confidence)


# ---- one result per configuration -----------------------------------------------------

@dataclasses.dataclass
class SearchResult:
    """One configuration, aggregated over its seeds.

    The first six fields are the original toolkit's. Accuracies and losses are means over
    the seeds that did not diverge; ``train_time`` is the sum over all the config's seeds.
    ``history[i]`` is the per-epoch history of seed ``seeds[i]``, ``train_times[i]`` its
    share of the bucket's wall time and ``stopped_epochs[i]`` the epoch at which successive
    halving stopped it (None: trained to the end); ``compile_time`` is the compile time of
    the bucket(s) it trained in (shared with the bucket's other members). ``val_stats`` and
    ``test_stats`` are None with fewer than two surviving seeds. A config with any diverged
    seed has ``diverged=True`` and is never ranked.
    """

    params: dict[str, Any]
    test_accuracy: float
    train_accuracy: float
    total_params: int
    train_time: float
    final_test_loss: float
    val_accuracy: float = math.nan
    val_loss: float = math.nan
    seeds: list[int] = dataclasses.field(default_factory=list)
    history: list[dict[str, list[float]]] = dataclasses.field(default_factory=list)
    diverged: bool = False
    n_seeds: int = 1
    diverged_seeds: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    val_stats: SeedStats | None = None
    test_stats: SeedStats | None = None
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    bucket: str = ""
    compile_time: float = 0.0
    train_times: list[float] = dataclasses.field(default_factory=list)
    stopped_epochs: list[int | None] = dataclasses.field(default_factory=list)

    @property
    def epochs_trained(self) -> int:
        """The most epochs any of the config's seeds trained (fewer when halving stopped
        it)."""
        return max((len(h.get("val_accuracy") or h.get("train_loss") or [])
                    for h in self.history), default=0)

    @property
    def stopped_by_halving(self) -> bool:
        return any(e is not None for e in self.stopped_epochs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _mean(values: Iterable[float]) -> float:
    values = [float(v) for v in values]
    return math.fsum(values) / len(values) if values else math.nan


def aggregate(params: dict[str, Any], outcomes: Sequence[Any], bucket: str = "") -> SearchResult:
    """Fold a config's TrialOutcomes (one per seed) into a :class:`SearchResult`."""
    if not outcomes:
        raise ValueError("aggregate needs at least one outcome")
    alive = [o for o in outcomes if not o.diverged]
    config = outcomes[0].config.to_dict()
    config.pop("seed", None)
    finals = {m: [o.final(m) for o in alive]
              for m in ("test_accuracy", "train_accuracy", "val_accuracy", "val_loss",
                        "test_loss")}
    return SearchResult(
        params=dict(params),
        test_accuracy=_mean(finals["test_accuracy"]),
        train_accuracy=_mean(finals["train_accuracy"]),
        total_params=int(outcomes[0].total_params),
        train_time=math.fsum(float(o.train_time) for o in outcomes),
        final_test_loss=_mean(finals["test_loss"]),
        val_accuracy=_mean(finals["val_accuracy"]),
        val_loss=_mean(finals["val_loss"]),
        seeds=[int(o.config.seed) for o in outcomes],
        history=[{k: [float(v) for v in vs] for k, vs in o.history.items()} for o in outcomes],
        diverged=len(alive) < len(outcomes),
        n_seeds=len(outcomes),
        diverged_seeds=[{"seed": int(o.config.seed), "epoch": o.diverged_epoch,
                         "step": o.diverged_step} for o in outcomes if o.diverged],
        val_stats=seed_stats(finals["val_accuracy"]),
        test_stats=seed_stats(finals["test_accuracy"]),
        config=config,
        bucket=bucket or str(outcomes[0].bucket),
        compile_time=max(float(o.compile_time) for o in outcomes),
        train_times=[float(o.train_time) for o in outcomes],
        stopped_epochs=[o.stopped_epoch for o in outcomes],
    )


def _or_minus_inf(value: float) -> float:
    return -math.inf if value is None or math.isnan(value) else value


def rank_key(result: SearchResult, rank_by: str = "val_mean") -> tuple:
    """Larger is better. "val_lcb" ranks by the CI's lower bound; a config with one seed has
    no measured spread, so it ranks below every config that has one, then by its mean."""
    if rank_by == "val_lcb":
        lcb = result.val_stats.ci_low if result.val_stats is not None else -math.inf
        return (_or_minus_inf(lcb), _or_minus_inf(result.val_accuracy))
    return (_or_minus_inf(result.val_accuracy),)


def rank_results(results: Iterable[SearchResult], rank_by: str = "val_mean") -> list[SearchResult]:
    """Non-diverged results, best first by validation accuracy (test is never consulted).
    Ties keep the order in which the configs were searched."""
    if rank_by not in RANK_BY:
        raise ValueError(f"rank_by={rank_by!r}; choose one of {', '.join(RANK_BY)}")
    return sorted((r for r in results if not r.diverged),
                  key=lambda r: rank_key(r, rank_by), reverse=True)


# ---- the Pareto front ----------------------------------------------------------------

def pareto_front(results: Iterable[SearchResult]) -> list[SearchResult]:
    """The non-dominated results, fewest parameters first.

    A result is dominated when another has at most as many parameters and at least the
    (mean) validation accuracy, and is strictly better in one of the two. Diverged results
    and results without a validation accuracy are left out; of exact ties the first
    searched is kept.
    """
    alive = [r for r in results if not r.diverged and not math.isnan(r.val_accuracy)]
    alive.sort(key=lambda r: (r.total_params, -r.val_accuracy))
    front: list[SearchResult] = []
    for result in alive:  # by size: kept only if more accurate than every smaller model
        if not front or result.val_accuracy > front[-1].val_accuracy:
            front.append(result)
    return front


# ---- the results file ------------------------------------------------------------------

ORIGINAL_FIELDS = ("params", "test_accuracy", "train_accuracy", "total_params",
                   "train_time", "final_test_loss")


def result_record(result: SearchResult, rank: int | None = None,
                  **extra: Any) -> dict[str, Any]:
    """One result as the original's ``save_results`` record, with dendrax's fields after.

    The original's six fields come first, with their meaning (accuracies and the loss are
    means over the config's seeds, which is the one run's value with one seed). Then
    ``rank`` (by validation; None for a diverged config), every other :class:`SearchResult`
    field, and ``extra`` (for example the matmul precision)."""
    fields = result.to_dict()
    record = {name: fields.pop(name) for name in ORIGINAL_FIELDS}
    return jsonable({**record, "rank": rank, **fields, **extra})


def result_records(results: Iterable[SearchResult], rank_by: str = "val_mean",
                   **extra: Any) -> list[dict[str, Any]]:
    """Every result as :func:`result_record`: the ranked ones in rank order, then the
    diverged ones."""
    results = list(results)
    ranked = rank_results(results, rank_by)
    return ([result_record(r, i, **extra) for i, r in enumerate(ranked, 1)]
            + [result_record(r, None, **extra) for r in results if r.diverged])


_FLOAT_FIELDS = {f.name for f in dataclasses.fields(SearchResult) if f.type == "float"}


def _result_from_record(record: Mapping[str, Any], where: str) -> SearchResult:
    known = {f.name for f in dataclasses.fields(SearchResult)}
    missing = [name for name in ORIGINAL_FIELDS if name not in record]
    if missing:
        raise LogError(f"{where}: a result without {', '.join(missing)}; expected records "
                       f"written by save_results")
    values = {k: v for k, v in record.items() if k in known}
    for name in _FLOAT_FIELDS & set(values):
        values[name] = math.nan if values[name] is None else float(values[name])
    for name in ("val_stats", "test_stats"):
        if values.get(name) is not None:
            values[name] = SeedStats(**values[name])
    return SearchResult(**values)


def load_results(path: str) -> list[SearchResult]:
    """The results of a file written by ``save_results``: the original's format (a JSON list
    of records, which dendrax writes now) or dendrax's earlier document (a dict whose
    "results" holds the records, which ``save_report`` writes). Fields a record lacks take
    their defaults; fields dendrax does not know (``rank``, ``matmul_dtype``) are skipped."""
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except (OSError, ValueError) as err:
        raise LogError(f"{path}: cannot read results ({err})") from err
    if isinstance(document, Mapping) and isinstance(document.get("results"), list):
        records = document["results"]
    elif isinstance(document, list):
        records = document
    else:
        raise LogError(f"{path}: not a results file: expected a JSON list of records or a "
                       f"dict with 'results'; got {type(document).__name__}")
    return [_result_from_record(r, f"{path}, record {i}") for i, r in enumerate(records)]


def pareto_record(result: SearchResult) -> dict[str, Any]:
    """One configuration as plain JSON values: its count, accuracies (mean over seeds, with
    the spread when there are several), accuracy per 1,000 parameters, and config."""
    per_1k = 1000.0 / result.total_params

    def spread(stats: SeedStats | None) -> dict[str, Any]:
        if stats is None:
            return {"std": None, "ci_low": None, "ci_high": None}
        return {"std": stats.std, "ci_low": stats.ci_low, "ci_high": stats.ci_high}

    return jsonable({
        "total_params": int(result.total_params),
        "val_accuracy": result.val_accuracy,
        "val": spread(result.val_stats),
        "test_accuracy": result.test_accuracy,
        "test": spread(result.test_stats),
        "val_accuracy_per_1k_params": result.val_accuracy * per_1k,
        "test_accuracy_per_1k_params": result.test_accuracy * per_1k,
        "n_seeds": result.n_seeds,
        "params": result.params,
        "config": result.config,
        "bucket": result.bucket,
    })


def pareto_records(results: Iterable[SearchResult]) -> list[dict[str, Any]]:
    """:func:`pareto_front` as JSON-able dicts (:func:`pareto_record`), fewest parameters
    first."""
    return [pareto_record(r) for r in pareto_front(results)]


def pareto_document(front: Sequence[Mapping[str, Any]], n_configurations: int,
                    settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Pareto file: {"version": 1, "objectives": ..., "settings": ...,
    "n_configurations": ..., "front": [...]} for a front (:func:`pareto_records`, possibly
    with extra fields) found among ``n_configurations`` configs; write it with
    :func:`write_json`."""
    return {
        "version": 1,
        "objectives": {"total_params": "minimise",
                       "val_accuracy": "maximise (mean over seeds; test is never used)"},
        "settings": dict(settings or {}),
        "n_configurations": int(n_configurations),
        "front": list(front),
    }


class OutputError(DendraxError, OSError):
    """An output file (``--out``, ``--report``, ``save_results``, a figure...) that cannot be
    written: a missing folder, a directory, an input of the same command, a full disk. The
    previous file at that path, if any, is left as it was. An OSError too, so code that
    caught the filesystem's own error still catches it."""


def _describe(error: BaseException) -> str:
    return getattr(error, "strerror", None) or str(error)


def same_file(a: str, b: str) -> bool:
    """Whether two paths name one file: the same resolved path, or (both existing) the same
    inode, through a hard link or another spelling of the folder."""
    try:
        return os.path.realpath(a) == os.path.realpath(b) or os.path.samefile(a, b)
    except (OSError, ValueError):  # ValueError: a NUL byte in a path
        return False


def _held_log(path: str) -> bool:
    """Whether ``path`` is a search log this process holds open as its writer."""
    from dendrax.search import log as search_log

    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return False
    with search_log._registry_lock:
        return search_log._held.get(search_log._file_key(st)) is not None


def _path_text(path: Any, what: str, kind: str) -> str:
    """``path`` as a str (bytes decoded), or an OutputError naming ``what`` when it is not
    a path, is empty or holds a NUL byte (``kind``: "file" or "folder")."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise OutputError(f"{what}={shown(path)} must be the path of a {kind}")
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if "\0" in path:
        raise OutputError(f"cannot write {'into ' if kind == 'folder' else ''}{what} "
                          f"{path!r}: the path holds a NUL byte")
    return path


def check_output(path: Any, what: str = "output",
                 inputs: Mapping[str, Any] | None = None) -> str:
    """Check, before any slow work, that ``path`` can take an output file; returns it as a
    str. Raises :class:`OutputError`, in one line naming ``what`` and the path, when it is
    empty, names a directory or something other than a plain file, sits in a folder that
    does not exist or cannot be written, or is one of ``inputs`` ({what: path} of the
    command's inputs and other outputs: the spec, the log, ``--report``...) or a search log
    this process is writing. Compares resolved paths (and inodes), so ``./run.json``, a
    symlink or a hard link to the log count as the log."""
    path = _path_text(path, what, "file")
    for name, other in (inputs or {}).items():
        if other is None or not isinstance(other, (str, os.PathLike)) or not os.fspath(other):
            continue
        if same_file(path, os.fspath(other)):
            raise OutputError(f"cannot write {what} {path!r}: it is {name} "
                              f"{os.fspath(other)!r} of the same command, which it would "
                              f"overwrite; choose another path")
    if _held_log(path):
        raise OutputError(f"cannot write {what} {path!r}: it is the search log this search "
                          f"writes, which it would overwrite; choose another path")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as e:
        raise OutputError(f"cannot write {what} {path!r}: {_describe(e)}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise OutputError(f"cannot write {what} {path!r}: it is a directory; {what} must "
                          f"name a file")
    if mode is not None and not stat.S_ISREG(mode):
        raise OutputError(f"cannot write {what} {path!r}: it is not a regular file (a FIFO, "
                          f"device or socket); {what} must name a plain file")
    target = os.path.realpath(path) if os.path.islink(path) else path  # as write_atomic
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise OutputError(f"cannot write {what} {path!r}: the folder {folder!r} does not "
                          f"exist (create it first)")
    # The one sure test that the folder takes a new file (permissions, a read-only file
    # system, an ACL): create the kind of temporary file the write will, and remove it.
    probe = _temporary_path(target)
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as e:
        raise OutputError(f"cannot write {what} {path!r}: cannot create a file in "
                          f"{folder!r} ({_describe(e)})") from None
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return path


def prepare_folder(path: Any, what: str = "out_dir") -> str:
    """Make sure ``path`` is a folder that outputs can go into, creating it (and its
    parents) if missing; returns it as a str. Raises :class:`OutputError`, in one line
    naming ``what`` and the path, when it is empty, names a file, or cannot be created."""
    path = _path_text(path, what, "folder")
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputError(f"cannot write into {what} {path!r}: it is a file, not a folder; "
                          f"{what} names the folder the files go into")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create the folder {what} {path!r}: "
                          f"{_describe(e)}") from None
    return path


def _temporary_path(path: str) -> str:
    """A new name beside ``path`` for the file written before the rename (the name cut
    short so that it stays within a file system's 255-byte limit)."""
    folder, name = os.path.split(os.path.abspath(path))
    short = os.fsencode(name)[:200].decode("utf-8", "ignore") if name else "output"
    return os.path.join(folder, f".{short}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def write_atomic(path: Any, data: str | bytes, what: str = "output") -> None:
    """Write ``data`` (text is UTF-8) to ``path`` whole or not at all: into a new file beside
    it, flushed and fsynced, then renamed over it (``os.replace``), so a crash, Ctrl-C or a
    full disk never leaves a half-written file, and a previous file at that path stays
    whole until the new one replaces it. Every output file of dendrax (results, reports,
    Pareto fronts, figures) is written here. A symlink is written through (the file it
    names is replaced, the link kept), and a file replaced keeps its permissions. A
    filesystem error is an :class:`OutputError` naming ``what`` and the path; the
    temporary file is removed."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise OutputError(f"{what}={shown(path)} must be the path of a file")
    path = os.fspath(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    if os.path.isdir(path):
        raise OutputError(f"cannot write {what} {path!r}: it is a directory; {what} must "
                          f"name a file")
    # Through a symlink to the file it names (replacing the link would cut it), in the
    # folder of that file, so the rename stays within one file system.
    target = os.path.realpath(path) if os.path.islink(path) else path
    folder = os.path.dirname(os.path.abspath(target))
    temporary = _temporary_path(target)
    try:
        # os.open(..., O_EXCL) rather than tempfile.mkstemp: the file gets the usual
        # permissions (0o666 less the umask), not mkstemp's owner-only 0o600; a file it
        # replaces keeps its own.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with contextlib.suppress(OSError):
                os.chmod(fd, stat.S_IMODE(os.stat(target).st_mode))
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(e, OSError) and not isinstance(e, OutputError):
            where = (f"the folder {folder!r} does not exist"
                     if isinstance(e, FileNotFoundError) and not os.path.isdir(folder)
                     else _describe(e))
            kept = ("the previous file there is left as it was" if os.path.isfile(path)
                    else "nothing was written")
            raise OutputError(f"cannot write {what} {path!r}: {where}; {kept}") from None
        raise
    # The rename survives a crash once the folder is synced too (not every OS allows it).
    with contextlib.suppress(OSError):
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def write_json(path: str, value: Any, what: str = "output") -> None:
    """Write ``value`` as strict JSON (NaN and infinity as null, see ``jsonable``), whole or
    not at all (:func:`write_atomic`): a crash or a full disk never leaves a half-written
    results file behind, nor spoils the previous one."""
    text = json.dumps(jsonable(value), indent=2, allow_nan=False) + "\n"
    write_atomic(path, text, what)


# ---- text and per-epoch values shared by the table, the plots and the exporters ----------

def format_value(value: Any) -> str:
    """A parameter value as text: floats to 3 significant digits (0.2652429 → 0.265,
    0.0005 → 0.0005), anything else as ``str``."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def describe_params(params: Mapping[str, Any]) -> str:
    """"n_neurons=12, lr=0.0005": a config's params (seed excepted), or "(defaults)"."""
    return ", ".join(f"{k}={format_value(v)}" for k, v in params.items() if k != "seed") \
        or "(defaults)"


def epoch_stats(result: SearchResult, metric: str) -> tuple[list[float], list[float]]:
    """(mean, std) of one history metric at each epoch, over the seeds that reached that
    epoch with a finite value: NaN mean where none did, std (ddof=0, the spread drawn as a
    band) 0 with fewer than two values. Seeds stopped early by halving have shorter
    histories, so later epochs average fewer seeds."""
    rows = [h.get(metric) or [] for h in result.history]
    means, stds = [], []
    for epoch in range(max((len(r) for r in rows), default=0)):
        values = [float(r[epoch]) for r in rows if epoch < len(r) and r[epoch] is not None
                  and math.isfinite(float(r[epoch]))]
        mean = math.fsum(values) / len(values) if values else math.nan
        means.append(mean)
        stds.append(math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))
                    if len(values) > 1 else 0.0)
    return means, stds
