"""Ready-made search scenarios, under the original toolkit's names and with its settings.

==========================  =================================================================
scenario                    what it runs (the original's settings)
==========================  =================================================================
quickstart                  the README's first run (``dendrax quickstart``): the Quick Start
                            grid in 8,000 parameters, 8 epochs, 3 seeds, any Fashion-MNIST
quick_prototype_search      grid of 12 dendritic_simple configs, 8 epochs, batch 512
optimize_for_budget         random search whose ranges and architectures grow with the budget
compare_architectures       a grid per architecture (15 configs each) at one budget
thorough_optimization       broad random search (40, 20 epochs), then the top 3 refined: nearby
                            n_dendrite_inputs, several seeds
find_pareto_optimal         optimize_for_budget at 2k, 4k, 6k, 8k and max_budget parameters;
                            returns the accuracy-vs-parameters Pareto front (JSON-able dicts)
==========================  =================================================================

Every scenario takes the original's arguments, then optional keyword *options* passed to
:class:`~dendrax.search.HyperparameterSearcher`, which override the scenario's settings:
``n_epochs``, ``subset_size``, ``seeds_per_config``, ``batch_size``, ``seed``, ``data``
(an already loaded dataset), ``data_dir``, ``log_path``, ``resume``, ``verbose`` (the
searcher's progress output), ``trainer`` and the rest of its keyword arguments. Scenarios
that run several searchers load the data once and, given ``log_path``, write one log per
searcher next to it (``runs/cmp.jsonl`` → ``runs/cmp.soma_disabled.jsonl``, ...).

Unlike the original, the best configuration is chosen by validation accuracy, never by
test accuracy (the searcher ranks that way); test accuracy is reported alongside. And the
random-search scenarios fill their budget (``fill_budget=True``): they draw until
``n_trials`` configs fit, where the original's draws mostly fell outside it (40 draws of
the thorough space at 8,000 parameters left 1 inside 85-100%). The
scenario headings and result tables are always printed, as the original's were.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any, Mapping

from dendrax.search import BudgetError, HyperparameterSearcher, SearchResult
from dendrax.search.progress import format_duration
from dendrax.search.results import pareto_document, pareto_front, pareto_records, write_json

# Where results are saved: "auto" is the original's file name, None saves nothing.
AUTO = "auto"

ARCHITECTURE_NAMES = {
    "dendritic_simple": "Simple Dendritic (soma + output)",
    "soma_disabled": "Soma Disabled (dendrites → hidden → output)",
    "dendritic_with_hidden": "Dendritic with Hidden Layer",
}

PARETO_BUDGETS = (2000, 4000, 6000, 8000)
REFINE_SEEDS = (42, 123)
REFINE_INPUT_STEPS = (-16, -8, 0, 8, 16)
_RULE = "=" * 60

# The original README's Quick Start grid; quick_prototype_search narrows it (see there).
QUICKSTART_GRID = {
    "n_neurons": [8, 10, 12],
    "n_dendrites": [4, 6, 8],
    "n_dendrite_inputs": [64, 96, 128],
    "soma_enabled": [True, False],
    "architecture": ["dendritic_simple"],
    "synaptic_resampling": [True, False],
}
# dendrax quickstart: that grid in an 8,000-parameter budget.
QUICKSTART = {"max_params": 8000, "n_epochs": 8, "seeds_per_config": 3, "max_trials": 20}

SAMPLE_NOTE = """\
  This is the small EMBEDDED SAMPLE of Fashion-MNIST shipped with dendrax, not the full
  dataset; accuracies are lower than with the full 60,000 training images. For the full
  set, any one of:
    sudo apt-get install dataset-fashion-mnist
    pip install 'dendrax[tfds]'
    export DENDRAX_DATA_DIR=/folder/holding/the/fashion-mnist/idx/files"""


# ---- shared plumbing -----------------------------------------------------------------

def _searcher(dataset: str, max_params: int, settings: Mapping[str, Any],
              options: Mapping[str, Any]) -> HyperparameterSearcher:
    """A searcher with the scenario's ``settings``, overridden by the caller's ``options``."""
    return HyperparameterSearcher(dataset=dataset, max_params=max_params,
                                  **{**settings, **options})


def _with_shared_data(dataset: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with ``data`` loaded once, for scenarios that build several searchers."""
    options = dict(options)
    if options.get("data") is None:
        from dendrax.data import load_dataset

        options["data"] = load_dataset(
            dataset, data_dir=options.get("data_dir"), subset_size=options.get("subset_size"),
            validation_fraction=options.get("validation_fraction", 0.1),
            seed=options.get("seed", 0))  # each searcher prints its summary
    return options


def _part_path(path: str | None, part: str, default_ext: str) -> str | None:
    """``runs/cmp.jsonl`` → ``runs/cmp.<part>.jsonl``: one file per searcher of a scenario."""
    if path is None:
        return None
    stem, ext = os.path.splitext(os.fspath(path))
    return f"{stem}.{part}{ext or default_ext}"


def _part_log(options: Mapping[str, Any], part: str) -> dict[str, Any]:
    """``options`` with ``log_path`` turned into this part's own log (one log per searcher)."""
    return {**options, "log_path": _part_path(options.get("log_path"), part, ".jsonl")}


def _save(searcher: HyperparameterSearcher, results_path: str | None, default: str) -> None:
    if results_path is not None:
        searcher.save_results(default if results_path == AUTO else results_path)


def _best(searcher: HyperparameterSearcher) -> SearchResult | None:
    best = searcher.get_best_results(1)
    return best[0] if best else None


def describe_data(data: Any) -> str:
    """Which data a run used, and, for the embedded sample, how to get the full set."""
    text = f"Data: {data.summary()}" if hasattr(data, "summary") else f"Data: {data}"
    return text + ("\n" + SAMPLE_NOTE if getattr(data, "is_sample", False) else "")


def _describe(result: SearchResult) -> str:
    return (f"val {result.val_accuracy:.4f}, test {result.test_accuracy:.4f}, "
            f"{result.total_params:,} params")


# ---- scenarios -------------------------------------------------------------------------

def quickstart(*, verbose: bool = True, data: Any = None, trainer: Any = None,
               **overrides: Any) -> HyperparameterSearcher:
    """The README's first run: the original's Quick Start grid in an 8,000-parameter
    budget (its 8 fitting configs), 8 epochs, 3 seeds each, on whichever Fashion-MNIST is
    at hand. About two minutes on a 2-core CPU with the full dataset.

    Data: $DENDRAX_DATA_DIR, Debian's dataset-fashion-mnist, tensorflow-datasets, an
    earlier download, or the embedded sample, the first that exists (nothing is
    downloaded). ``overrides`` replace QUICKSTART's settings (and may add searcher
    arguments). Returns the searcher; its results are printed.
    """
    settings = {**QUICKSTART, **overrides}
    max_trials = settings.pop("max_trials")
    if data is None:
        from dendrax.data import load_dataset

        with warnings.catch_warnings():  # the sample is announced below, in plain words
            warnings.simplefilter("ignore")
            data = load_dataset("fashion-mnist", download=False,
                                subset_size=settings.pop("subset_size", None))
    if not verbose or getattr(data, "is_sample", False):  # verbose: the searcher says it too
        print(describe_data(data))
    start = time.perf_counter()
    searcher = HyperparameterSearcher(dataset="fashion-mnist", data=data, trainer=trainer,
                                      verbose=verbose, **settings)
    if not verbose:
        print(f"Training the Quick Start grid's configurations within {searcher.max_params:,} "
              f"parameters ({searcher.n_epochs} epochs, {searcher.seeds_per_config} seeds "
              f"each)...")
    searcher.grid_search(QUICKSTART_GRID, max_trials=max_trials)
    searcher.print_results(5)
    print(f"\nDone in {format_duration(time.perf_counter() - start)}. "
          + describe_data(data).replace("Data: ", "Data used: ", 1))
    print("Next: `dendrax search SPEC.json` for your own search space, "
          "`dendrax scenario budget` for the original's budget optimisation.")
    return searcher




def quick_prototype_search(max_params: int = 5000, dataset: str = "mnist", *,
                           results_path: str | None = None,
                           **options: Any) -> SearchResult | None:
    """Quick look for prototyping: 12 configs from a focused dendritic_simple grid,
    8 epochs, batch 512, budget floor 80%. Returns the best result (or None)."""
    print("⚡ QUICK PROTOTYPE SEARCH")
    print(f"Budget: {max_params} parameters, Dataset: {dataset}")
    print(_RULE)
    searcher = _searcher(dataset, max_params,
                         {"min_param_ratio": 0.8, "n_epochs": 8, "batch_size": 512}, options)
    # The Quick Start grid with resampling always on, at the original's rate and seed.
    param_grid = {**QUICKSTART_GRID, "synaptic_resampling": [True],
                  "percentage_resample": [0.25], "seed": [42]}
    start = time.perf_counter()
    try:
        searcher.grid_search(param_grid, max_trials=12)
    except BudgetError as error:
        print(f"❌ {error}")
        return None
    searcher.print_results(3)
    print(f"\n⚡ Quick search completed in {time.perf_counter() - start:.1f}s")
    _save(searcher, results_path, f"quick_{max_params}_{dataset}_results.json")
    return _best(searcher)


def budget_space(max_params: int) -> dict[str, Any]:
    """The random-search space :func:`optimize_for_budget` uses for ``max_params``.

    The original's three tiers: up to 2,000 parameters only small dendritic_simple
    models; up to 5,000 also soma_disabled; above that all three architectures, with
    wider shape ranges and a hidden_dim. Tuples are integer ranges, both ends inclusive.
    """
    seed = {"type": "randint", "low": 1, "high": 10000}
    if max_params <= 2000:
        return {"n_neurons": (5, 10), "n_dendrites": (2, 6), "n_dendrite_inputs": (16, 64),
                "soma_enabled": [True, False], "architecture": ["dendritic_simple"],
                "synaptic_resampling": [True, False],
                "percentage_resample": {"type": "uniform", "low": 0.1, "high": 0.4},
                "seed": seed}
    if max_params <= 5000:
        return {"n_neurons": (8, 15), "n_dendrites": (4, 10), "n_dendrite_inputs": (32, 128),
                "soma_enabled": [True, False],
                "architecture": ["dendritic_simple", "soma_disabled"],
                "synaptic_resampling": [True, False],
                "percentage_resample": {"type": "uniform", "low": 0.15, "high": 0.35},
                "seed": seed}
    return {"n_neurons": (10, 20), "n_dendrites": (6, 15), "n_dendrite_inputs": (64, 256),
            "soma_enabled": [True, False],
            "architecture": ["dendritic_simple", "dendritic_with_hidden", "soma_disabled"],
            "synaptic_resampling": [True, False],
            "percentage_resample": {"type": "uniform", "low": 0.1, "high": 0.5},
            "hidden_dim": {"type": "randint", "low": 5, "high": 15},
            "seed": seed}


def _budget_search(max_params: int, dataset: str, n_trials: int, results_path: str | None,
                   options: Mapping[str, Any],
                   fill_budget: bool = True) -> HyperparameterSearcher | None:
    """optimize_for_budget's search; None when nothing drawn fits the budget."""
    print(f"🎯 OPTIMIZING FOR BUDGET: {max_params} parameters")
    print(f"Dataset: {dataset}")
    print(_RULE)
    searcher = _searcher(dataset, max_params, {"min_param_ratio": 0.8, "n_epochs": 10}, options)
    start = time.perf_counter()
    try:
        searcher.random_search(budget_space(max_params), n_trials=n_trials,
                               fill_budget=fill_budget)
    except BudgetError as error:
        print(f"❌ {error}")
        return None
    searcher.print_results(5)
    print(f"\n⏱️  Total search time: {time.perf_counter() - start:.1f}s")
    _save(searcher, results_path, f"budget_{max_params}_{dataset}_results.json")
    return searcher


def optimize_for_budget(max_params: int = 8000, dataset: str = "fashion-mnist",
                        n_trials: int = 50, *, results_path: str | None = AUTO,
                        fill_budget: bool = True, **options: Any) -> SearchResult | None:
    """Best model within ``max_params``: ``n_trials`` random draws from
    :func:`budget_space` (ranges set by the budget), 10 epochs, budget floor 80%.

    ``fill_budget=True`` (unlike the original) draws until ``n_trials`` configs fit the
    budget; False keeps the original's ``n_trials`` draws, most of which may not fit.
    Saves ``budget_<max_params>_<dataset>_results.json`` like the original (or
    ``results_path``; None saves nothing). Returns the best result, or None when no draw
    fits the budget.
    """
    searcher = _budget_search(max_params, dataset, n_trials, results_path, options,
                              fill_budget)
    return _best(searcher) if searcher is not None else None


def compare_architectures(max_params: int = 8000, dataset: str = "fashion-mnist", *,
                          results_path: str | None = None,
                          **options: Any) -> list[dict[str, Any]]:
    """Each architecture's best at the same budget (floor 75%, 12 epochs, 15 configs
    drawn from an architecture-specific grid, three seeds each).

    Returns one dict per architecture that had a config in the budget, best first by
    validation accuracy: ``architecture`` (description), ``name``, ``val_accuracy``,
    ``test_accuracy``, ``params`` (parameter count), ``config`` and ``result``.
    ``results_path`` (optional) saves each architecture's results to
    ``<stem>.<architecture><ext>``.
    """
    print("🏗️  ARCHITECTURE COMPARISON")
    print(f"Budget: {max_params} parameters, Dataset: {dataset}")
    print(_RULE)
    grids = {
        "dendritic_simple": {
            "n_neurons": [8, 10, 12, 15], "n_dendrites": [4, 6, 8],
            "n_dendrite_inputs": [64, 96, 128], "soma_enabled": [True],
            "synaptic_resampling": [True, False]},
        # No soma: the dendrites are the layer's outputs, so many more of them.
        "soma_disabled": {
            "n_neurons": [8, 10, 12], "n_dendrites": [15, 20, 25, 30],
            "n_dendrite_inputs": [32, 64, 96], "soma_enabled": [False],
            "synaptic_resampling": [True, False]},
        "dendritic_with_hidden": {
            "n_neurons": [8, 10, 12], "n_dendrites": [4, 6, 8],
            "n_dendrite_inputs": [48, 64, 96], "hidden_dim": [6, 8, 10],
            "soma_enabled": [True], "synaptic_resampling": [True]},
    }
    options = _with_shared_data(dataset, options)
    summary = []
    for name, grid in grids.items():
        print(f"\n🔬 Testing: {ARCHITECTURE_NAMES[name]}")
        print("-" * 40)
        searcher = _searcher(dataset, max_params, {"min_param_ratio": 0.75, "n_epochs": 12},
                             _part_log(options, name))
        try:
            searcher.grid_search({**grid, "architecture": [name], "seed": [42, 123, 456]},
                                 max_trials=15)
        except BudgetError as error:
            print(f"❌ No valid configurations found within budget: {error}")
            continue
        best = _best(searcher)
        if results_path is not None:
            searcher.save_results(_part_path(results_path, name, ".json"))
        if best is None:
            print("❌ every configuration diverged")
            continue
        summary.append({"architecture": ARCHITECTURE_NAMES[name], "name": name,
                        "val_accuracy": best.val_accuracy, "test_accuracy": best.test_accuracy,
                        "params": best.total_params, "config": best.params, "result": best})
        print(f"✅ Best: {_describe(best)}")

    summary.sort(key=lambda entry: entry["val_accuracy"], reverse=True)
    print("\n📊 ARCHITECTURE COMPARISON SUMMARY (ranked by validation accuracy)")
    print(_RULE)
    for rank, entry in enumerate(summary, 1):
        print(f"{rank}. {entry['architecture']}")
        print(f"   Validation accuracy: {entry['val_accuracy']:.4f}   "
              f"Test accuracy: {entry['test_accuracy']:.4f}")
        print(f"   Parameters: {entry['params']}/{max_params}")
        print(f"   Config: {entry['config']}")
        print()
    return summary


def thorough_space() -> dict[str, Any]:
    """The broad phase-1 space of :func:`thorough_optimization`: every architecture."""
    return {
        "n_neurons": (5, 20), "n_dendrites": (3, 15), "n_dendrite_inputs": (32, 256),
        "soma_enabled": [True, False],
        "architecture": ["dendritic_simple", "soma_disabled", "dendritic_with_hidden"],
        "synaptic_resampling": [True, False],
        "percentage_resample": {"type": "uniform", "low": 0.1, "high": 0.5},
        "steps_to_resample": {"type": "choice", "values": [64, 128, 256]},
        "hidden_dim": {"type": "randint", "low": 5, "high": 15},
        "seed": {"type": "randint", "low": 1, "high": 10000},
    }


def refinements(params: Mapping[str, Any], seeds=REFINE_SEEDS,
                steps=REFINE_INPUT_STEPS) -> list[dict[str, Any]]:
    """Variations around one config: n_dendrite_inputs moved by each of ``steps`` (kept
    above 16), each under every seed of ``seeds``."""
    base = {k: v for k, v in params.items() if k != "seed"}
    inputs = base.get("n_dendrite_inputs")
    if inputs is None:
        return [{**base, "seed": s} for s in seeds]
    return [{**base, "n_dendrite_inputs": inputs + step, "seed": s}
            for s in seeds for step in steps if inputs + step > 16]


def thorough_optimization(max_params: int = 8000, dataset: str = "fashion-mnist", *,
                          n_trials: int = 40, n_refine: int = 3,
                          results_path: str | None = AUTO, fill_budget: bool = True,
                          **options: Any) -> SearchResult | None:
    """Two phases, 20 epochs, budget floor 85%.

    1. ``n_trials`` random configs from :func:`thorough_space` (every architecture) that
       fit the budget (``fill_budget=False``: ``n_trials`` draws, as the original).
    2. The ``n_refine`` best are refined: n_dendrite_inputs moved by −16, −8, 0, +8, +16,
       each under seeds 42 and 123 (as the original's first ten variations), all trained
       as one population. Variations outside the budget are skipped.

    Both phases are ranked together (by validation accuracy), the seeds of a config that
    both phases trained merged into one result; saves
    ``thorough_optimization_results.json`` (or ``results_path``). Returns the best.
    """
    print("🔬 THOROUGH OPTIMIZATION")
    print(f"Budget: {max_params} parameters, Dataset: {dataset}")
    print(_RULE)
    searcher = _searcher(dataset, max_params, {"min_param_ratio": 0.85, "n_epochs": 20}, options)
    print("Phase 1: Broad Random Search")
    try:
        searcher.random_search(thorough_space(), n_trials=n_trials, fill_budget=fill_budget)
    except BudgetError as error:
        print(f"❌ {error}")
        return None
    top = searcher.get_best_results(n_refine)
    print(f"\nPhase 2: Refinement around the top {len(top)} configurations "
          f"({len(REFINE_SEEDS)} seeds each, nearby n_dendrite_inputs)")
    variations = []
    for rank, result in enumerate(top, 1):
        print(f"  {rank}. {_describe(result)}: {result.params}")
        variations += refinements(result.params)
    if variations:
        searcher.results.extend(searcher.evaluate(variations))
        searcher.merge_seeds()  # a top config rerun under the refinement seeds: one row
    searcher.print_results(5)
    _save(searcher, results_path, "thorough_optimization_results.json")
    return _best(searcher)


def find_pareto_optimal(dataset: str = "fashion-mnist", max_budget: int = 10000, *,
                        n_trials: int = 20, budgets=PARETO_BUDGETS,
                        results_path: str | None = AUTO, fill_budget: bool = True,
                        **options: Any) -> list[dict[str, Any]]:
    """Accuracy against parameter count: :func:`optimize_for_budget` (``n_trials`` draws)
    at each of ``budgets`` below ``max_budget``, and at ``max_budget``.

    Returns the Pareto front over every config trained at every budget (see
    :func:`dendrax.search.results.pareto_front`: fewer parameters, higher mean validation
    accuracy), fewest parameters first, as JSON-able dicts
    (:func:`dendrax.search.results.pareto_record`: ``total_params``, ``val_accuracy``,
    ``test_accuracy``, their spread over seeds, ``val_accuracy_per_1k_params``,
    ``test_accuracy_per_1k_params``, ``params``, ...) plus ``budget``, the budget whose
    search found it. Each budget's best is printed, as the original did.

    Saving: each budget's results as optimize_for_budget saves them, and the front as
    ``pareto_front_<dataset>.json`` (``results_path`` given: ``<stem>.budget<N><ext>`` and
    ``<stem>.pareto<ext>``; None: nothing is saved).
    """
    print("📈 PARETO OPTIMIZATION")
    print(f"Dataset: {dataset}, Max budget: {max_budget}")
    print(_RULE)
    options = _with_shared_data(dataset, options)
    all_budgets = sorted({*(b for b in budgets if b < max_budget), max_budget})
    per_budget, everything, found_at = [], [], {}
    for budget in all_budgets:
        print(f"\n💰 Budget: {budget} parameters")
        path = results_path if results_path in (None, AUTO) else \
            _part_path(results_path, f"budget{budget}", ".json")
        searcher = _budget_search(budget, dataset, n_trials, path,
                                  _part_log(options, f"budget{budget}"), fill_budget)
        best = _best(searcher) if searcher is not None else None
        if best is None:
            continue
        everything += searcher.results
        found_at.update((id(r), budget) for r in searcher.results)
        per_budget.append((budget, best))

    front = pareto_front(everything)
    records = [{**record, "budget": found_at[id(result)]}
               for result, record in zip(front, pareto_records(front))]
    if results_path is not None:
        path = f"pareto_front_{dataset}.json" if results_path == AUTO else \
            _part_path(results_path, "pareto", ".json")
        write_json(path, pareto_document(records, len(everything), {
            "dataset": dataset, "budgets": all_budgets, "n_trials": n_trials}))

    print("\n📊 BEST PER BUDGET")
    print(_RULE)
    for budget, best in per_budget:
        per_k = best.val_accuracy / (best.total_params / 1000)
        print(f"Budget: {budget:6d} | Params: {best.total_params:6d} | "
              f"Val: {best.val_accuracy:.4f} | Test: {best.test_accuracy:.4f} | "
              f"Val acc per 1k params: {per_k:.3f}")
    print(f"\n📊 PARETO FRONT: validation accuracy vs parameters "
          f"({len(front)} of {len(everything)} configurations)")
    print(_RULE)
    for result in front:
        print(f"Params: {result.total_params:6d} | {_describe(result)} | {result.params}")
    return records


def main(**options: Any) -> None:
    """Run the original's example sequence: quick prototype (5,000 parameters, MNIST),
    budget optimisation (8,000, Fashion-MNIST, 25 trials), architecture comparison.
    ``options`` go to every scenario (see the module docstring)."""
    print("🚀 HYPERPARAMETER SEARCH EXAMPLES")
    print("=" * 80)

    print("\n1️⃣  QUICK PROTOTYPE (for rapid iteration)")
    quick = quick_prototype_search(max_params=5000, dataset="mnist", **options)
    if quick is not None:
        print(f"✅ Quick prototype found: {_describe(quick)}")

    print("\n\n2️⃣  BUDGET OPTIMIZATION")
    budget = optimize_for_budget(max_params=8000, dataset="fashion-mnist", n_trials=25,
                                 **options)
    if budget is not None:
        print(f"✅ Best model: {_describe(budget)}")

    print("\n\n3️⃣  ARCHITECTURE COMPARISON")
    architectures = compare_architectures(max_params=8000, dataset="fashion-mnist", **options)
    if architectures:
        best = architectures[0]
        print(f"✅ Best architecture: {best['architecture']} with validation accuracy "
              f"{best['val_accuracy']:.4f} (test {best['test_accuracy']:.4f})")

    print("\n🎉 All examples completed! The JSON files hold the detailed results.")


if __name__ == "__main__":
    main()
