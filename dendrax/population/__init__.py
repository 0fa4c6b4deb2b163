"""Populations of models trained as one compiled program (JAX).

- ``program``: the pure population program (``make_train``: init / epoch / train) and its
  per-member inputs (``hyper_for``, ``member_keys``);
- ``compile``: a population's spec, and its program compiled once, on a background thread;
- ``memory``: free device memory, what a member needs, how many fit in a chunk;
- ``runner``: placing a population on devices, chunking it to memory, running it;
- ``halving``: successive halving across the populations of a sweep;
- ``sweep``: ``train_configs``, the trainer the searcher calls (plan, then run).
"""

from dendrax.nn.lowerings import resolve_lowering
from dendrax.population.program import (DeviceData, Hyper, MemberState, PopulationProgram,
                                        hyper_for, make_train, member_keys)
from dendrax.population.runner import (PopulationRun, PreparedPopulation, Timings, device_data,
                                       prepare_population, run_epochs, train_bucket,
                                       train_population)
from dendrax.population.sweep import plan_configs, train_configs

__all__ = ["DeviceData", "Hyper", "MemberState", "PopulationProgram", "PopulationRun",
           "PreparedPopulation", "Timings", "device_data", "hyper_for", "make_train",
           "member_keys", "plan_configs", "prepare_population", "resolve_lowering",
           "run_epochs", "train_bucket", "train_configs", "train_population"]
