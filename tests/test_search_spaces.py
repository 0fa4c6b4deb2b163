"""Search spaces: every distribution format, grid expansion, seeded sampling."""

import random

from dendrax.search.spaces import grid_combination, grid_size
from dendrax.search import (Choice, Fixed, IntRange, LogUniform, Uniform, expand_grid,
                            parse_distribution, parse_space, sample_grid, sample_space)
from conftest import FakeTrainer, make_searcher

ALL_FORMATS = {
    "n_neurons": (8, 15),                                              # int tuple
    "n_dendrites": [4, 6, 8, 10],                                      # list
    "n_dendrite_inputs": {"type": "randint", "low": 32, "high": 200},
    "percentage_resample": {"type": "uniform", "low": 0.1, "high": 0.5},
    "steps_to_resample": {"type": "choice", "values": [64, 128, 256]},
    "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
    "weight_decay": (0.0, 0.05),                                       # float tuple
    "architecture": "dendritic_simple",                                # fixed
}


def test_each_format_parses_to_its_distribution():
    space = parse_space(ALL_FORMATS)
    assert space["n_neurons"] == IntRange(8, 15)
    assert space["n_dendrites"] == Choice((4, 6, 8, 10))
    assert space["n_dendrite_inputs"] == IntRange(32, 200)
    assert space["percentage_resample"] == Uniform(0.1, 0.5)
    assert space["steps_to_resample"] == Choice((64, 128, 256))
    assert space["lr"] == LogUniform(1e-4, 1e-2)
    assert space["weight_decay"] == Uniform(0.0, 0.05)
    assert space["architecture"] == Fixed("dendritic_simple")


def test_same_seed_same_samples_for_every_format():
    space = parse_space(ALL_FORMATS)
    first = sample_space(space, 200, random.Random(7))
    again = sample_space(space, 200, random.Random(7))
    other = sample_space(space, 200, random.Random(8))
    assert first == again
    assert first != other


def test_samples_stay_inside_their_distributions():
    samples = sample_space(parse_space(ALL_FORMATS), 3000, random.Random(0))
    column = {k: [s[k] for s in samples] for k in ALL_FORMATS}
    # Integer ranges are inclusive at BOTH ends, like the original's random.randint.
    assert set(column["n_neurons"]) == set(range(8, 16))
    assert min(column["n_dendrite_inputs"]) == 32 and max(column["n_dendrite_inputs"]) == 200
    assert all(isinstance(v, int) for v in column["n_dendrite_inputs"])
    assert set(column["n_dendrites"]) == {4, 6, 8, 10}
    assert set(column["steps_to_resample"]) == {64, 128, 256}
    assert all(0.1 <= v <= 0.5 for v in column["percentage_resample"])
    assert all(1e-4 <= v <= 1e-2 for v in column["lr"])
    assert all(isinstance(v, float) and 0.0 <= v <= 0.05 for v in column["weight_decay"])
    assert set(column["architecture"]) == {"dendritic_simple"}


def test_randint_high_is_inclusive_even_for_a_tiny_range():
    dist = parse_distribution("x", {"type": "randint", "low": 3, "high": 4})
    rng = random.Random(1)
    assert {dist.sample(rng) for _ in range(200)} == {3, 4}


def test_random_search_is_reproducible_from_the_master_seed():
    space = {"n_neurons": (8, 12), "n_dendrites": [5, 6, 7], "n_dendrite_inputs": (80, 110)}

    def sampled(seed):
        trainer = FakeTrainer()
        make_searcher(trainer, seed=seed, max_params=100_000, min_param_ratio=0.01
                      ).random_search(space, n_trials=10)
        return [(c.n_neurons, c.n_dendrites, c.n_dendrite_inputs) for c in trainer.trained]

    assert sampled(3) == sampled(3)
    assert sampled(3) != sampled(4)


def test_grid_expands_in_product_order_and_scalars_are_one_value():
    combos = expand_grid({"n_neurons": [8, 10], "n_dendrites": (4, 6),
                          "architecture": "soma_disabled"})
    assert combos == [
        {"n_neurons": 8, "n_dendrites": 4, "architecture": "soma_disabled"},
        {"n_neurons": 8, "n_dendrites": 6, "architecture": "soma_disabled"},
        {"n_neurons": 10, "n_dendrites": 4, "architecture": "soma_disabled"},
        {"n_neurons": 10, "n_dendrites": 6, "architecture": "soma_disabled"},
    ]


def test_grid_max_trials_is_seeded_and_without_replacement():
    grid = {"a": list(range(10)), "b": list(range(10))}
    combos = expand_grid(grid)
    picked = sample_grid(grid, 20, random.Random(5)).combinations
    assert picked == sample_grid(grid, 20, random.Random(5)).combinations
    assert picked != sample_grid(grid, 20, random.Random(6)).combinations
    assert len(picked) == 20
    assert len({(p["a"], p["b"]) for p in picked}) == 20          # no repeats
    assert picked == [c for c in combos if c in picked]            # kept in grid order
    assert sample_grid(grid, 500, random.Random(5)).combinations == combos  # all of them


def test_grid_combination_is_the_mixed_radix_index_of_itertools_product():
    grid = {"a": [1, 2, 3], "b": ["x", "y"], "c": [True, False, None, 0]}
    assert [grid_combination(grid, i) for i in range(grid_size(grid))] == expand_grid(grid)
    assert grid_size(grid) == 24


def test_sample_grid_only_keeps_accepted_combinations_uniformly():
    grid = {"a": list(range(30)), "b": list(range(30))}
    even = sample_grid(grid, 50, random.Random(0), accept=lambda c: (c["a"] + c["b"]) % 2 == 0)
    assert len(even.combinations) == 50 and 50 <= even.checked < 900
    assert all((c["a"] + c["b"]) % 2 == 0 for c in even.combinations)
    few = sample_grid(grid, 50, random.Random(0), accept=lambda c: c["a"] == c["b"] == 3)
    assert few.combinations == [{"a": 3, "b": 3}] and few.exhausted


def test_sample_grid_of_ten_million_is_lazy_and_bounded():
    # 10**7 combinations: never materialised; a budget that accepts 1 in 1,000 still fills
    # max_trials, and one that accepts nothing stops at the bound on checks.
    grid = {f"p{i}": list(range(10)) for i in range(7)}
    assert grid_size(grid) == 10**7
    checks = []

    def rare(c):
        checks.append(1)
        return c["p0"] == c["p1"] == c["p2"] == 0

    draw = sample_grid(grid, 3, random.Random(1), accept=rare)
    assert len(draw.combinations) == 3 and not draw.exhausted
    assert draw.checked == len(checks) < 100_000
    none = sample_grid(grid, 3, random.Random(1), accept=lambda c: False, max_checks=5_000)
    assert none.combinations == [] and none.checked == 5_000 and not none.exhausted


def test_grid_search_max_trials_uses_the_master_seed():
    grid = {"n_neurons": [8, 9, 10, 11, 12], "n_dendrites": [5, 6, 7],
            "n_dendrite_inputs": [96, 100]}

    def trained(seed):
        trainer = FakeTrainer()
        make_searcher(trainer, seed=seed, max_params=100_000, min_param_ratio=0.01
                      ).grid_search(grid, max_trials=6)
        return [(c.n_neurons, c.n_dendrites, c.n_dendrite_inputs) for c in trainer.trained]

    assert trained(1) == trained(1)
    assert len(set(trained(1))) == 6
    assert trained(1) != trained(2)
