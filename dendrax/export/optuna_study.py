"""A finished search as an Optuna study (``pip install 'dendrax[optuna]'``), so that
optuna-dashboard and Optuna's own analysis (importances, plots) can show a dendrax search.

Each configuration becomes one trial (``study.add_trials``):
  params/distributions: the searched hyperparameters, with the search space's distribution
      (a list → categorical, an integer range → int, uniform/loguniform → float), widened to
      every value trained (a refinement may step outside the space); without a space, the
      distribution is inferred from the values (bool/str → categorical, int → int range,
      float → float range);
  value: mean validation accuracy over its seeds (the searcher's ranking; test accuracy is
      never the objective); state FAIL when a seed diverged;
  intermediate_values: mean validation accuracy after each epoch;
  user_attrs: seeds, n_seeds, test_accuracy, total_params, the validation and test spread,
      epochs trained, stopped_by_halving, bucket and the full config.

The storage is checked before anything is written (:func:`check_storage`): an empty URL,
one SQLAlchemy cannot parse or has no dialect for, an in-memory SQLite database (the study
would vanish with the process), or an SQLite file that is a folder, not a database, the
log itself, or in a missing folder is an ExportError. Whatever the database then raises
becomes an ExportError too, and a study left half-written by a failure is deleted.
"""

from __future__ import annotations

import hashlib
import numbers
from typing import Any, Mapping, Sequence

from dendrax.export.common import (ExportError, check_sqlite_file, describe, export_settings,
                                   finite, hyperparameters, require, text_target, writing)
import dendrax.search.spaces as spaces
from dendrax.errors import ConfigError
from dendrax.search.log import canonical, jsonable
from dendrax.search.record import SearchRecord
from dendrax.search.results import SearchResult, epoch_stats
from dendrax.search.table import hyperparameter_names


def _space_distributions(space: Mapping[str, Any] | None) -> dict[str, Any]:
    """{name: dendrax Distribution} of a log spec's space (param_distributions, or a
    param_grid whose lists are choices); {} when it has neither."""
    if not space:
        return {}
    if "param_distributions" in space:
        parsed = {}
        for name, spec in space["param_distributions"].items():
            if isinstance(spec, dict) and spec.get("type") == "fixed":
                continue
            try:
                parsed[name] = spaces.parse_distribution(name, spec)
            except ConfigError:
                continue
        return parsed
    if "param_grid" in space:
        return {name: spaces.Choice(tuple(values))
                for name, values in space["param_grid"].items() if len(values) > 1}
    return {}


def _distribution(optuna, name: str, values: list, known) -> Any:
    """One Optuna distribution covering ``values`` (and the space's ``known`` one)."""
    dist = optuna.distributions
    numeric = [v for v in values if isinstance(v, numbers.Real) and not isinstance(v, bool)]
    categorical = isinstance(known, spaces.Choice) or len(numeric) < len(values)
    if categorical:
        choices = list(known.values) if isinstance(known, spaces.Choice) else []
        for v in values:
            if v not in choices:
                choices.append(v)
        return dist.CategoricalDistribution(choices)
    low, high = min(numeric), max(numeric)
    if isinstance(known, (spaces.IntRange, spaces.Uniform, spaces.LogUniform)):
        low, high = min(low, known.low), max(high, known.high)
    if isinstance(known, spaces.IntRange) or (known is None and all(
            isinstance(v, numbers.Integral) for v in numeric)):
        return dist.IntDistribution(int(low), int(high))
    return dist.FloatDistribution(float(low), float(high),
                                  log=isinstance(known, spaces.LogUniform))


def study_distributions(results: Sequence[SearchResult],
                        space: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """{name: Optuna distribution} for every searched hyperparameter (the seed excepted)."""
    optuna = require("optuna", "optuna", "to_optuna")
    known = _space_distributions(space)
    out = {}
    for name in hyperparameter_names(results):
        values = [hyperparameters(r, [name])[name] for r in results]
        out[name] = _distribution(optuna, name, values, known.get(name))
    return out


def trial_of(result: SearchResult, distributions: Mapping[str, Any]):
    """One FrozenTrial for one configuration (see the module doc)."""
    optuna = require("optuna", "optuna", "to_optuna")
    ok = not result.diverged and finite(result.val_accuracy)
    curve = epoch_stats(result, "val_accuracy")[0]
    attrs = {
        "seeds": result.seeds, "n_seeds": result.n_seeds,
        "test_accuracy": result.test_accuracy, "total_params": result.total_params,
        "val_std": result.val_stats.std if result.val_stats else None,
        "val_ci_low": result.val_stats.ci_low if result.val_stats else None,
        "val_ci_high": result.val_stats.ci_high if result.val_stats else None,
        "test_std": result.test_stats.std if result.test_stats else None,
        "epochs": result.epochs_trained, "stopped_by_halving": result.stopped_by_halving,
        "bucket": result.bucket, "config": result.config,
    }
    return optuna.trial.create_trial(
        state=optuna.trial.TrialState.COMPLETE if ok else optuna.trial.TrialState.FAIL,
        value=float(result.val_accuracy) if ok else None,
        params=hyperparameters(result, list(distributions)),
        distributions=dict(distributions),
        user_attrs=jsonable(attrs),
        intermediate_values={e: v for e, v in enumerate(curve, 1) if finite(v)})


EXAMPLE = "sqlite:///search.db"


def check_storage(storage: Any, what: str = "to_optuna storage", *,
                  avoid: Sequence[Any] = ()) -> Any:
    """Check an Optuna storage before writing anything (see the module doc) and return it
    (a URL as a str); ``what`` names it in messages ("--to-optuna" on the command line),
    ``avoid`` holds paths the database must not be (the search log). None (an in-memory
    study, returned to the caller) and Optuna storage objects pass. Raises ExportError."""
    if storage is None or not isinstance(storage, (str, bytes)) and hasattr(
            storage, "create_new_study"):
        return storage
    require("optuna", "optuna", "to_optuna")
    url_text = text_target(storage, what, EXAMPLE)
    from sqlalchemy.engine import make_url

    try:
        url = make_url(url_text)
    except Exception as error:  # ArgumentError, or ValueError for a bad port
        raise ExportError(f"{what} {url_text!r} is not a database URL ({describe(error)}); "
                          f"give one such as {EXAMPLE}, or postgresql://USER@HOST/DB") from None
    backend = url.get_backend_name()
    if backend == "redis":
        raise ExportError(f"{what} {url_text!r}: Optuna no longer takes redis:// URLs; use "
                          f"an SQL database such as {EXAMPLE}, or pass a JournalStorage with "
                          f"a JournalRedisBackend from Python")
    try:
        url.get_dialect()
    except Exception:  # NoSuchModuleError: no such SQLAlchemy dialect
        raise ExportError(f"{what} {url_text!r}: {backend!r} is not a database SQLAlchemy "
                          f"knows; give a URL such as {EXAMPLE}, postgresql://... or "
                          f"mysql://...") from None
    if backend != "sqlite":
        return url_text
    database = url.database
    if not database or database == ":memory:" or database.startswith("file::memory:") \
            or "mode=memory" in database:
        raise ExportError(f"{what} {url_text!r} names no database file, so SQLite would "
                          f"keep the study in memory, lost when the process ends; name a "
                          f"file, e.g. {EXAMPLE}"
                          + (" (None gives an in-memory study in Python)"
                             if not what.startswith("-") else ""))
    if "uri" not in url.query:  # not an SQLite URI filename, whose options are SQLite's
        check_sqlite_file(database, url_text, what, create_folders=False, avoid=avoid)
    return url_text


def to_optuna(record: SearchRecord, storage: Any, study_name: str | None = None):
    """Write a search ``record``'s results, in search order, into a new Optuna study
    (direction "maximize") in ``storage`` (a URL such as ``"sqlite:///search.db"``, or an
    Optuna storage object) and return it. The record's space gives the distributions and
    its settings (:func:`~dendrax.export.common.export_settings`) become the study's user
    attributes. Without ``study_name`` the study is named after the results, so exporting
    the same search twice finds the existing study and is refused (ConfigError) instead of
    duplicating its trials."""
    optuna = require("optuna", "optuna", "to_optuna")
    storage = check_storage(storage)
    results = list(record.results)
    if not results:
        raise ConfigError("to_optuna: there are no results to export")
    settings = export_settings(record)
    if study_name is None:
        digest = hashlib.sha256(canonical([r.config for r in results]).encode()).hexdigest()
        study_name = f"dendrax-{settings.get('dataset', 'search')}-{digest[:10]}"
    distributions = study_distributions(results, record.space)
    trials = [trial_of(r, distributions) for r in results]
    target = f"to_optuna storage {storage!r}" if isinstance(storage, str) else "to_optuna"
    with writing(target, "check the URL, that the database is reachable and writable, "
                 "and that its driver is installed"):
        try:
            study = optuna.create_study(storage=storage, study_name=study_name,
                                        direction="maximize")
        except optuna.exceptions.DuplicatedStudyError:
            raise ConfigError(f"to_optuna: the storage already holds a study named "
                              f"{study_name!r}; pass another study_name") from None
        try:
            for key, value in settings.items():
                study.set_user_attr(key, jsonable(value))
            study.add_trials(trials)
        except BaseException:  # no half-written study that would refuse the retry
            try:
                optuna.delete_study(study_name=study_name, storage=storage)
            except Exception:
                pass
            raise
    return study
