"""Results as flat tables: searcher.to_dataframe() and `dendrax show --format ...`."""

import io
import json
import sys

import numpy as np
import pytest

from dendrax import cli
from dendrax.search import table
from dendrax.errors import ConfigError
from conftest import FakeTrainer, make_searcher

pd = pytest.importorskip("pandas")

GRID = {"n_neurons": [8, 12], "n_dendrites": [4, 6], "n_dendrite_inputs": [64],
        "synaptic_resampling": [True, False]}


@pytest.fixture(scope="module")
def searcher(tmp_path_factory):
    log = tmp_path_factory.mktemp("log") / "search.jsonl"
    s = make_searcher(FakeTrainer(diverges=lambda c: c.n_neurons == 8 and c.n_dendrites == 4
                                  and not c.synaptic_resampling),
                      seeds_per_config=3, n_epochs=4, max_params=100_000,
                      min_param_ratio=0.01, log_path=str(log))
    s.grid_search(GRID)
    return s


def test_dataframe_has_one_flat_row_per_config_with_numpy_statistics(searcher):
    df = searcher.to_dataframe()
    assert len(df) == 8
    for column in ("rank", "n_neurons", "n_dendrites", "synaptic_resampling", "params",
                   "val_mean", "val_std", "val_ci_low", "val_ci_high", "test_mean",
                   "epochs", "stopped_by_halving", "bucket", "compile_time", "train_time"):
        assert column in df.columns, column
    ranked = df[df["rank"].notna()]
    assert list(ranked["rank"]) == list(range(1, 8))  # one diverged config, unranked, last
    assert bool(df.iloc[-1]["diverged"]) and pd.isna(df.iloc[-1]["rank"])
    assert (ranked["val_mean"].diff().dropna() <= 0).all()
    best = searcher.get_best_results(1)[0]
    finals = np.array([h["val_accuracy"][-1] for h in best.history])
    row = df.iloc[0]
    assert row["val_mean"] == pytest.approx(finals.mean())
    assert row["val_std"] == pytest.approx(finals.std(ddof=1))
    half = 4.302652729911275 * finals.std(ddof=1) / np.sqrt(3)  # t(0.975, 2)
    assert row["val_ci_low"] == pytest.approx(finals.mean() - half, rel=1e-6)
    assert row["epochs"] == 4 and not row["stopped_by_halving"]
    assert row["compile_time"] == pytest.approx(0.1)


def test_per_seed_rows(searcher):
    df = searcher.to_dataframe(per_seed=True)
    assert len(df) == 8 * 3
    assert {"seed", "val_accuracy", "test_accuracy", "stopped_epoch"} <= set(df.columns)
    best = searcher.get_best_results(1)[0]
    mine = df[df["rank"] == 1]
    assert list(mine["seed"]) == best.seeds
    assert list(mine["val_accuracy"]) == [h["val_accuracy"][-1] for h in best.history]


def test_missing_pandas_names_the_extra(searcher, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"dendrax\[pandas\]"):
        searcher.to_dataframe()


def test_csv_and_json_read_back_with_pandas(searcher):
    rows = table.result_rows(searcher.results)
    frame = pd.read_csv(io.StringIO(table.render(rows, "csv")))
    assert len(frame) == 8 and frame["params"].tolist() == [r["params"] for r in rows]
    assert frame["val_mean"].tolist()[:7] == pytest.approx([r["val_mean"] for r in rows][:7])
    assert rows[7]["val_mean"] is None and np.isnan(frame["val_mean"].iloc[7])  # diverged
    back = pd.read_json(io.StringIO(table.render(rows, "json")))
    assert back["n_neurons"].tolist() == [r["n_neurons"] for r in rows]
    markdown = table.render(rows, "markdown").splitlines()
    assert markdown[0].startswith("| rank | n_neurons |") and len(markdown) == 2 + 8
    text = table.render(rows, "table").splitlines()
    assert text[0].split()[:3] == ["rank", "n_neurons", "n_dendrites"] and len(text) == 9


def test_filter_and_sort(searcher):
    rows = table.result_rows(searcher.results)
    kept = table.filter_rows(rows, ["n_neurons=12", "synaptic_resampling=false"])
    assert len(kept) == 2
    assert all(r["n_neurons"] == 12 and r["synaptic_resampling"] is False for r in kept)
    by_size = table.sort_rows(rows, "params")
    assert [r["params"] for r in by_size] == sorted(r["params"] for r in rows)
    down = table.sort_rows(rows, "val_mean:desc")
    values = [r["val_mean"] for r in down if r["val_mean"] is not None]
    assert values == sorted(values, reverse=True)
    with pytest.raises(ConfigError, match="no such column"):
        table.filter_rows(rows, ["neurons=12"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        table.filter_rows(rows, ["n_neurons"])


def test_dendrax_show_formats(searcher, capsys):
    assert cli.main(["show", searcher.log_path, "--format", "csv", "--filter",
                     "n_dendrites=6", "--sort", "params:desc"]) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(frame) == 4 and (frame["n_dendrites"] == 6).all()
    assert frame["params"].is_monotonic_decreasing
    assert cli.main(["show", searcher.log_path, "--format", "json", "--per-seed"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 24 and {"seed", "val_accuracy"} <= set(rows[0])
    assert cli.main(["show", searcher.log_path, "--sort", "nope"]) == 2
    assert "no such column" in capsys.readouterr().err
