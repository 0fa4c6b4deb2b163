"""The memory model: one reader of free memory for the chunk planner and the fit check,
the lowering's own terms, and the evaluation layout."""

import numpy as np
import pytest

from dendrax.config import ModelConfig
from dendrax.errors import ModelTooLargeError
from dendrax.population import memory
from dendrax.population.compile import program_spec
from dendrax.spec import LOWERINGS, TrainSettings
from conftest import prototype_data

DATA = prototype_data(n_train=64, n_val=10, n_test=7, in_dim=16, image_shape=(4, 4, 1))
SHAPE = ModelConfig(n_neurons=3, n_dendrites=2, n_dendrite_inputs=5).shape(16)
SETTINGS = TrainSettings(batch_size=8, eval_batch_size=4)


@pytest.mark.parametrize("free,budget", [
    (memory.FreeMemory(3 << 30, accelerator=False), 1 << 30),  # a third of the RAM
    (memory.FreeMemory(60 << 30, accelerator=False), 8 << 30),  # at most 8 GiB
    (memory.FreeMemory(10 << 30, accelerator=True), int(0.6 * (10 << 30))),
    (None, 2 << 30)])
def test_the_chunk_planner_reads_the_same_free_memory_as_the_fit_check(monkeypatch, free,
                                                                       budget):
    monkeypatch.setattr(memory, "free_memory", lambda: free)
    assert memory.chunk_budget() == budget
    per_model = memory.bytes_per_model(SHAPE, 16, 64, SETTINGS, "dense")
    assert memory.default_chunk_size(SHAPE, DATA, SETTINGS, "dense") == \
        max(1, min(memory.MAX_CHUNK, budget // per_model))
    if free is not None:
        small = memory.FreeMemory(per_model - 1, free.accelerator)
        monkeypatch.setattr(memory, "free_memory", lambda: small)
        with pytest.raises(ModelTooLargeError, match="does not fit"):
            memory.check_models_fit([SHAPE], DATA, TrainSettings(batch_size=8,
                                                                 eval_batch_size=4,
                                                                 lowering="dense"))


def test_the_reader_returns_bytes_that_exist():
    free = memory.free_memory()
    assert free is None or free.bytes > 0


def test_each_lowering_adds_its_own_temporaries():
    gather = memory.bytes_per_model(SHAPE, 16, 64, SETTINGS, "gather")
    for name, entry in LOWERINGS.items():
        extra = (entry.temporary_bytes(SHAPE, 16, SETTINGS.batch_size)
                 - LOWERINGS["gather"].temporary_bytes(SHAPE, 16, SETTINGS.batch_size))
        got = memory.bytes_per_model(SHAPE, 16, 64, SETTINGS, name) - gather
        assert got == pytest.approx(1.5 * extra, abs=1), name
    # dense: the scattered (branches, in_dim) kernel, its gradient and temporaries;
    # gather and sparse: three words per connection and sample.
    assert LOWERINGS["dense"].temporary_bytes(SHAPE, 16, 8) == 4 * 4 * SHAPE.n_branches * 16
    assert LOWERINGS["sparse"].temporary_bytes(SHAPE, 16, 8) == 3 * 4 * SHAPE.n_branches * 5 * 8


def test_the_evaluation_layout_and_the_program_spec_pad_alike():
    assert [memory.eval_rows(n, 4) for n in (0, 1, 4, 5, 10)] == [4, 4, 4, 8, 12]
    spec = program_spec(SHAPE, DATA, SETTINGS, members=1, padded=False, n_devices=1,
                        lowering="dense")
    assert spec.n_eval == memory.eval_rows(10, 4) + memory.eval_rows(7, 4) == 20
    from dendrax.population.runner import device_data
    assert np.asarray(device_data(DATA, 4).x_eval).shape == (20, 16)
