"""Search results as tables: the ranked summary :func:`format_results` prints (from a
:class:`~dendrax.search.record.SearchRecord`), and flat rows, one per config (or per config
and seed), for pandas, CSV, JSON and Markdown.

A :class:`~dendrax.search.results.SearchResult` nests its accuracies in statistics and its
per-epoch values in ``history``; a researcher's tools want one flat row per config. The
columns of :func:`result_rows`, in order:

  rank                 1 = best by the searcher's ranking (validation only); None when
                       diverged
  <hyperparameters>    every searched parameter, as the user gave it
  params               exact parameter count
  val_mean, val_std, val_ci_low, val_ci_high     validation accuracy over seeds (std with
  test_mean, test_std, test_ci_low, test_ci_high ddof=1, 95% t-interval; None with 1 seed)
  train_accuracy       mean final training accuracy
  n_seeds, epochs      seeds trained; most epochs any seed trained
  stopped_by_halving   True when successive halving stopped a seed early
  diverged             True when a seed diverged (never ranked)
  bucket               the population (shape) it trained in
  compile_time         seconds compiling its bucket's program (shared with its bucket)
  train_time           seconds of training, summed over its seeds

With ``per_seed=True`` there is one row per (config, seed) instead: ``seed`` replaces
``n_seeds``, ``val_accuracy``/``test_accuracy`` replace the statistics, and ``epochs``,
``stopped_epoch`` and ``train_time`` are that seed's. Pure Python; pandas only in
:func:`to_dataframe`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import numbers
from typing import Any, Iterable, Mapping, Sequence

from dendrax.errors import ConfigError
from dendrax.search.log import jsonable
from dendrax.search.progress import plural
from dendrax.search.record import SearchRecord
from dendrax.search.results import SearchResult, SeedStats, describe_params, rank_results

FORMATS = ("table", "csv", "json", "markdown")


def _final(history: Mapping[str, Sequence[float]], metric: str) -> float | None:
    values = history.get(metric) or []
    return _number(values[-1]) if values else None


def _number(value: Any) -> Any:
    """NaN and infinity become None (strict JSON, and an empty cell in a table)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _stats(prefix: str, mean: float, stats) -> dict[str, Any]:
    return {f"{prefix}_mean": _number(mean),
            f"{prefix}_std": stats.std if stats is not None else None,
            f"{prefix}_ci_low": stats.ci_low if stats is not None else None,
            f"{prefix}_ci_high": stats.ci_high if stats is not None else None}


def hyperparameter_names(results: Iterable[SearchResult]) -> list[str]:
    """Every parameter the results' params name, first-seen order (seed excepted)."""
    names: dict[str, None] = {}
    for r in results:
        for k in r.params:
            if k != "seed":
                names.setdefault(k, None)
    return list(names)


def parameter_value(result: SearchResult, name: str) -> Any:
    """A result's value of parameter ``name``: its params', else its full config's."""
    return result.params[name] if name in result.params else result.config.get(name)


def varying_parameters(results: Sequence[SearchResult]) -> list[str]:
    """The searched parameters (:func:`hyperparameter_names`) whose value differs between
    the results: what names a result among them in a legend or a run name."""
    return [name for name in hyperparameter_names(results)
            if len({repr(parameter_value(r, name)) for r in results}) > 1]


# ---- the ranked summary ------------------------------------------------------------------

def _accuracy(mean: float, stats: SeedStats | None) -> str:
    if mean is None or math.isnan(mean):
        return "-"
    return f"{mean:.4f} ± {stats.std:.4f}" if stats is not None else f"{mean:.4f}"


def format_results(record: SearchRecord, n: int = 5) -> str:
    """The top ``n`` ranked results of a search record as a table, then every diverged
    config (unranked).

    Columns: rank, validation and test accuracy (mean ± std over seeds), the lower bound of
    the validation interval when ranking by it, training accuracy, parameters (of the
    budget), seeds, epochs trained (the most any seed trained; fewer under halving),
    training time (summed over seeds) and the configuration, floats to 3 digits."""
    ranked = record.ranked
    diverged = [r for r in record.results if r.diverged]
    top = ranked[:n]
    lcb = record.rank_by == "val_lcb"
    basis = ("lower 95% confidence bound of validation accuracy" if lcb
             else "mean validation accuracy")
    lines = ["=" * 100,
             f"TOP {len(top)} OF {plural(len(ranked), 'CONFIGURATION').upper()} (ranked by "
             f"{basis}; test accuracy is reported, never used for ranking)",
             "=" * 100,
             f"{'rank':>4}  {'val acc':<17} " + (f"{'val lcb':>7}  " if lcb else "")
             + f"{'test acc':<17} {'train acc':<9}  {'params':>13}  {'seeds':>5}  "
             f"{'epochs':>6}  {'time':>7}  configuration"]
    for i, r in enumerate(top, 1):
        bound = (f"{r.val_stats.ci_low:>7.4f}  " if r.val_stats is not None else
                 f"{'-':>7}  ") if lcb else ""
        stopped = "*" if r.stopped_by_halving else " "
        lines.append(
            f"{i:>4}  {_accuracy(r.val_accuracy, r.val_stats):<17} {bound}"
            f"{_accuracy(r.test_accuracy, r.test_stats):<17} {r.train_accuracy:<9.4f}  "
            f"{f'{r.total_params:,}/{record.max_params:,}':>13}  {r.n_seeds:>5}  "
            f"{r.epochs_trained:>5}{stopped}  {r.train_time:>6.1f}s  "
            f"{describe_params(r.params)}")
    if any(r.n_seeds > 1 for r in top):
        lines.append("(mean ± std over seeds; std uses ddof=1)")
    if any(r.stopped_by_halving for r in top):
        lines.append("(* successive halving stopped at least one seed before the last epoch)")
    if not top:
        lines.append("  no trained configuration to rank")
    if diverged:
        lines.append("")
        lines.append(f"DIVERGED, NOT RANKED ({len(diverged)}):")
        for r in diverged:
            where = ", ".join(f"seed {d['seed']} at epoch {d['epoch']}" for d in r.diverged_seeds)
            lines.append(f"  {r.total_params:,} params, {len(r.diverged_seeds)}/{r.n_seeds} "
                         f"seeds diverged ({where}): {describe_params(r.params)}")
    return "\n".join(lines)


def result_rows(results: Sequence[SearchResult], *, per_seed: bool = False,
                rank_by: str = "val_mean") -> list[dict[str, Any]]:
    """Flat rows (see the module doc), ranked configs first in rank order, then diverged
    ones in search order."""
    ranked = rank_results(results, rank_by)
    rank = {id(r): i for i, r in enumerate(ranked, 1)}
    ordered = ranked + [r for r in results if id(r) not in rank]
    names = hyperparameter_names(results)
    rows = []
    for r in ordered:
        common = {"rank": rank.get(id(r)), **{k: r.params.get(k) for k in names},
                  "params": int(r.total_params)}
        tail = {"diverged": bool(r.diverged), "bucket": r.bucket,
                "compile_time": float(r.compile_time)}
        if not per_seed:
            rows.append({**common, **_stats("val", r.val_accuracy, r.val_stats),
                         **_stats("test", r.test_accuracy, r.test_stats),
                         "train_accuracy": _number(r.train_accuracy), "n_seeds": r.n_seeds,
                         "epochs": r.epochs_trained,
                         "stopped_by_halving": r.stopped_by_halving, **tail,
                         "train_time": float(r.train_time)})
            continue
        for i, seed in enumerate(r.seeds):
            history = r.history[i] if i < len(r.history) else {}
            stopped = r.stopped_epochs[i] if i < len(r.stopped_epochs) else None
            diverged = any(d.get("seed") == seed for d in r.diverged_seeds)
            rows.append({**common, "seed": seed,
                         "val_accuracy": _final(history, "val_accuracy"),
                         "test_accuracy": _final(history, "test_accuracy"),
                         "train_accuracy": _final(history, "train_accuracy"),
                         "epochs": len(history.get("val_accuracy") or []),
                         "stopped_epoch": stopped, **tail, "diverged": diverged,
                         "train_time": (r.train_times[i] if i < len(r.train_times)
                                        else r.train_time / max(r.n_seeds, 1))})
    return rows


def to_dataframe(results: Sequence[SearchResult], *, per_seed: bool = False,
                 rank_by: str = "val_mean"):
    """:func:`result_rows` as a pandas DataFrame (needs pandas:
    ``pip install 'dendrax[pandas]'``)."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("to_dataframe needs pandas: pip install 'dendrax[pandas]'") from None
    rows = result_rows(results, per_seed=per_seed, rank_by=rank_by)
    return pd.DataFrame(rows, columns=list(rows[0]) if rows else None)


# ---- sorting and filtering ---------------------------------------------------------------

def _parse_value(text: str) -> Any:
    """"12" → 12, "0.5" → 0.5, "true" → True, "none" → None, anything else stays text."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text.strip()


def _column_error(kind: str, name: str, rows: Sequence[Mapping[str, Any]]) -> ConfigError:
    columns = ", ".join(rows[0]) if rows else "(no rows)"
    return ConfigError(f"{kind} {name!r}: no such column; columns are {columns}")


def filter_rows(rows: Sequence[Mapping[str, Any]], filters: Sequence[str]
                ) -> list[dict[str, Any]]:
    """Rows whose column KEY equals VALUE for every ``"KEY=VALUE"`` in ``filters`` (values
    parsed as numbers, true/false or none when they look like one; 8 matches 8.0)."""
    out = [dict(r) for r in rows]
    for text in filters:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--filter {text!r}: write KEY=VALUE, e.g. n_neurons=12")
        if rows and key not in rows[0]:
            raise _column_error("--filter", key, rows)
        want = _parse_value(raw)
        out = [r for r in out if _equal(r.get(key), want)]
    return out


def _equal(value: Any, want: Any) -> bool:
    if isinstance(value, bool) or isinstance(want, bool):
        return isinstance(value, bool) and isinstance(want, bool) and value == want
    if isinstance(value, numbers.Real) and isinstance(want, numbers.Real):
        return math.isclose(float(value), float(want), rel_tol=1e-9, abs_tol=0.0)
    return str(value) == str(want) if want is not None else value is None


def sort_rows(rows: Sequence[Mapping[str, Any]], key: str) -> list[dict[str, Any]]:
    """Rows sorted by column ``key`` ascending, or descending as ``"key:desc"``; empty cells
    go last either way."""
    name, _, direction = key.partition(":")
    if direction not in ("", "asc", "desc"):
        raise ConfigError(f"--sort {key!r}: write COLUMN, COLUMN:asc or COLUMN:desc")
    if rows and name not in rows[0]:
        raise _column_error("--sort", name, rows)
    present = [dict(r) for r in rows if r.get(name) is not None]
    missing = [dict(r) for r in rows if r.get(name) is None]
    present.sort(key=lambda r: (str(type(r[name])), r[name]), reverse=direction == "desc")
    return present + missing


# ---- rendering ---------------------------------------------------------------------------

def _cell(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3g}"
    return str(value)


def render(rows: Sequence[Mapping[str, Any]], fmt: str) -> str:
    """Rows as an aligned text ``table``, ``csv``, ``json`` (a list of objects, strict
    JSON) or a ``markdown`` table. Floats are rounded in table and markdown only."""
    if fmt not in FORMATS:
        raise ConfigError(f"format={fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "json":
        return json.dumps(jsonable(list(rows)), indent=1, allow_nan=False)
    columns = list(rows[0]) if rows else []
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: "" if r[k] is None else r[k] for k in columns})
        return out.getvalue().rstrip("\n")
    cells = [[_cell(r[k]) for k in columns] for r in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(columns) + " |",
                 "|" + "|".join("---" for _ in columns) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
                  for row in cells]
        return "\n".join(lines)
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    numeric = [all(isinstance(r[k], numbers.Real) or r[k] is None for r in rows)
               for k in columns]
    def line(values):
        return "  ".join(v.rjust(w) if right else v.ljust(w)
                         for v, w, right in zip(values, widths, numeric)).rstrip()
    return "\n".join([line(columns)] + [line(row) for row in cells])
