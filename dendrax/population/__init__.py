"""Populations of models trained as one compiled program (JAX).

- ``program``: the pure population program (``make_train``: init / epoch / train);
- ``runner``: compiling it, placing it on devices, chunking it to memory, running it;
- ``halving``: successive halving across the populations of a sweep;
- ``sweep``: ``train_configs``, the trainer the searcher calls (plan, then run).
"""

from dendrax.population.program import DeviceData, Hyper, MemberState, PopulationProgram, make_train
from dendrax.population.runner import (PreparedPopulation, device_data, hyper_for, member_keys,
                                       prepare_population, resolve_lowering, run_epochs,
                                       train_bucket, train_population)
from dendrax.population.sweep import plan_configs, train_configs

__all__ = ["DeviceData", "Hyper", "MemberState", "PopulationProgram", "PreparedPopulation",
           "device_data", "hyper_for", "make_train", "member_keys", "plan_configs",
           "prepare_population", "resolve_lowering", "run_epochs", "train_bucket",
           "train_configs", "train_population"]
