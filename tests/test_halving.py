"""Successive halving inside the population: who survives, what they compute, and how
many programs it compiles."""

import dataclasses

import numpy as np

from dendrax import population as train
from dendrax.population import halving
from dendrax.config import ModelConfig
from dendrax.spec import TrainSettings
from conftest import prototype_data

DATA = prototype_data(n_train=320, n_val=64, n_test=64, in_dim=64, image_shape=(8, 8, 1))
SETTINGS = TrainSettings(n_epochs=3, batch_size=32)
CONFIGS = [ModelConfig(n_neurons=3, n_dendrites=2, n_dendrite_inputs=8, seed=s,
                       lr=[1e-4, 3e-4, 1e-3, 3e-3][s % 4], steps_to_resample=4)
           for s in range(8)]


def _record_population_sizes(monkeypatch) -> list[int]:
    """The size of every population halving prepares, in order."""
    sizes = []
    real_prepare = halving.prepare_population

    def spy(configs, *args, **kwargs):
        sizes.append(len(configs))
        return real_prepare(configs, *args, **kwargs)

    monkeypatch.setattr(halving, "prepare_population", spy)
    return sizes


def test_rung_schedule():
    assert halving.rung_schedule(15, 3, 1) == [1, 3, 9, 15]
    assert halving.rung_schedule(12, 2, 3) == [3, 6, 12]
    assert halving.rung_schedule(2, 3, 5) == [2]
    assert [halving.keep_count(n, 3) for n in (45, 15, 5, 1)] == [15, 5, 2, 1]


def test_survivors_are_the_best_by_validation_and_train_as_in_the_full_run(monkeypatch):
    full = train.train_configs(CONFIGS, DATA, SETTINGS, log=None)
    sizes = _record_population_sizes(monkeypatch)
    logs, done = [], []
    monkeypatch.setattr(halving, "worth_shrinking", lambda *args: True)
    settings = dataclasses.replace(SETTINGS, halving_eta=2, halving_min_epochs=1)
    halved = train.train_configs(CONFIGS, DATA, settings, log=logs.append,
                                 on_bucket_done=done.extend)

    # Rungs end at epochs 1, 2, 3: 8 models, then 4, then 2.
    assert sizes == [8, 4, 2]  # compacted, and every size a power of two
    epochs = [len(o.history["val_accuracy"]) for o in halved]
    assert sorted(epochs) == [1, 1, 1, 1, 2, 2, 3, 3]
    assert len(logs) == 2 and len(done) == 8
    assert sorted(o.config.seed for o in done) == list(range(8))

    val1 = np.array([o.history["val_accuracy"][0] for o in full])
    survivors1 = {i for i, e in enumerate(epochs) if e >= 2}
    assert survivors1 == set(np.argsort(-val1, kind="stable")[:4].tolist())
    val2 = {i: full[i].history["val_accuracy"][1] for i in survivors1}
    survivors2 = {i for i, e in enumerate(epochs) if e == 3}
    assert survivors2 == set(sorted(val2, key=lambda i: -val2[i])[:2])

    for i, outcome in enumerate(halved):
        n = epochs[i]
        assert outcome.stopped_epoch == (None if n == 3 else n)
        for metric in ("train_loss", "val_accuracy", "test_accuracy"):
            np.testing.assert_allclose(outcome.history[metric], full[i].history[metric][:n],
                                       rtol=1e-5, atol=1e-6)


def test_a_bucket_starts_at_its_own_size_and_shrinks_to_powers_of_two(monkeypatch):
    # Most models stop at the first rung, so the first population has no idle slots:
    # 5 models train as 5, then the 3 survivors in 4 slots, then 2.
    sizes = _record_population_sizes(monkeypatch)
    monkeypatch.setattr(halving, "worth_shrinking", lambda *args: True)
    settings = dataclasses.replace(SETTINGS, halving_eta=2, halving_min_epochs=1)
    out = train.train_configs(CONFIGS[:5], DATA, settings, log=None)
    assert sizes == [5, 4, 2]
    assert sorted(len(o.history["val_accuracy"]) for o in out) == [1, 1, 2, 3, 3]


def test_shrinking_only_pays_when_the_saved_compute_beats_a_compile(monkeypatch):
    assert halving.worth_shrinking(8, 4, epochs_left=10, epoch_seconds=3.0, compile_seconds=8.0)
    assert not halving.worth_shrinking(8, 4, epochs_left=1, epoch_seconds=3.0,
                                       compile_seconds=8.0)
    sizes = _record_population_sizes(monkeypatch)
    monkeypatch.setattr(halving, "worth_shrinking", lambda *args: False)
    settings = dataclasses.replace(SETTINGS, halving_eta=2, halving_min_epochs=1)
    kept = train.train_configs(CONFIGS, DATA, settings, log=None)
    assert sizes == [8, 8, 8]  # one program; stopped slots repeat a survivor
    assert sorted(len(o.history["val_accuracy"]) for o in kept) == [1, 1, 1, 1, 2, 2, 3, 3]


def test_searcher_passes_halving_to_the_trainer_and_its_log_spec():
    from dendrax import HyperparameterSearcher

    searcher = HyperparameterSearcher(max_params=600, min_param_ratio=0.1, n_epochs=3,
                                      batch_size=32, verbose=False, data=DATA,
                                      halving_eta=2, halving_min_epochs=1)
    searcher.grid_search({"n_neurons": [3], "n_dendrites": [2], "n_dendrite_inputs": [8],
                          "lr": [1e-4, 3e-4, 1e-3, 3e-3]})
    assert searcher.settings.halving_eta == 2
    assert searcher.spec("grid", {})["halving"] == [2, 1]
    curves = [r.history[0]["val_accuracy"] for r in searcher.results]
    assert sorted(len(c) for c in curves) == [1, 1, 2, 3]
    # Each rung kept the best by validation accuracy: every model that went on scored at
    # least as well at the rung's end as every model stopped there.
    for rung_end in (1, 2):
        went_on = [c[rung_end - 1] for c in curves if len(c) > rung_end]
        stopped = [c[rung_end - 1] for c in curves if len(c) == rung_end]
        assert min(went_on) >= max(stopped)
    best = searcher.get_best_results(1)[0]
    assert len(best.history[0]["val_accuracy"]) == 3  # only a model that ran to the end


def test_a_bucket_holds_its_program_only_while_it_trains(monkeypatch):
    # Each compiled program maps hundreds of memory regions: a sweep of many buckets must
    # not keep every bucket's program alive between rungs. With room for one program in
    # the runner's cache, the buckets reload theirs and still train as without halving.
    import gc
    import weakref

    from dendrax.population import compile as compile_module

    configs = [dataclasses.replace(c, n_neurons=2 + i % 3) for i, c in enumerate(CONFIGS[:6])]
    settings = dataclasses.replace(SETTINGS, halving_eta=2, halving_min_epochs=1,
                                   padding="exact")
    full = train.train_configs(configs, DATA, dataclasses.replace(settings, halving_eta=None),
                               log=None)
    monkeypatch.setattr(compile_module, "_PROGRAMS_KEPT", 1)
    monkeypatch.setattr(halving, "worth_shrinking", lambda *args: False)
    alive_at_prepare = []
    handed_out = []
    real_prepare = halving.prepare_population

    def spy(*args, **kwargs):
        gc.collect()
        alive_at_prepare.append(sum(ref() is not None for ref in handed_out))
        prepared = real_prepare(*args, **kwargs)
        handed_out.append(weakref.ref(prepared))
        return prepared

    monkeypatch.setattr(halving, "prepare_population", spy)
    halved = train.train_configs(configs, DATA, settings, log=None)
    assert len(alive_at_prepare) >= 3 * 3 - 2  # 3 buckets, rungs 1-2-3 (fewer at the end)
    assert max(alive_at_prepare) == 0  # none kept from one bucket's turn to the next
    for h, f in zip(halved, full):
        n = len(h.history["val_accuracy"])
        np.testing.assert_allclose(h.history["train_loss"], f.history["train_loss"][:n],
                                   rtol=1e-5, atol=1e-6)
