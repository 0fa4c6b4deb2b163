"""End to end on the full, real Fashion-MNIST (Debian's dataset-fashion-mnist package)."""

import numpy as np

from dendrax import ModelConfig, TrainSettings
from dendrax.data import load_dataset
from dendrax.population import train_configs


def test_two_epochs_of_the_headline_config_reach_078_test_accuracy():
    data = load_dataset("fashion-mnist", sources=("system",))
    assert len(data.x_train) == 54000 and len(data.x_test) == 10000
    configs = [ModelConfig(n_neurons=12, n_dendrites=6, n_dendrite_inputs=96, seed=s)
               for s in range(4)]
    outcomes = train_configs(configs, data, TrainSettings(n_epochs=2), log=None)
    test = np.array([o.history["test_accuracy"][-1] for o in outcomes])
    val = np.array([o.history["val_accuracy"][-1] for o in outcomes])
    assert all(o.total_params == 7198 for o in outcomes)
    # The original reaches 0.80 after 2 epochs; the bar is 0.78. One seed can land
    # near 0.775 (seed noise is ~0.01 after 2 epochs), so the bar applies to the mean.
    assert test.mean() > 0.78, test
    assert val.mean() > 0.78, val
    assert all(o.history["swaps"][0] > 0 for o in outcomes)


def test_training_without_a_validation_split():
    data = load_dataset("fashion-mnist", sources=("system",), validation_fraction=None,
                        subset_size=2048)
    config = ModelConfig(n_neurons=4, n_dendrites=3, n_dendrite_inputs=32, lr=5e-3)
    (outcome,) = train_configs([config], data, TrainSettings(n_epochs=3, batch_size=64),
                               log=None)
    assert np.isnan(outcome.history["val_accuracy"][-1])  # nothing to validate on
    assert outcome.history["test_accuracy"][-1] > 0.3  # it trained (chance is 0.1)
