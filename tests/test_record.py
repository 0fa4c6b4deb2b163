"""A search reads one way (dendrax.search.record): the record a searcher gives and the one
its log reads back as are the same value, so the table, `dendrax show` and every other
reader label and order the same configurations the same way."""

from __future__ import annotations

import json
import os
import stat

import pytest

from dendrax import cli
from dendrax.search.log import canonical
from dendrax.search.record import SearchRecord, call_parameters, read_search
from dendrax.search.results import write_json
from conftest import FakeTrainer, make_searcher

GRID = {"n_neurons": [8, 9, 10], "n_dendrites": [4, 6], "soma_enabled": [True],
        "n_dendrite_inputs": [64], "seed": [3]}
SPACE = {"n_neurons": (6, 14), "n_dendrites": [4, 6, 8], "synaptic_resampling": [True, False],
         "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2}}


def tied(config):
    """Every config scores the same: the order of ties is all that ranks them."""
    return 0.8, 0.7


def run(strategy, tmp_path, **trainer):
    log = str(tmp_path / f"{strategy}.jsonl")
    s = make_searcher(FakeTrainer(diverges=lambda c: c.n_neurons == 9, **trainer),
                      log_path=log, seeds_per_config=2, max_params=100_000,
                      min_param_ratio=0.01)
    if strategy == "grid":
        s.grid_search(GRID)
    else:
        s.random_search(SPACE, n_trials=12)
    return s, log


def configuration_column(text):
    """The configuration column of a results table: ranked rows, then diverged rows."""
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.rstrip().endswith("configuration"))
    start = lines[header].index("configuration")
    rows = []
    for line in lines[header + 1:]:
        if line[:4].strip().isdigit():
            rows.append(line[start:])
        elif line.startswith("  ") and "seeds diverged" in line:
            rows.append(line.split("): ", 1)[1])
    return rows


@pytest.mark.parametrize("strategy", ["grid", "random"])
@pytest.mark.parametrize("score", ["hashed", "tied"])
def test_show_and_print_results_print_the_same_configurations(strategy, score, tmp_path,
                                                              capsys):
    s, log = run(strategy, tmp_path, **({"score": tied} if score == "tied" else {}))
    s.print_results(100)
    printed = capsys.readouterr().out
    assert cli.main(["show", log, "--top", "100"]) == 0
    shown = capsys.readouterr().out
    column = configuration_column(printed)
    assert len(column) == len(s.results) and any(r.diverged for r in s.results)
    assert configuration_column(shown) == column
    if strategy == "grid":  # every key of the grid, the seed excepted, in the grid's order
        assert column[0].startswith("n_neurons=") and "seed=" not in printed


@pytest.mark.parametrize("strategy", ["grid", "random"])
def test_a_log_reads_back_as_the_searchers_record(strategy, tmp_path):
    s, log = run(strategy, tmp_path)
    live, logged = s.record(), read_search(log)
    assert SearchRecord.from_log(log) == logged
    # As strict JSON, where a NaN (a diverged seed's history) equals a NaN.
    assert [canonical(r) for r in logged.results] == [canonical(r) for r in live.results]
    assert logged.settings == live.settings
    assert logged.options == live.options == {"seeds_per_config": 2, "lowering": "auto",
                                              "chunk_size": None, "padding": "auto"}
    assert [c["parameters"] for c in logged.calls] == [c["parameters"] for c in live.calls]
    assert logged.rank_by == live.rank_by and logged.space == live.space
    assert logged.steps_per_epoch == live.steps_per_epoch == 512 // 256
    assert logged.max_params == live.max_params == 100_000
    assert logged.source == log and live.source is None


def test_a_log_without_the_labelling_fields_labels_by_its_space(tmp_path):
    """A log written before headers held "parameters"/"options" and trials "position"."""
    s, log = run("random", tmp_path)
    records = [json.loads(line) for line in open(log, encoding="utf-8")]
    for r in records:
        for field in ("parameters", "options", "position"):
            r.pop(field, None)
    older = tmp_path / "older.jsonl"
    older.write_text("".join(json.dumps(r) + "\n" for r in records))
    logged = read_search(str(older))
    assert logged.options == {} and logged.seeds_per_config is None
    by_config = {json.dumps(r.config, sort_keys=True): r for r in s.results}
    assert len(logged.results) == len(s.results)
    for r in logged.results:
        assert r.params == by_config[json.dumps(r.config, sort_keys=True)].params
        assert list(r.params) == list(SPACE)


def test_rank_by_comes_from_the_log_unless_overridden(tmp_path):
    log = str(tmp_path / "lcb.jsonl")
    make_searcher(FakeTrainer(), log_path=log, seeds_per_config=3, rank_by="val_lcb",
                  max_params=100_000, min_param_ratio=0.01).grid_search(GRID)
    assert read_search(log).rank_by == "val_lcb"
    assert read_search(log, "val_mean").rank_by == "val_mean"


def test_call_parameters():
    assert call_parameters({"param_grid": {"a": [1], "seed": [2], "b": [3]}}) == ["a", "b"]
    assert call_parameters({"param_distributions": {"lr": {}}}, [{"x": 1}]) == ["lr"]
    assert call_parameters({"configs": []}, [{"b": 1, "seed": 2}, {"a": 1, "b": 2}]) == \
        ["b", "a"]
    assert call_parameters(None, []) == []


def test_report_and_results_files_are_the_same_from_either_path(tmp_path):
    s, log = run("grid", tmp_path)
    for name, save in (("results", "save_results"), ("pareto", "save_pareto")):
        getattr(s.record(), save)(str(tmp_path / f"live.{name}.json"))
        getattr(read_search(log), save)(str(tmp_path / f"log.{name}.json"))
        assert json.loads((tmp_path / f"live.{name}.json").read_text()) == \
            json.loads((tmp_path / f"log.{name}.json").read_text())
    s.save_report(str(tmp_path / "report.json"))
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["settings"]["seeds_per_config"] == 2 and report["settings"]["padding"] == "auto"


def test_write_json_is_whole_or_not_at_all(tmp_path, monkeypatch):
    path = tmp_path / "out.json"
    write_json(str(path), {"a": float("nan"), "b": (1, 2)})
    assert json.loads(path.read_text()) == {"a": None, "b": [1, 2]}
    plain = tmp_path / "plain"
    plain.write_text("")  # the permissions a file gets from open() under this umask
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space"):
        write_json(str(path), {"a": 2})
    assert json.loads(path.read_text()) == {"a": None, "b": [1, 2]}  # the old file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "plain"]  # no leftovers
