"""Optuna as the sampler of a search: ask K trials, train them as one population, tell.

Optuna (optional: ``pip install 'dendrax[optuna]'``) decides what to try next; dendrax
checks each proposal against the budget and trains every round's proposals together, so a
round of K costs one trainer call instead of K. Roles stay as in Optuna's own design: the
study keeps what was tried (its storage makes a search resumable), the sampler proposes,
and the searcher validates, trains, logs and aggregates exactly as for a random search.

Each proposal is told back as:
  COMPLETE with the mean validation accuracy over its seeds;
  PRUNED when it is outside the parameter budget (user attribute "dendrax_rejected" holds
      the reason; TPE ranks pruned trials after every completed one, steering away);
  FAIL when it is not a valid config ("dendrax_invalid"), or diverged on any seed
      ("dendrax_diverged").
This module imports optuna lazily and never imports JAX.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping

from dendrax.errors import ConfigError
from dendrax.search import spaces
from dendrax.search.budget import Rejection
from dendrax.search.interrupts import signals_as_interrupts
from dendrax.search.log import canonical


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ImportError("optuna_search needs optuna: pip install 'dendrax[optuna]'") from None
    return optuna


def optuna_distribution(name: str, dist: spaces.Distribution):
    """The Optuna distribution of one parsed dendrax distribution (None for Fixed):
    Choice -> Categorical, IntRange -> Int (both ends inclusive, as in dendrax),
    Uniform -> Float, LogUniform -> Float(log=True)."""
    distributions = _optuna().distributions
    if isinstance(dist, spaces.Fixed):
        return None
    if isinstance(dist, spaces.Choice):
        for value in dist.values:
            if value is not None and not isinstance(value, (bool, int, float, str)):
                raise ConfigError(f"distribution for {name!r}: Optuna's categorical choices "
                                  f"must be None, bool, int, float or str; got {value!r}")
        return distributions.CategoricalDistribution(list(dist.values))
    if isinstance(dist, spaces.IntRange):
        return distributions.IntDistribution(dist.low, dist.high)
    if isinstance(dist, spaces.Uniform):
        return distributions.FloatDistribution(dist.low, dist.high)
    if isinstance(dist, spaces.LogUniform):
        return distributions.FloatDistribution(dist.low, dist.high, log=True)
    raise ConfigError(f"distribution for {name!r}: {dist!r} has no Optuna counterpart")


def make_study(space_spec: Mapping[str, Any], seed: int, *, study=None, sampler=None,
               storage=None, study_name: str | None = None):
    """The study to search with: ``study`` as given, else one created with ``sampler``
    ("tpe" or None: ``TPESampler(constant_liar=True, seed=seed)``, which spreads the K
    pending trials of a round apart) in ``storage``, loaded if it exists. A study in a
    storage without a ``study_name`` is named after the space and seed, so rerunning the
    same call continues it."""
    optuna = _optuna()
    if study is not None:
        if sampler is not None or storage is not None or study_name is not None:
            raise ConfigError("pass either study= or sampler/storage/study_name, not both: "
                              "a study brings its own sampler and storage")
        if list(study.directions) != [optuna.study.StudyDirection.MAXIMIZE]:
            raise ConfigError("the study must have one objective with direction='maximize' "
                              "(dendrax tells validation accuracy)")
        return study
    if sampler is None or sampler == "tpe":
        sampler = optuna.samplers.TPESampler(constant_liar=True, seed=seed)
    elif not isinstance(sampler, optuna.samplers.BaseSampler):
        raise ConfigError(f"sampler={sampler!r}; pass None, 'tpe' or an optuna sampler")
    if storage is not None and study_name is None:
        digest = hashlib.sha256(canonical([space_spec, seed]).encode()).hexdigest()[:12]
        study_name = f"dendrax-{digest}"
    return optuna.create_study(storage=storage, sampler=sampler, study_name=study_name,
                               direction="maximize", load_if_exists=storage is not None)


def optuna_search(searcher, param_distributions: Mapping[str, Any], n_rounds: int,
                  trials_per_round: int = 8, *, study=None, sampler=None, storage=None,
                  study_name: str | None = None):
    """See :meth:`dendrax.search.HyperparameterSearcher.optuna_search`."""
    _optuna()  # fails first, naming the extra, when optuna is not installed
    for name, value in (("n_rounds", n_rounds), ("trials_per_round", trials_per_round)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name}={value!r} must be an integer >= 1")
    space = spaces.parse_space(param_distributions)
    fixed = {k: d.value for k, d in space.items() if isinstance(d, spaces.Fixed)}
    asked = {k: optuna_distribution(k, d) for k, d in space.items()
             if not isinstance(d, spaces.Fixed)}
    # Like a random search's, the spec leaves out how many trials run, so a resumed search
    # (same log, same study storage) may run more rounds or larger ones.
    spec = {"param_distributions": spaces.space_spec(space)}
    study = make_study(spec, searcher.seed, study=study, sampler=sampler, storage=storage,
                       study_name=study_name)
    if searcher.verbose:
        print(f"\nOptuna search: {n_rounds} rounds of {trials_per_round} trials "
              f"(study {study.study_name!r}, {type(study.sampler).__name__}, "
              f"{len(study.trials)} trials already in it)")

    # SIGTERM and SIGHUP stop the search like Ctrl-C (unless the caller handles them), so
    # the round's trials are told FAIL on the way out instead of staying RUNNING.
    with signals_as_interrupts():
        for round_index in range(n_rounds):
            _round(searcher, study, asked, fixed, space, spec, round_index, n_rounds,
                   trials_per_round)
    return study


def _round(searcher, study, asked, fixed, space, spec, round_index, n_rounds,
           trials_per_round) -> None:
    """One round: ask, check, train the proposals that fit as one call, tell. Whatever
    stops it (a crash, Ctrl-C, SIGTERM) tells every trial it asked FAIL first, so no trial
    is left RUNNING in the study."""
    TrialState = _optuna().trial.TrialState
    trials: list = []
    try:
        _ask_train_tell(searcher, study, asked, fixed, space, spec, round_index, n_rounds,
                        trials_per_round, trials, TrialState)
    except BaseException:
        for trial in trials:
            try:
                study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            except Exception:  # noqa: BLE001 - the first error is the one to report
                pass
        raise


def _ask_train_tell(searcher, study, asked, fixed, space, spec, round_index, n_rounds,
                    trials_per_round, trials, TrialState) -> None:
    """Ask the round's trials (into ``trials`` as they are asked), train the ones that fit
    the budget as one search call, and tell each one's outcome."""
    for _ in range(trials_per_round):
        trials.append(study.ask(asked))
    pending = []  # (trial, params) of the proposals that fit the budget
    for trial in trials:
        params = {**trial.params, **fixed}
        params = {k: params[k] for k in space}  # the space's order, for readable output
        try:
            _, total = searcher.create_model(params)
        except ConfigError as error:
            trial.set_user_attr("dendrax_invalid", str(error))
            study.tell(trial, state=TrialState.FAIL)
            continue
        trial.set_user_attr("total_params", total)
        reason = searcher.budget.reason(total)
        if reason is not None:
            searcher.rejected.append(Rejection(
                {k: v for k, v in params.items() if k != "seed"}, total, reason))
            trial.set_user_attr("dendrax_rejected", reason)
            study.tell(trial, state=TrialState.PRUNED)
            continue
        pending.append((trial, params))
    if searcher.verbose:
        print(f"Round {round_index + 1}/{n_rounds}: {len(pending)} of {trials_per_round} "
              f"proposals fit the budget")
    results = []
    if pending:
        results = searcher.run_trials([p for _, p in pending], strategy="optuna",
                                      space=spec)
    searcher.results.extend(results)
    by_config = {canonical(r.config): r for r in results}
    for trial, params in pending:
        config = searcher.create_model(params)[0].to_dict()
        config.pop("seed", None)
        result = by_config[canonical(config)]
        if result.diverged:
            trial.set_user_attr("dendrax_diverged", result.diverged_seeds)
            study.tell(trial, state=TrialState.FAIL)
        elif result.val_accuracy != result.val_accuracy:  # NaN: no validation split
            trial.set_user_attr("dendrax_invalid", "no validation accuracy")
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, result.val_accuracy)
