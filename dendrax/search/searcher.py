"""HyperparameterSearcher: the original toolkit's API over a population trainer.

The searcher holds what a search needs (the data, the settings, the budget, the log, the
finished models) and draws each call's configurations: a grid, a random space, Optuna's
proposals or an explicit list. :class:`dendrax.search.pipeline.SearchCall` then runs the
call: validate, budget-check, train what the log does not hold in one trainer call, log
each bucket, aggregate seeds. Its outputs (the table, the files, the figures, the
exporters) all read one :class:`dendrax.search.record.SearchRecord`, the same value a log
reads back as. This module never imports JAX: the trainer is a function passed in (or
imported lazily).
"""

from __future__ import annotations

import functools
import random
import warnings
from typing import Any, Mapping, Sequence

from dendrax.checks import MAX_SEED, check_int, shown
from dendrax.config import ModelConfig, count_params
from dendrax.errors import ConfigError
from dendrax.search import spaces
from dendrax.search.arguments import (MAX_DRAWS_PER_TRIAL, MAX_FULL_GRID, MAX_RANDOM_TRIALS,
                                      check_arguments)
from dendrax.search.budget import Budget, BudgetError, Rejection
from dendrax.search.callbacks import as_callbacks
from dendrax.search.log import SearchLog, canonical, check_writable, config_key, jsonable, \
    trial_key
from dendrax.search.pipeline import SearchCall
from dendrax.search.record import SearchRecord
from dendrax.search.results import SearchResult, aggregate, rank_results
from dendrax.search.table import format_results
from dendrax.spec import Trainer, TrainSettings, TrialOutcome


def _fixed(owner: str, name: str, doc: str, field: str | None = None) -> property:
    """A read-only attribute ``name`` over ``self.<owner>.<field>`` (field: the same name
    unless given). Setting it raises: the value is already in the trainer's settings, the
    budget, the data split and the log's spec, and a later assignment would reach some of
    them but not the others."""

    def get(self: Any) -> Any:
        return getattr(getattr(self, owner), field or name)

    def refuse(self: Any, value: Any) -> None:
        raise AttributeError(
            f"HyperparameterSearcher.{name} cannot be changed after the searcher is built "
            f"(training, the budget and the log would disagree about it); pass "
            f"{name}={value!r} to HyperparameterSearcher(...) instead")

    return property(get, refuse, doc=doc)


class HyperparameterSearcher:
    """Budget-constrained search over dendritic model configurations.

    The first ten arguments are the original toolkit's, with its defaults. The rest:
      seeds_per_config: models trained per configuration; results report mean ± std and a
          95% t-interval over them.
      seed: master seed; grid sub-sampling, random search, data split and per-trial seeds
          all derive from it.
      data_dir, validation_fraction: passed to ``dendrax.data.load_dataset``; the
          validation split is what ranks configurations.
      split_seed: the seed of that split (which examples are held out for validation);
          None, the default, uses the master seed. Only for data the searcher loads.
      log_path, resume: an append-only JSONL log of every finished model; ``resume=True``
          continues a log written with the same settings, training only what is missing.
      data_order, lowering, chunk_size, padding: passed to the trainer (see TrainSettings);
          padding is "auto", "exact", "padded" or "pow2" (dendrax.plan).
      matmul_dtype: "float32" (true float32 products on every backend, the default),
          "tf32" or "bfloat16" (faster on GPUs); recorded in the log and the results.
      halving_eta, halving_min_epochs: successive halving (dendrax.population.halving): after
          ``halving_min_epochs`` epochs, then η× as many, only the best 1/η of the models
          by validation accuracy train on; stopped models keep their shorter history.
      devices: local devices that share each population (None: all of them).
      n_classes: None (the default) takes it from the data; a number must match the data.
      rank_by: "val_mean" (mean validation accuracy) or "val_lcb" (lower bound of its
          95% confidence interval; favours configs that are good on every seed).
      data: an already loaded Dataset (skips loading).
      trainer: ``train_configs``-compatible function; None imports dendrax.population lazily.
      executor, ray_address: "local" trains in this process; "ray" trains each bucket as a
          task on the Ray cluster at ``ray_address`` (None: a local Ray instance, or
          $RAY_ADDRESS), see dendrax.search.executors.RayExecutor and docs/cluster.md.
      callbacks: objects with ``on_epoch(bucket, epoch, members)`` and/or
          ``on_result(result)`` (a function is an on_result), see dendrax.search.callbacks.
    """

    def __init__(
        self,
        dataset: str = "fashion-mnist",
        subset_size: int | None = None,
        max_params: int = 8000,
        min_param_ratio: float = 0.8,
        n_epochs: int = 15,
        lr: float = 0.0005,
        weight_decay: float = 0.01,
        batch_size: int = 256,
        n_classes: int | None = None,
        verbose: bool = True,
        *,
        seeds_per_config: int = 1,
        seed: int = 0,
        split_seed: int | None = None,
        data_dir: str | None = None,
        validation_fraction: float = 0.1,
        log_path: str | None = None,
        resume: bool = False,
        data_order: str = "own",
        lowering: str = "auto",
        chunk_size: int | None = None,
        matmul_dtype: str = "float32",
        padding: str = "auto",
        halving_eta: int | None = None,
        halving_min_epochs: int = 1,
        devices: int | None = None,
        rank_by: str = "val_mean",
        data: Any = None,
        trainer: Trainer | None = None,
        executor: str = "local",
        ray_address: str | None = None,
        callbacks: Sequence[Any] | None = None,
    ):
        # Every argument is checked before anything slow (data, log, training) happens.
        checked = check_arguments(locals())  # the arguments by name
        self.budget: Budget = checked["budget"]
        self.settings: TrainSettings = checked["settings"]
        self._trainer = checked["trainer"]
        self.dataset = dataset
        self.subset_size = checked["subset_size"]
        self.lr = lr
        self.weight_decay = weight_decay
        self.n_classes = checked["n_classes"]
        self.verbose = verbose
        self.seeds_per_config = checked["seeds_per_config"]
        self.split_seed = check_int("split_seed", split_seed, 0, MAX_SEED, allow_none=True)
        if split_seed is not None and data is not None:
            raise ConfigError("split_seed sets how the searcher splits the data it loads; "
                              "data= was given already split (leave split_seed out)")
        self.data_dir = data_dir
        self.validation_fraction = checked["validation_fraction"]
        self.log_path = log_path
        self.resume = resume
        self.rank_by = rank_by
        self.callbacks = as_callbacks(callbacks)

        self.results: list[SearchResult] = []
        self.lineage: Any = None  # the best member's lineage after population_based_training
        self.rejected: list[Rejection] = []
        self._n_searches = 0
        self._calls: list[dict[str, Any]] = []  # each call's strategy, space and parameters
        self._completed: dict[str, TrialOutcome] = {}
        self._log: SearchLog | None = None
        if log_path is not None:
            check_writable(log_path)  # fail before the (slow) data load

        if data is None:
            data = self._load_data()
        elif verbose and hasattr(data, "summary"):
            print(data.summary())
        self.data = data
        if _length(getattr(data, "y_val", None)) == 0:
            raise ConfigError(
                "data: the dataset has no validation examples, and a search ranks its configs on "
                "validation accuracy; build it with a validation_fraction that holds some "
                "out (from_arrays(..., validation_fraction=0.1), say)")
        self.in_dim = int(self.data.in_dim)
        self.n_classes = self._check_classes(self.n_classes)
        n_train = len(self.data.x_train)
        if self.batch_size > n_train:
            # Checked here, before the log is opened: the trainer could only fail later.
            raise ConfigError(
                f"batch_size={shown(self.batch_size)} is larger than the {n_train:,} "
                f"training examples left after the validation split (validation_fraction="
                f"{self.validation_fraction}, subset_size={shown(self.subset_size)}); choose "
                f"batch_size <= {n_train}")
        if verbose:
            print(f"Parameter budget: {self.budget.describe()}")
        if log_path is not None:
            self._log = SearchLog(log_path, resume=resume, verbose=verbose)
            self._completed.update(self._log.completed)

    # The original's attributes, read-only: each is stored once, in settings or budget.
    n_epochs = _fixed("settings", "n_epochs", "Epochs each model trains.")
    batch_size = _fixed("settings", "batch_size", "Examples per training step.")
    max_params = _fixed("budget", "max_params", "The most parameters a config may have.")
    min_param_ratio = _fixed("budget", "min_param_ratio",
                             "The share of max_params a config must use at least.")
    min_params = _fixed("budget", "min_params", "floor(min_param_ratio × max_params).")
    seed = _fixed("settings", "seed", "The master seed: draws, data split, trial seeds, shared "
                  "batch order.", field="data_seed")

    @property
    def n_train(self) -> int | None:
        """Training examples after the validation split (None for data without labels)."""
        labels = getattr(self.data, "y_train", None)
        return None if labels is None else int(len(labels))

    def _check_classes(self, n_classes: int | None) -> int:
        """``n_classes`` as given, else the data's (10 for a dataset that does not say); a
        number the data contradicts is refused: every parameter count would be wrong."""
        data_classes = getattr(self.data, "n_classes", None)
        if n_classes is None:
            return int(data_classes or 10)
        if data_classes is not None and data_classes != n_classes:
            raise ConfigError(f"n_classes={shown(n_classes)} but the dataset has {data_classes} "
                              f"classes; parameter counts would be wrong (leave n_classes "
                              f"out to take it from the data)")
        return n_classes

    def close(self) -> None:
        """Stop writing the search log and release it for another process (see
        :class:`~dendrax.search.log.SearchLog`); results stay readable, a later search call
        on this searcher raises LogError. Also at the end of a ``with`` block, and when the
        searcher is garbage-collected or the process exits."""
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> "HyperparameterSearcher":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # ---- data and trainer ------------------------------------------------------------
    def _load_data(self) -> Any:
        from dendrax.data import load_dataset  # lazy: tests and callers may pass data=

        # With verbose=True, load_dataset prints where the data came from and its summary.
        return load_dataset(self.dataset, data_dir=self.data_dir, subset_size=self.subset_size,
                            validation_fraction=self.validation_fraction,
                            seed=self.seed if self.split_seed is None else self.split_seed,
                            verbose=self.verbose)

    @property
    def trainer(self) -> Trainer:
        if self._trainer is None:
            from dendrax.population import train_configs  # lazy: imports JAX

            self._trainer = train_configs
        return self._trainer

    # ---- the original's per-config helpers --------------------------------------------
    @staticmethod
    def estimate_params(in_dim: int, n_neurons: int | None = None,
                        n_dendrites: int | None = None, n_dendrite_inputs: int | None = None,
                        soma_enabled: bool = True, n_classes: int = 10,
                        architecture: str = "dendritic_simple", hidden_dim: int | None = None,
                        strategy: str = "random") -> int:
        """Exact parameter count of a config, without a searcher (for planning budgets).

        Same signature as the original plus ``strategy``; ``in_dim`` matters only for
        "fully-connected", whose branches connect every input feature, and for "mlp".
        The three sizes are required except for "mlp", which needs ``hidden_dim`` instead
        (0: a linear classifier) and ignores them. Raises ConfigError for an invalid
        config (the original returned 0 for an unknown architecture).
        """
        sizes = {"n_neurons": n_neurons, "n_dendrites": n_dendrites,
                 "n_dendrite_inputs": n_dendrite_inputs}
        missing = [name for name, value in sizes.items() if value is None]
        if missing and architecture != "mlp":
            raise ConfigError(f"architecture={architecture!r} needs {', '.join(missing)} "
                              f"(only 'mlp' does without them)")
        given = {name: value for name, value in sizes.items() if value is not None}
        config = ModelConfig(architecture=architecture, soma_enabled=soma_enabled,
                             hidden_dim=hidden_dim, strategy=strategy, **given)
        config.validate(in_dim)
        return count_params(config, in_dim=in_dim, n_classes=n_classes)

    def _config(self, params: Mapping[str, Any]) -> ModelConfig:
        """Validated config for one parameter dict; the searcher's lr, weight_decay and seed
        fill in what the dict leaves out."""
        if not isinstance(params, Mapping):
            raise ConfigError(f"a configuration must be a dict of parameters, got "
                              f"{shown(params)}")
        merged = {"lr": self.lr, "weight_decay": self.weight_decay, "seed": self.seed,
                  **params}
        try:
            return ModelConfig.from_dict(merged, in_dim=self.in_dim)
        except ConfigError as e:
            raise ConfigError(f"{e} (in configuration {shown(dict(params), 300)})") from e

    def _check_values(self, candidates: Mapping[str, Sequence[Any]]) -> None:
        """Validate every value of a grid or space once, without enumerating the product.

        A base combination (each parameter's first candidate) is validated, then each
        other candidate in place of its parameter's. Validation rules concern one field
        at a time (given the input size), so a value valid here is valid in any
        combination; each drawn config is validated again before training anyway.
        """
        base = {name: values[0] for name, values in candidates.items()}
        self._config(base)
        for name, values in candidates.items():
            for value in values[1:]:
                self._config({**base, name: value})

    def _fits(self, params: Mapping[str, Any], checked: bool = False) -> bool:
        """Whether ``params`` fit the budget. ``checked``: the combination's values were
        validated by :meth:`_check_values`, so only count (validating again costs 6× as
        much, and a huge grid may need 10^5 of these)."""
        config = ModelConfig(**params) if checked else self._config(params)
        return self.budget.reason(count_params(config, self.in_dim, self.n_classes)) is None

    def create_model(self, params: Mapping[str, Any]) -> tuple[ModelConfig, int]:
        """(model config, exact parameter count), mirroring the original's (model, count).

        The model itself is built by the trainer, which is where JAX lives; the config is a
        complete, validated description of it.
        """
        config = self._config(params)
        return config, count_params(config, in_dim=self.in_dim, n_classes=self.n_classes)

    def is_valid_config(self, params: Mapping[str, Any]) -> bool:
        """True if the config is valid and min_params ≤ its count ≤ max_params."""
        try:
            _, total = self.create_model(params)
        except ConfigError as e:
            if self.verbose:
                print(f"Invalid config {dict(params)}: {e}")
            return False
        reason = self.budget.reason(total)
        if reason is not None and self.verbose:
            print(f"Config outside the budget: {reason}")
        return reason is None

    # ---- searches ----------------------------------------------------------------------
    def _rng(self, search_index: int) -> random.Random:
        # A string seed goes through SHA-512 in random.Random, so this is stable across
        # processes and Python versions (unlike hash()).
        return random.Random(f"dendrax-search:{self.seed}:{search_index}")

    def grid_search(self, param_grid: Mapping[str, Any],
                    max_trials: int | None = None) -> list[SearchResult]:
        """Train every combination of ``param_grid`` that fits the budget, or with
        ``max_trials`` at most that many of them, drawn without replacement by the master
        seed from the combinations that fit. Returns all results so far, like the original.

        The original drew ``max_trials`` from all combinations and then dropped those
        outside the budget, which often left few or none (its README's own example).
        """
        max_trials = check_int("max_trials", max_trials, 1, allow_none=True)
        grid = spaces.parse_grid(param_grid)
        self._check_values(grid)  # every value once: the grid itself may be huge
        size = spaces.grid_size(grid)
        if max_trials is None and size > MAX_FULL_GRID:
            raise ConfigError(f"param_grid has {size:,} combinations; without max_trials every "
                              f"one is trained. Pass max_trials (at most {MAX_FULL_GRID:,} "
                              f"combinations are trained whole)")
        rng = self._rng(self._n_searches)
        if max_trials is None or max_trials >= size:
            draw = spaces.GridDraw(spaces.expand_grid(grid), size, size)
        else:
            draw = spaces.sample_grid(grid, max_trials, rng, accept=functools.partial(self._fits, checked=True))
            if not draw.combinations:  # nothing fits: draw again to name the closest
                draw = spaces.sample_grid(grid, max_trials, self._rng(self._n_searches))
                if not draw.exhausted:
                    raise BudgetError(
                        f"none of the {spaces.MAX_GRID_CHECKS:,} combinations checked (drawn "
                        f"at random from the {size:,} of param_grid) fits the budget of "
                        f"{self.budget.describe()}; widen the grid towards the budget, "
                        f"raise max_params or lower min_param_ratio")
        sampled = draw.combinations
        if self.verbose:
            print(f"\nGrid search: {size:,} combinations"
                  + (f", {len(sampled)} drawn from those that fit the budget (max_trials, "
                     f"seed {self.seed}; {draw.checked:,} checked)"
                     if len(sampled) < size else ""))
        self.results.extend(self._search("grid", {"param_grid": grid}, sampled))
        return self.results

    def random_search(self, param_distributions: Mapping[str, Any],
                      n_trials: int = 50, fill_budget: bool = False) -> list[SearchResult]:
        """Train the draws from ``param_distributions`` (see
        :func:`dendrax.search.spaces.parse_distribution` for the formats) that fit the
        budget. Identical draws train once. Returns all results so far, like the original.

        ``fill_budget=False`` (the original's behaviour): ``n_trials`` draws, and those
        outside the budget are dropped; a warning says so when more than half are.
        ``fill_budget=True``: draws go on until ``n_trials`` distinct configs fit (the first
        ``n_trials`` draws are the same either way), at most ``MAX_DRAWS_PER_TRIAL`` times
        ``n_trials`` draws; a warning says so when that is not enough."""
        n_trials = check_int("n_trials", n_trials, 1, MAX_RANDOM_TRIALS)
        space = spaces.parse_space(param_distributions)
        self._check_values({name: spaces.candidate_values(dist) for name, dist in space.items()})
        rng = self._rng(self._n_searches)
        if fill_budget:
            sampled = self._draw_until_full(space, n_trials, rng)
        else:
            # A finite space smaller than n_trials is drawn until every point came up
            # (the same draws, in the same order, as n_trials of them would give).
            sampled = spaces.sample_space(space, n_trials, rng, stop_when_exhausted=True)
            outside = sum(not self._fits(p) for p in sampled)
            if outside > len(sampled) / 2:
                self._warn(f"{outside} of {len(sampled)} random draws fall outside the budget "
                           f"of {self.budget.describe()}, so only {len(sampled) - outside} can "
                           f"train; pass fill_budget=True to draw until {n_trials} configs fit")
        if self.verbose:
            print(f"\nRandom search: {n_trials} trials (seed {self.seed}"
                  + (f", {len(sampled)} drawn to fill the budget" if fill_budget else "")
                  + ")")
        spec = {"param_distributions": spaces.space_spec(space)}
        self.results.extend(self._search("random", spec, sampled))
        return self.results

    def population_based_training(self, param_distributions: Mapping[str, Any],
                                  population_size: int, n_epochs: int | None = None,
                                  ready_every: int = 1, burn_in: int = 0,
                                  quantile: float = 0.25,
                                  perturb: Sequence[float] = (0.8, 1.25),
                                  resample_probability: float = 0.25,
                                  mutate: Sequence[str] = ("lr", "weight_decay",
                                                           "percentage_resample",
                                                           "steps_to_resample",
                                                           "synaptic_resampling"),
                                  *, checkpoint: str | None = None,
                                  on_generation: Any = None) -> list[SearchResult]:
        """Population-based training (Jaderberg et al. 2017) inside one compiled population
        (see dendrax.search.pbt for the rule, dendrax.population.pbt for the mechanism).

        ``population_size`` members are drawn from ``param_distributions`` under the budget
        as random_search draws them, each with its own seed, and train ``n_epochs``
        (None: the searcher's) as one padded population. After every ``ready_every``-th
        epoch from ``burn_in`` on, the bottom ``quantile`` by validation accuracy (diverged
        members always) copy the whole state of a random top-``quantile`` member, then
        perturb each hyperparameter of ``mutate`` that the space varies (× a factor of
        ``perturb``, or a fresh draw with ``resample_probability``; within its bounds).
        ``mutate=()`` is selection only, the control. Every exploit is logged (the
        lineage: ``dendrax show LOG --lineage``); with a log the population is
        checkpointed at each generation (``checkpoint``, default LOG.pbtN.ckpt) and a
        searcher with ``resume=True`` continues a killed run from its last generation.
        ``on_generation(generation, epoch)`` is called after each generation.

        A member's result is labelled by its initial draw and holds its slot's history;
        ``self.lineage`` is the best member's :class:`~dendrax.search.pbt.Lineage` (its
        ancestry and hyperparameter schedule; ``replay`` retrains it). Returns all
        results so far, like the other searches."""
        from dendrax.search import pbt

        _, self.lineage = pbt.population_based_training(
            self, param_distributions, population_size, n_epochs, ready_every, burn_in,
            quantile, perturb, resample_probability, mutate, checkpoint=checkpoint,
            on_generation=on_generation)
        return self.results

    def replay(self, schedule: Any, seeds: Sequence[int]) -> list[SearchResult]:
        """Retrain a PBT schedule (a :class:`~dendrax.search.pbt.Lineage`, its JSON as
        ``save_schedule`` writes it, or that file's path) from scratch on each of
        ``seeds``, as one population whose hyperparameters change at the schedule's
        epochs (no exploit): how a PBT result is confirmed. Returns the replay's results
        (one per seed; also added to ``results``)."""
        from dendrax.search import pbt

        return pbt.replay(self, schedule, seeds)

    def _draw_until_full(self, space: Mapping[str, spaces.Distribution], n_trials: int,
                         rng: random.Random) -> list[dict[str, Any]]:
        """Draws, in sample_space's order, until ``n_trials`` distinct configs fit the budget;
        returns every draw (those outside the budget are reported and skipped as usual)."""
        drawn: list[dict[str, Any]] = []
        fitting: set[str] = set()
        limit = MAX_DRAWS_PER_TRIAL * n_trials
        # A finite space stops once every point has been drawn: more draws cannot add one.
        size, seen = spaces.space_size(space), set()
        while len(fitting) < n_trials and len(drawn) < limit and \
                (size is None or len(seen) < size):
            params = spaces.sample_space(space, 1, rng)[0]
            drawn.append(params)
            if size is not None:
                seen.add(spaces.params_key(params))
            if self._fits(params):
                fitting.add(config_key(self._config(params)))
        if len(fitting) < n_trials:
            finite = (f"; the space holds only {size:,} distinct configs"
                      if size is not None and len(seen) >= size else "")
            self._warn(f"fill_budget: only {len(fitting)} of {n_trials} configs fit the "
                       f"budget of {self.budget.describe()} in {len(drawn)} draws{finite}; "
                       f"widen the space or the budget")
        return drawn

    def _warn(self, message: str) -> None:
        """A RuntimeWarning, also printed when verbose (warnings may be filtered away)."""
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        if self.verbose:
            print(f"Warning: {message}")

    def optuna_search(self, param_distributions: Mapping[str, Any], n_rounds: int,
                      trials_per_round: int = 8, *, study: Any = None, sampler: Any = None,
                      storage: Any = None, study_name: str | None = None) -> Any:
        """Let Optuna choose the configs: ``n_rounds`` rounds, each asking
        ``trials_per_round`` proposals and training those within the budget as ONE
        population (logged like any search), then telling Optuna their mean validation
        accuracy. Needs optuna (``pip install 'dendrax[optuna]'``).

        ``param_distributions`` takes random_search's formats (list → categorical, integer
        (low, high) → int, {"type": "uniform"|"loguniform"|"randint"|"choice"}, a constant).
        ``study``: an Optuna study to continue (direction "maximize"); otherwise one is
        made with ``sampler`` (None or "tpe": TPESampler(constant_liar=True) seeded by the
        master seed; or any Optuna sampler) in ``storage`` (e.g. "sqlite:///s.db", which
        makes it resumable; None: in memory). Proposals outside the budget are told as
        PRUNED, invalid or diverged ones as FAIL, with the reason in a user attribute.
        Results are added to ``results``. Returns the study.
        """
        from dendrax.search.optuna_bridge import optuna_search  # lazy: optuna is optional

        return optuna_search(self, param_distributions, n_rounds, trials_per_round,
                             study=study, sampler=sampler, storage=storage,
                             study_name=study_name)

    def run_trials(self, param_list: Sequence[Mapping[str, Any]], *, strategy: str = "explicit",
                   space: Mapping[str, Any] | None = None,
                   require_fit: bool = False) -> list[SearchResult]:
        """Train the given configs as one search call (validated, budget-checked, logged
        under ``strategy`` and ``space``) and return their results without adding them to
        ``results``. The building block of every search method and of the Optuna bridge.
        With ``require_fit`` a call where nothing fits raises BudgetError."""
        param_list = [dict(p) for p in param_list]
        return self._search(strategy, space if space is not None else {"configs": param_list},
                            param_list, require_fit=require_fit)

    def evaluate(self, param_list: Sequence[Mapping[str, Any]]) -> list[SearchResult]:
        """Train explicit configs as one population; returns their results (not added to
        ``results``). Configs outside the budget are skipped and recorded in ``rejected``."""
        if not list(param_list):
            raise ConfigError("evaluate needs at least one configuration")
        return self.run_trials(param_list)

    def train_and_evaluate(self, params: Mapping[str, Any]) -> SearchResult | None:
        """Train one config (the original's name); None if it is outside the budget."""
        results = self.evaluate([params])
        return results[0] if results else None

    def robustness(self, configs: Any, n_seeds: int | None = None, design: str = "replicate",
                   levels: Mapping[str, int] | None = None, seed: int | None = None, *,
                   confidence: float = 0.95, n_boot: int | None = None) -> Any:
        """Train a robustness study of ``configs`` and return its
        :class:`~dendrax.robustness.RobustnessReport` (raw val/test scores per run and
        epoch, and the statistics).

        ``design`` (see :func:`dendrax.robustness.make_design`): "replicate" (``n_seeds``
        runs per config, every stream of randomness varied together), "paired"
        (``n_seeds`` seed tuples shared by every config) or "factorial" (every
        combination of ``levels`` seeds per stream, e.g. {"init": 4, "order": 4,
        "rewire": 4} = 64 runs per config; the default). ``seed``: the study's master
        seed (None: the searcher's). ``configs``: a list of param dicts or ModelConfigs,
        or a mapping name → params; the searcher's lr and weight decay fill in.

        Every run is one model: the whole study is ONE search call (validated before
        anything trains, padded buckets where shapes differ, logged, resumable: with a
        log, a rerun trains only the runs the log lacks). ``seeds_per_config`` does not
        apply (each run's seeds are the design's). Every config must fit the budget, and
        successive halving is refused (every run trains all epochs), and so is an "order"
        factor under data_order="shared" (one batch order for all). The runs are not added
        to ``results``.
        """
        from dendrax import robustness as rb  # pure Python, no JAX
        from dendrax import stats

        master = self.seed if seed is None else check_int("seed", seed, 0, MAX_SEED)
        if self.settings.halving_eta:
            raise ConfigError("a robustness study trains every run for all epochs; "
                              "build the searcher without halving_eta")
        if design == "factorial" and self.settings.data_order == "shared" and \
                "order" in (levels if levels is not None else rb.STREAMS):
            raise ConfigError("data_order='shared' gives every model the same batch order "
                              "(from the master seed), so order seeds would vary nothing; "
                              "use data_order='own', or leave 'order' out of levels")
        try:
            study = rb.make_design(design, configs, n_seeds, levels, master)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"robustness: {e}") from None
        runs = [self._config(run.params) for run in study.runs]  # each validated first
        for name, params in zip(study.names, study.configs):
            config = self._config(params)
            reason = self.budget.reason(count_params(config, self.in_dim, self.n_classes))
            if reason is not None:
                raise ConfigError(f"robustness: config {name!r} is outside the budget "
                                  f"({reason}); widen max_params/min_param_ratio")
        space = {"design": study.kind, "seed": master, "n_seeds": n_seeds,
                 "levels": dict(levels) if levels is not None else None,
                 "configs": [dict(c) for c in study.configs]}
        replicates = self.seeds_per_config
        self.seeds_per_config = 1  # each run is one model
        try:
            self._search("robustness", space, [run.params for run in study.runs])
        finally:
            self.seeds_per_config = replicates
        histories = [self._completed[trial_key(c)].history for c in runs]
        return rb.RobustnessReport.from_histories(
            study, histories, n_test=_length(getattr(self.data, "y_test", None)),
            confidence=confidence, n_boot=stats.N_BOOT if n_boot is None else n_boot,
            seed=master)

    # ---- the search call ----------------------------------------------------------------
    def search_settings(self) -> dict[str, Any]:
        """What every search's results depend on, as the log records it (see :meth:`spec`):
        dataset, data sizes, epochs, batch size, data order, matmul precision, halving, lr,
        weight decay, budget and seed."""
        data = self.data
        identity = getattr(data, "identity", None)
        if identity is not None:
            # A dendrax Dataset says what it holds: its name, split, subset and a hash of
            # its arrays' content, so a resume on other data is refused (whatever the
            # searcher's own dataset and subset_size say when data= was given).
            described = {"dataset": data.name, "subset_size": data.subset_size,
                         "validation_fraction": data.validation_fraction,
                         "data": {**identity, "in_dim": self.in_dim,
                                  "n_classes": self.n_classes}}
        else:  # duck-typed arrays: their sizes only
            described = {"dataset": self.dataset, "subset_size": self.subset_size,
                         "validation_fraction": self.validation_fraction,
                         "data": {"in_dim": self.in_dim, "n_classes": self.n_classes,
                                  "n_train": self.n_train,
                                  "n_val": _length(getattr(data, "y_val", None)),
                                  "n_test": _length(getattr(data, "y_test", None)),
                                  "is_sample": getattr(data, "is_sample", None)}}
        return jsonable({
            **described,
            "n_epochs": self.n_epochs,
            "batch_size": self.batch_size,
            "data_order": self.settings.data_order,
            "matmul_dtype": self.settings.matmul_dtype,
            "halving": ([self.settings.halving_eta, self.settings.halving_min_epochs]
                        if self.settings.halving_eta else None),
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "budget": {"max_params": self.max_params, "min_param_ratio": self.min_param_ratio},
            "seed": self.seed,
            # Only when set, so that the logs of searches without it keep their spec.
            **({"split_seed": self.split_seed} if self.split_seed is not None else {}),
        })

    def spec(self, strategy: str, space: Mapping[str, Any]) -> dict[str, Any]:
        """What a search call's results depend on, its hash guarding resume: the
        :meth:`search_settings`, the call's strategy and its space. Excludes verbose,
        log_path, and knobs that only change speed (lowering, chunk_size, padding: a
        padded bucket computes each member's own model exactly, so results differ from
        unpadded ones by float rounding at most). Also excludes n_trials/max_trials and
        seeds_per_config, so a resumed search may be extended: trials are keyed by full
        config and seed, so nothing trained is ever mismatched."""
        return {**self.search_settings(), "strategy": strategy, "space": jsonable(space)}

    def options(self) -> dict[str, Any]:
        """How the searcher trains without changing what it computes: seeds per config,
        lowering, chunk size and padding (the log's headers record them beside the spec)."""
        return {"seeds_per_config": self.seeds_per_config, "lowering": self.settings.lowering,
                "chunk_size": self.settings.chunk_size, "padding": self.settings.padding}

    def _search(self, strategy: str, space: Mapping[str, Any],
                sampled: Sequence[Mapping[str, Any]],
                require_fit: bool = True) -> list[SearchResult]:
        call = SearchCall(self, self._n_searches, strategy, space, sampled)
        self._calls.append({"strategy": strategy, "space": jsonable(space),
                            "parameters": call.parameters})
        return call.run(require_fit)

    def record(self) -> SearchRecord:
        """The search so far as a :class:`~dendrax.search.record.SearchRecord`: the value
        every output reads, and what :func:`~dendrax.search.record.read_search` reads back
        from the log."""
        return SearchRecord(results=tuple(self.results), settings=self.search_settings(),
                            calls=tuple(self._calls), rank_by=self.rank_by,
                            options=self.options(), rejected=tuple(self.rejected))

    # ---- results ------------------------------------------------------------------------
    def merge_seeds(self) -> list[SearchResult]:
        """Fold the results of one config from several search calls (a refinement that
        reran a config under new seeds, say) into one result over all its seeds; keeps the
        first one's place and params. Replaces and returns ``results``."""
        groups: dict[str, list[SearchResult]] = {}
        for r in self.results:
            groups.setdefault(canonical(r.config), []).append(r)
        merged = []
        for group in groups.values():
            if len(group) == 1:
                merged.append(group[0])
                continue
            outcomes: dict[str, TrialOutcome] = {}
            for r in group:
                for seed in r.seeds:
                    key = trial_key(ModelConfig.from_dict({**r.config, "seed": seed}))
                    outcomes.setdefault(key, self._completed[key])
            merged.append(aggregate(group[0].params, list(outcomes.values()),
                                    bucket=group[0].bucket))
        self.results = merged
        return merged

    def get_best_results(self, n: int = 5) -> list[SearchResult]:
        """The ``n`` best results by validation accuracy (``rank_by``); diverged configs are
        never ranked and test accuracy is never consulted."""
        return rank_results(self.results, self.rank_by)[:n]

    def print_results(self, n: int = 5) -> None:
        """Print the top ``n`` as a table, then any diverged configs."""
        print(format_results(self.record(), n))
        if self.rejected:
            print(f"\n{len(self.rejected)} configurations were outside the budget of "
                  f"{self.budget.describe()}; save_report lists them.")

    def save_results(self, filename: str) -> None:
        """Write every result as the original toolkit does: a JSON list of records, one per
        configuration (ranked first, then diverged), each with the original's six fields
        (params, test_accuracy, train_accuracy, total_params, train_time, final_test_loss)
        and dendrax's beside them (rank, validation accuracy and loss, seeds, statistics
        over seeds, history, bucket, matmul_dtype). ``pd.read_json(filename)`` gives one row
        per configuration; :func:`dendrax.search.load_results` reads it back. Settings,
        budget and rejected configs go to :meth:`save_report`."""
        self.record().save_results(filename)
        if self.verbose:
            print(f"Results saved to {filename}")

    def save_report(self, filename: str) -> None:
        """Write the whole search as one JSON document: settings (matmul_dtype included),
        budget, ranking rule, every result as :meth:`save_results` writes it, and every
        rejected config with its count and reason."""
        self.record().save_report(filename)
        if self.verbose:
            print(f"Report saved to {filename}")

    def save_pareto(self, filename: str) -> list[dict[str, Any]]:
        """Write the Pareto front of ``results`` (fewest parameters, highest mean validation
        accuracy; see :func:`dendrax.search.results.pareto_front`) as JSON, each member with
        its accuracies, spread over seeds and accuracy per 1,000 parameters. Returns the
        front's records (the file's "front")."""
        front = self.record().save_pareto(filename)
        if self.verbose:
            print(f"Pareto front ({len(front)} of {len(self.results)} configurations) saved "
                  f"to {filename}")
        return front

    def to_dataframe(self, per_seed: bool = False):
        """The results as a pandas DataFrame, one flat row per config (or per config and
        seed with ``per_seed=True``), ranked first; columns in
        :mod:`dendrax.search.table`. Needs pandas (``pip install 'dendrax[pandas]'``)."""
        from dendrax.search.table import to_dataframe

        return to_dataframe(self.results, per_seed=per_seed, rank_by=self.rank_by)

    def export_settings(self) -> dict[str, Any]:
        """The settings exporters record (dataset, epochs, subset, budget, seeds...)."""
        from dendrax.export import export_settings

        return export_settings(self.record())

    def to_optuna(self, storage: Any, study_name: str | None = None) -> Any:
        """Write the results into a new Optuna study in ``storage`` (e.g.
        ``"sqlite:///search.db"``), one trial per config with its distributions, params,
        mean validation accuracy, per-epoch intermediate values and user attributes
        (seeds, test accuracy, parameter count); see dendrax.export.optuna_study. Returns
        the study. Needs optuna (``pip install 'dendrax[optuna]'``)."""
        from dendrax.export import to_optuna

        return to_optuna(self.record(), storage, study_name)

    def to_tensorboard(self, logdir: str) -> list[str]:
        """One TensorBoard run per config in ``logdir``: per-epoch scalars and the HParams
        plugin's summary (dendrax.export.tensorboard). Needs tensorboardX
        (``pip install 'dendrax[tensorboard]'``). Returns the run folders."""
        from dendrax.export import to_tensorboard

        return to_tensorboard(self.record(), logdir)

    def to_mlflow(self, tracking_uri: str | None = None, experiment: str = "dendrax") -> str:
        """An MLflow parent run for the search with a nested run per config
        (dendrax.export.mlflow_runs). Needs mlflow (``pip install 'dendrax[mlflow]'``).
        Returns the parent run's id."""
        from dendrax.export import to_mlflow

        return to_mlflow(self.record(), tracking_uri, experiment=experiment)

    def plot(self, out_dir: str, top: int = 5, metric: str = "val",
             fmt: str = "png") -> dict[str, str]:
        """Write the search's figures in ``out_dir`` as PNG, PDF or SVG (``fmt``; needs
        matplotlib, see :func:`dendrax.plots.plot_search`): accuracy against parameters
        with the Pareto front, training curves, rewiring swaps and seed robustness of the
        ``top`` best, accuracy by hyperparameter value and successive halving, each with a
        caption line (dataset, epochs, subset, seeds). Returns {figure name: path}."""
        from dendrax.plots import plot_search  # lazy: matplotlib is optional

        paths = plot_search(self.record(), out_dir, top=top, metric=metric, fmt=fmt)
        if self.verbose:
            print(f"Figures written to {out_dir}: {', '.join(sorted(paths))}")
        return paths


def _length(values: Any) -> int | None:
    return None if values is None else int(len(values))
