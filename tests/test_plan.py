"""The bucket planner's "auto" policy: a greedy merge of exact buckets under the cost model.

Pure Python: no model is trained here. What is checked is what the trainer relies on
(every config in exactly one bucket, of its own structure, at sizes it fits in) and what
the merge promises (its estimate never above the exact plan's, and no two buckets left
whose merge would still lower it).
"""

import itertools
import math
import random

import pytest

from dendrax.population.halving import mean_epochs, rung_schedule
from dendrax.config import ModelConfig
from dendrax.plan import COST_MODELS, cost_model, estimated_seconds, model_seconds, plan_buckets

IN_DIM, SAMPLES = 784, 12 * 54000
ARCHITECTURES = ("dendritic_simple", "soma_disabled", "dendritic_with_hidden", "mlp")
STRATEGIES = ("random", "local-receptive-fields", "fully-connected")


def _log_int(rng, low, high):
    return min(high, int(math.exp(rng.uniform(math.log(low), math.log(high + 1)))))


def wide_configs(n, seed=0):
    """A random search over every architecture and strategy, sizes log-uniform: nearly
    every draw has its own shape."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        arch = rng.choice(ARCHITECTURES)
        config = ModelConfig(architecture=arch, strategy=rng.choice(STRATEGIES),
                             n_neurons=_log_int(rng, 1, 48), n_dendrites=_log_int(rng, 1, 48),
                             n_dendrite_inputs=_log_int(rng, 2, IN_DIM),
                             soma_enabled=rng.random() < 0.7,
                             hidden_dim=rng.randint(0, 9) if arch == "mlp" else
                             _log_int(rng, 1, 64), seed=len(out))
        out.append(config)
    return out


def _check_partition(plan, configs):
    assert sorted(i for b in plan for i in b.members) == list(range(len(configs)))
    for bucket in plan:
        for i in bucket.members:
            own = configs[i].shape(IN_DIM)
            assert own.fits_in(bucket.shape), (own, bucket.shape)
            assert own.structure == bucket.shape.structure
        assert bucket.padded == any(configs[i].shape(IN_DIM) != bucket.shape
                                    for i in bucket.members)
        assert bucket.overhead >= -1e-12 and (bucket.overhead > 0) == bucket.padded


@pytest.mark.parametrize("backend,lowering", [("cpu", "sparse"), ("cpu", "dense"),
                                              ("gpu", "dense")])
def test_auto_merges_a_wide_random_search_into_few_programs(backend, lowering):
    configs = wide_configs(300)
    kwargs = dict(samples=SAMPLES, backend=backend, lowering=lowering)
    exact = plan_buckets(configs, IN_DIM, "exact", **kwargs)
    auto = plan_buckets(configs, IN_DIM, "auto", **kwargs)
    _check_partition(auto, configs)
    assert len(exact) >= 200
    cost = {name: estimated_seconds(plan, IN_DIM, SAMPLES, backend, lowering=lowering)
            for name, plan in (("exact", exact), ("auto", auto))}
    assert cost["auto"] < cost["exact"]
    if backend == "cpu":
        assert len(auto) <= 0.4 * len(exact), len(auto)


def test_auto_stops_only_when_no_merge_of_two_buckets_lowers_the_estimate():
    configs = wide_configs(120, seed=3)
    auto = plan_buckets(configs, IN_DIM, "auto", samples=SAMPLES, lowering="sparse")
    cost = cost_model("cpu", "sparse")

    def seconds(shape, n):
        return cost.compile + SAMPLES * n * model_seconds(shape, IN_DIM, 10, cost, "sparse")

    for a, b in itertools.combinations(auto, 2):
        if a.shape.structure != b.shape.structure:
            continue
        merged = a.shape.with_sizes(type(a.shape.sizes)(*map(max, a.shape.sizes, b.shape.sizes)))
        together = seconds(merged, len(a.members) + len(b.members))
        assert together >= seconds(a.shape, len(a.members)) + seconds(b.shape, len(b.members))


def test_auto_keeps_shapes_apart_when_a_program_is_cheap_against_the_padding():
    # Two very different shapes, trained long: padding the small one to the large one
    # costs more than one compile, so they stay apart; identical shapes always share.
    small = ModelConfig(n_neurons=2, n_dendrites=2, n_dendrite_inputs=8)
    large = ModelConfig(n_neurons=40, n_dendrites=40, n_dendrite_inputs=4)
    plan = plan_buckets([small, large, small], IN_DIM, "auto", samples=200 * 54000,
                        lowering="sparse")
    assert sorted(b.members for b in plan) == [(0, 2), (1,)]
    # Trained for one step, the compile dominates and one program serves both.
    plan = plan_buckets([small, large, small], IN_DIM, "auto", samples=256, lowering="sparse")
    assert [b.members for b in plan] == [(0, 1, 2)] and plan[0].padded


def test_auto_never_merges_across_structures():
    configs = [ModelConfig(strategy=s, architecture=a, hidden_dim=4 if a == "mlp" else None)
               for a in ARCHITECTURES for s in STRATEGIES]
    plan = plan_buckets(configs, IN_DIM, "auto", samples=256, lowering="sparse")
    _check_partition(plan, configs)
    assert len(plan) == len({c.shape(IN_DIM).structure for c in configs})


def test_auto_is_deterministic_and_orders_buckets_by_first_member():
    configs = wide_configs(150, seed=5)
    one = plan_buckets(configs, IN_DIM, "auto", samples=SAMPLES, lowering="sparse")
    two = plan_buckets(configs, IN_DIM, "auto", samples=SAMPLES, lowering="sparse")
    assert one == two
    assert [b.members[0] for b in one] == sorted(b.members[0] for b in one)
    assert all(list(b.members) == sorted(b.members) for b in one)


def test_cost_model_lookup_and_the_lowering_changes_what_a_branch_costs():
    assert cost_model("cpu", "sparse") is COST_MODELS[("cpu", "sparse")]
    assert cost_model("cpu", "gather") is COST_MODELS[("cpu", "dense")]
    assert cost_model("tpu", "dense") is COST_MODELS[("gpu", "dense")]
    wide = ModelConfig(n_neurons=10, n_dendrites=10, n_dendrite_inputs=4).shape(IN_DIM)
    cpu = cost_model("cpu", "sparse")
    sparse = model_seconds(wide, IN_DIM, 10, cpu, "sparse")
    dense = model_seconds(wide, IN_DIM, 10, cpu, "dense")
    # 100 branches × 4 synapses computed sparsely, × 784 computed densely.
    assert sparse == pytest.approx(cpu.member + cpu.connection * 400 + cpu.unit * 100
                                   + cpu.linear * (100 + 10 + 110))
    assert dense - sparse == pytest.approx(cpu.connection * 100 * (IN_DIM - 4))


def test_mean_epochs_under_halving():
    # Rungs end at 5, 15, 45: every model trains 5, a third 10 more, a ninth 30 more.
    assert rung_schedule(45, 3, 5) == [5, 15, 45]
    assert mean_epochs(45, 3, 5) == pytest.approx(5 + 10 / 3 + 30 / 9)
    assert mean_epochs(4, 2, 1) == pytest.approx(1 + 1 / 2 + 2 / 4)
    assert mean_epochs(3, 3, 5) == 3  # one rung: the whole run
