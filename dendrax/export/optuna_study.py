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
"""

from __future__ import annotations

import hashlib
import numbers
from typing import Any, Mapping, Sequence

from dendrax.export.common import export_settings, finite, hyperparameters, require
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


def to_optuna(record: SearchRecord, storage: Any, study_name: str | None = None):
    """Write a search ``record``'s results, in search order, into a new Optuna study
    (direction "maximize") in ``storage`` (a URL such as ``"sqlite:///search.db"``, or an
    Optuna storage object) and return it. The record's space gives the distributions and
    its settings (:func:`~dendrax.export.common.export_settings`) become the study's user
    attributes. Without ``study_name`` the study is named after the results, so exporting
    the same search twice finds the existing study and is refused (ConfigError) instead of
    duplicating its trials."""
    optuna = require("optuna", "optuna", "to_optuna")
    results = list(record.results)
    if not results:
        raise ConfigError("to_optuna: there are no results to export")
    settings = export_settings(record)
    if study_name is None:
        digest = hashlib.sha256(canonical([r.config for r in results]).encode()).hexdigest()
        study_name = f"dendrax-{settings.get('dataset', 'search')}-{digest[:10]}"
    try:
        study = optuna.create_study(storage=storage, study_name=study_name,
                                    direction="maximize")
    except optuna.exceptions.DuplicatedStudyError:
        raise ConfigError(f"to_optuna: the storage already holds a study named "
                          f"{study_name!r}; pass another study_name") from None
    for key, value in settings.items():
        study.set_user_attr(key, jsonable(value))
    distributions = study_distributions(results, record.space)
    study.add_trials([trial_of(r, distributions) for r in results])
    return study
