"""One search, read one way: a :class:`SearchRecord`, from a live searcher or from its log.

Like an Optuna study, which reads the same from a live run or from storage, a search reads
the same whether it comes from ``searcher.record()`` or from ``read_search(log_path)``:
the text table (:func:`dendrax.search.table.format_results`), ``print_results``, the
figures (:func:`dendrax.plots.plot_search`), every exporter (:mod:`dendrax.export`), the
results files (:meth:`SearchRecord.save_results`, ``save_report``, ``save_pareto``),
``dendrax show`` and ``dendrax plot`` all take a record.

Labels: a result's ``params`` are its config's values of the parameters its search call
searched (:func:`call_parameters`), on both paths, so ``print_results`` and ``dendrax show``
print the same configuration column.

What a log holds for a record, besides each model's outcome (:mod:`dendrax.search.log`):
  header "spec"        the settings the results depend on, the call's strategy and space;
  header "parameters"  the parameters the call searched (its results' labels);
  header "options"     how the search ran without changing what it computed:
                       seeds_per_config, rank_by, lowering, chunk_size, padding;
  trial "position"     the model's place in its call: configs in search order, each
                       config's seeds in replicate order.
A log written before those three fields (or with a field edited into something else)
labels its results by its space (every config field but the seed when the space names
none), keeps the log's order and has no options.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Iterable, Mapping

from dendrax.config import STREAM_SEED_FIELDS, ModelConfig
from dendrax.errors import ConfigError
from dendrax.search.budget import Budget, Rejection
from dendrax.search.log import LogError, config_key, read_log
from dendrax.search.results import (RANK_BY, SearchResult, aggregate, check_output,
                                    pareto_document, pareto_records, rank_results,
                                    result_records, write_json)

# The keys of a search call's space that name its parameters (grid and random searches,
# and the Optuna bridge); a list of configs (run_trials, evaluate) is under "configs".
_SPACE_KEYS = ("param_grid", "param_distributions")
_FIELDS = tuple(f.name for f in dataclasses.fields(ModelConfig))


def call_parameters(space: Any, sampled: Iterable[Mapping[str, Any]] = ()) -> list[str]:
    """The parameters a search call searched: the keys of its space's ``param_grid`` or
    ``param_distributions``; else (a list of configs, or a space of the caller's own) every
    key its ``sampled`` params name, in first-seen order. Never the seed: a config's seeds
    are its replicates, not one of its parameters."""
    named = next((space[key] for key in _SPACE_KEYS
                  if isinstance(space, Mapping) and isinstance(space.get(key), Mapping)), None)
    names = list(named) if named is not None else list(
        dict.fromkeys(name for params in sampled for name in params))
    return [name for name in names if name != "seed"]


def labelled_params(config: ModelConfig, names: Iterable[str]) -> dict[str, Any]:
    """A result's ``params``: its config's value of each searched parameter in ``names``."""
    fields = config.to_dict()  # leaves out the stream seeds that are None
    return {name: fields[name] if name in fields else getattr(config, name) for name in names}


@dataclasses.dataclass(frozen=True)
class SearchRecord:
    """A search as its readers see it.

    results: one SearchResult per configuration in search order (a live searcher's
        ``results`` as they are; a log holds each config once, its seeds from every call
        merged, as :meth:`HyperparameterSearcher.merge_seeds` merges them).
    settings: what the results depend on (dataset, data sizes, epochs, batch size, lr,
        weight decay, budget, seed...): the search spec without the call's strategy and
        space.
    calls: each search call's {"strategy", "space", "parameters"}.
    rank_by: how results are ranked ("val_mean" or "val_lcb").
    options: how the search ran without changing what it computed: seeds_per_config,
        lowering, chunk_size, padding ({} for a log written before they were recorded).
    rejected: configs left out by the budget (a log does not record them: empty).
    source, torn_line: the log read, and its cut-short last line if any.
    """

    results: tuple[SearchResult, ...]
    settings: Mapping[str, Any]
    calls: tuple[Mapping[str, Any], ...] = ()
    rank_by: str = "val_mean"
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    rejected: tuple[Rejection, ...] = ()
    source: str | None = None
    torn_line: str | None = None

    @classmethod
    def from_log(cls, path: str, rank_by: str | None = None) -> "SearchRecord":
        """:func:`read_search`."""
        return read_search(path, rank_by)

    @property
    def ranked(self) -> list[SearchResult]:
        """The non-diverged results, best first (see :func:`rank_results`)."""
        return rank_results(self.results, self.rank_by)

    @property
    def ordered(self) -> list[SearchResult]:
        """Every result: the ranked ones in rank order, then the diverged ones."""
        return self.ranked + [r for r in self.results if r.diverged]

    @property
    def budget(self) -> Budget | None:
        """The parameter budget of the settings; None when they hold no valid one."""
        budget = self.settings.get("budget")
        try:
            return Budget(budget["max_params"], budget["min_param_ratio"])
        except (TypeError, KeyError, ConfigError):
            return None

    @property
    def max_params(self) -> int:
        """The budget's max_params; without a budget, the largest model's count."""
        budget = self.budget
        if budget is not None:
            return budget.max_params
        return max((int(r.total_params) for r in self.results), default=0)

    @property
    def seeds_per_config(self) -> int | None:
        return _positive_int(self.options.get("seeds_per_config"))

    @property
    def in_dim(self) -> int | None:
        return _positive_int(_get(self.settings, "data", "in_dim"))

    @property
    def steps_per_epoch(self) -> int | None:
        """Training examples // batch size: the steps of one epoch (None when unknown)."""
        n_train = _positive_int(_get(self.settings, "data", "n_train"))
        batch_size = _positive_int(self.settings.get("batch_size"))
        return n_train // batch_size if n_train and batch_size else None

    @property
    def n_models(self) -> int:
        return sum(r.n_seeds for r in self.results)

    @property
    def space(self) -> Mapping[str, Any] | None:
        """The first call's space that names distributions or a grid (exporters turn it
        into distributions), or None."""
        return next((c["space"] for c in self.calls if isinstance(c.get("space"), Mapping)
                     and any(k in c["space"] for k in _SPACE_KEYS)), None)

    def check_output(self, filename: Any, what: str = "filename") -> str:
        """``filename`` as a str, checked to take an output file before anything is
        computed or written: not a directory, in a folder that exists and can be written,
        and neither the log this record was read from nor a log this process is writing
        (:func:`dendrax.search.results.check_output`); else an OutputError."""
        return check_output(filename, what, {"the search log": self.source})

    def save_results(self, filename: str) -> None:
        """Every result as the original toolkit's ``save_results`` writes them: a JSON list
        of records, one per configuration, ranked first, then diverged (see
        :func:`dendrax.search.results.result_record`), each with the matmul precision.
        Written whole or not at all (:func:`dendrax.search.results.write_atomic`); a path
        that cannot take it (see :meth:`check_output`) is an OutputError."""
        filename = self.check_output(filename)
        write_json(filename, result_records(self.results, self.rank_by,
                                            matmul_dtype=self.settings.get("matmul_dtype")))

    def save_report(self, filename: str) -> None:
        """The whole search as one JSON document: settings and options, budget, ranking
        rule, every result as :meth:`save_results` writes it, and every rejected config
        with its count and reason. Written as :meth:`save_results` writes."""
        filename = self.check_output(filename)
        budget = self.budget
        write_json(filename, {
            "version": 1,
            "settings": {**self.settings, **self.options, "rank_by": self.rank_by},
            "budget": budget.to_dict() if budget is not None else self.settings.get("budget"),
            "ranking": {"rank_by": self.rank_by, "uses": "validation accuracy only; test "
                        "accuracy is reported but never used to rank"},
            "results": result_records(self.results, self.rank_by,
                                      matmul_dtype=self.settings.get("matmul_dtype")),
            "rejected": [r.to_dict() for r in self.rejected],
        })

    def save_pareto(self, filename: str) -> list[dict[str, Any]]:
        """Write the Pareto front of the results (fewest parameters, highest mean
        validation accuracy; :func:`dendrax.search.results.pareto_front`) with the
        settings; returns the front's records. Written as :meth:`save_results` writes."""
        filename = self.check_output(filename)
        front = pareto_records(self.results)
        write_json(filename, pareto_document(front, len(self.results), self.settings))
        return front


def read_search(path: str, rank_by: str | None = None) -> SearchRecord:
    """The search a JSONL log holds, as a :class:`SearchRecord` (see the module doc):
    each configuration's seeds folded into one result, in search order, labelled by the
    parameters its first call searched. ``rank_by`` overrides the ranking the search ran
    with (logged in its options; "val_mean" when not). Raises LogError for a missing,
    empty or invalid log."""
    if rank_by is not None and rank_by not in RANK_BY:
        raise ConfigError(f"rank_by={rank_by!r}; choose one of {', '.join(RANK_BY)}")
    if not os.path.isfile(path):
        raise LogError(f"no search log at {path!r}")
    contents = read_log(path)
    if not contents.headers:
        raise LogError(f"{path}: empty, or not a dendrax search log (no header line)")
    calls: dict[Any, dict[str, Any]] = {}
    for header in contents.headers:
        spec = header["spec"]
        index = header.get("search_index")
        calls.setdefault(index if _is_int(index) else None, {
            "strategy": spec.get("strategy"), "space": spec.get("space"),
            "parameters": _logged_parameters(header)})

    def place(line: int, record: Mapping[str, Any]) -> tuple:
        index, position = record.get("search_index"), record.get("position")
        return (index if _is_int(index) else math.inf,
                position if _is_int(position) else math.inf, line)

    every_field = [name for name in _FIELDS if name != "seed" and name not in STREAM_SEED_FIELDS]
    groups: dict[str, list] = {}
    names: dict[str, list[str]] = {}
    for _, key, record in sorted(((line, key, record) for line, (key, record)
                                  in enumerate(contents.trials.items())),
                                 key=lambda item: place(item[0], item[2])):
        outcome = contents.outcomes[key]
        group = config_key(outcome.config)
        groups.setdefault(group, []).append(outcome)
        call = calls.get(record.get("search_index")) if _is_int(record.get("search_index")) \
            else None
        names.setdefault(group, call["parameters"] if call else every_field)
    results = tuple(aggregate(labelled_params(outcomes[0].config, names[group]), outcomes)
                    for group, outcomes in groups.items())
    last = contents.headers[-1]
    about = last.get("options") if isinstance(last.get("options"), Mapping) else {}
    logged_rank_by = about.get("rank_by") if about.get("rank_by") in RANK_BY else "val_mean"
    return SearchRecord(
        results=results,
        settings={k: v for k, v in last["spec"].items() if k not in ("strategy", "space")},
        calls=tuple(calls.values()), rank_by=rank_by or logged_rank_by,
        options={k: v for k, v in about.items() if k != "rank_by"},
        source=path, torn_line=contents.torn_line)


def _logged_parameters(header: Mapping[str, Any]) -> list[str]:
    """A header's searched parameters: as logged; else (an older log, or an edited field)
    derived from its space; else every config field but the seed (the log does not say)."""
    logged = header.get("parameters")
    if isinstance(logged, list) and all(name in _FIELDS and name != "seed" for name in logged):
        return list(logged)
    space = header["spec"].get("space")
    configs = space.get("configs") if isinstance(space, Mapping) else None
    configs = [c for c in configs if isinstance(c, Mapping)] if isinstance(configs, list) else []
    names = call_parameters(space, configs)
    if (names or configs) and all(name in _FIELDS for name in names):
        return names
    return [name for name in _FIELDS if name != "seed" and name not in STREAM_SEED_FIELDS]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(value: Any) -> int | None:
    return value if _is_int(value) and value > 0 else None


def _get(mapping: Any, *path: str) -> Any:
    """A value nested in a settings dict, or None where a level is missing."""
    for name in path:
        mapping = mapping.get(name) if isinstance(mapping, Mapping) else None
    return mapping
