"""Executors: where a search's populations train.

The local executor is :func:`dendrax.population.train_configs` itself. :class:`RayExecutor` is a
drop-in replacement that trains on a Ray cluster: the same buckets
(:func:`dendrax.population.plan_configs`), each bucket (or chunk of one) a Ray task running
:func:`dendrax.population.train_bucket` on a worker, results streamed back as tasks finish.

Importing this module imports neither JAX nor Ray: the driver (the searcher's process)
imports Ray when it first trains, and only the workers import JAX. Even the bucket plan
is computed by a task, on a worker like the ones that will train, because the plan depends
on the workers' backend (GPU or CPU cost model), and because JAX on the driver would grab
the memory of a GPU the head node shares with its workers.
"""

from __future__ import annotations

import importlib.util
import math
import os
from typing import Any, Callable, Optional, Sequence

from dendrax.plan import Bucket, model_flops
from dendrax.config import ModelConfig
from dendrax.errors import ConfigError
from dendrax.spec import ModelShape, TrainSettings, TrialOutcome


def plan_task(configs: Sequence[ModelConfig], data: Any, settings: TrainSettings,
              num_gpus: float, compilation_cache: bool) -> list[Bucket]:
    """The bucket plan, as :func:`dendrax.population.train_configs` would make it on a worker."""
    _prepare_worker(num_gpus, compilation_cache)
    from dendrax.population import plan_configs  # lazy: JAX lives on the workers only

    return plan_configs(configs, data, settings)


def bucket_task(configs: Sequence[ModelConfig], data: Any, settings: TrainSettings,
                shape: ModelShape, overhead: float, num_gpus: float,
                compilation_cache: bool) -> list[TrialOutcome]:
    """One Ray task: train ``configs`` (one bucket, or a chunk of one) on this worker."""
    _prepare_worker(num_gpus, compilation_cache)
    from dendrax.population import train_bucket

    # Worker output reaches the driver's terminal through Ray, prefixed with the task.
    return train_bucket(configs, data, settings, shape=shape, overhead=overhead,
                        progress=None, log=print)


def _prepare_worker(num_gpus: float, compilation_cache: bool) -> None:
    # Ray runs every GPU task in a fresh process (max_calls=1), so this precedes JAX's
    # first use there. A task holding a fraction of a GPU must not preallocate JAX's
    # default 75% of it, or the tasks sharing that GPU run out of memory.
    if 0 < num_gpus < 1:
        os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", f"{0.9 * num_gpus:.3f}")
    if compilation_cache:
        from dendrax.population.compile_cache import enable_compilation_cache

        enable_compilation_cache()


def _chunks(members: Sequence[int], chunk_models: Optional[int]) -> list[tuple[int, ...]]:
    """Split a bucket into near-equal chunks of at most ``chunk_models`` members (sizes
    differ by at most one, so a bucket compiles at most two population sizes)."""
    members = tuple(members)
    if not chunk_models or len(members) <= chunk_models:
        return [members]
    n = math.ceil(len(members) / chunk_models)
    size, extra = divmod(len(members), n)
    out, start = [], 0
    for i in range(n):
        stop = start + size + (i < extra)
        out.append(members[start:stop])
        start = stop
    return out


def ray_missing() -> bool:
    """True when Ray is not installed (checked without importing it)."""
    return importlib.util.find_spec("ray") is None


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError("the Ray executor needs Ray: pip install 'dendrax[ray]'") from None
    return ray


class RayExecutor:
    """A ``train_configs``-compatible trainer that runs each bucket as a Ray task.

    Args:
      address: the Ray cluster to connect to ("auto", "ray://host:10001", "host:6379");
          None starts a local Ray instance unless ``RAY_ADDRESS`` names one. A Ray
          connection the process already has is used as it is.
      num_gpus_per_task: GPUs each task reserves; None means 1 if the cluster has GPUs,
          else 0. A fraction (0.5) packs several tasks on one GPU; a task's population is
          split across all the GPUs it holds (``TrainSettings.devices``).
      num_cpus_per_task: CPUs each task reserves.
      max_retries: times Ray reruns a task whose worker process or node died. A task's
          trials are reported only when it completes, so a retried task is never logged
          twice or in part. Exceptions raised by training itself are not retried.
      chunk_models: most models per task; a bigger bucket is split into near-equal chunks
          that run as separate tasks (in parallel, on different GPUs). None: one task per
          bucket (which still chunks to fit the memory of its worker, like train_configs).
      compilation_cache: each task turns on JAX's persistent compilation cache on its node
          (as the ``dendrax`` command does), so a shape compiled once is not compiled again
          by later tasks there.

    Calling it trains ``configs`` and returns one outcome per config, in input order;
    ``on_bucket_done(outcomes)`` is called on the driver as each task finishes. Per-epoch
    ``progress`` events stay on the workers.
    """

    def __init__(self, address: Optional[str] = None, num_gpus_per_task: Optional[float] = None,
                 num_cpus_per_task: float = 1, max_retries: int = 3,
                 chunk_models: Optional[int] = None, compilation_cache: bool = True):
        if num_gpus_per_task is not None and not num_gpus_per_task >= 0:
            raise ValueError(f"num_gpus_per_task={num_gpus_per_task!r} must be None or >= 0")
        if not num_cpus_per_task >= 0:
            raise ValueError(f"num_cpus_per_task={num_cpus_per_task!r} must be >= 0")
        if not isinstance(max_retries, int) or max_retries < -1:
            raise ValueError(f"max_retries={max_retries!r} must be an integer >= 0 "
                             f"(-1: retry forever)")
        if chunk_models is not None and (not isinstance(chunk_models, int) or chunk_models < 1):
            raise ValueError(f"chunk_models={chunk_models!r} must be None or an integer >= 1")
        self.address = address
        self.num_gpus_per_task = num_gpus_per_task
        self.num_cpus_per_task = num_cpus_per_task
        self.max_retries = max_retries
        self.chunk_models = chunk_models
        self.compilation_cache = compilation_cache
        # The functions tasks run; a subclass or test may wrap them (same signatures).
        self.plan_task: Callable[..., list[Bucket]] = plan_task
        self.bucket_task: Callable[..., list[TrialOutcome]] = bucket_task

    def __repr__(self) -> str:
        return (f"RayExecutor(address={self.address!r}, num_gpus_per_task="
                f"{self.num_gpus_per_task!r}, num_cpus_per_task={self.num_cpus_per_task!r}, "
                f"max_retries={self.max_retries!r}, chunk_models={self.chunk_models!r})")

    def connect(self):
        """Connect to (or start) the Ray cluster; returns the ``ray`` module."""
        ray = _import_ray()
        if not ray.is_initialized():
            ray.init(address=self.address)
        return ray

    def gpus_per_task(self) -> float:
        if self.num_gpus_per_task is not None:
            return self.num_gpus_per_task
        ray = self.connect()
        return 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0

    def __call__(self, configs: Sequence[ModelConfig], data: Any,
                 settings: TrainSettings = TrainSettings(), *,
                 progress: Optional[Callable] = None,
                 on_bucket_done: Optional[Callable[[list[TrialOutcome]], None]] = None,
                 on_plan: Optional[Callable[[list[Bucket]], None]] = None,
                 log: Optional[Callable[[str], None]] = print) -> list[TrialOutcome]:
        del progress  # per-epoch events are not sent back from the workers
        configs = list(configs)
        settings.validate()
        if settings.halving_eta is not None:
            # Halving ranks every model of the sweep between rungs and keeps populations'
            # state in between: one process's job (dendrax.population.halving), not independent tasks.
            raise ConfigError("successive halving (halving_eta) needs the local executor; "
                              "the Ray executor trains every model to n_epochs")
        for config in configs:
            config.validate(data.in_dim)
        if not configs:
            return []
        ray = self.connect()
        gpus = self.gpus_per_task()
        cache = self.compilation_cache

        def remote(function):
            # Built per call: options such as max_calls (1 for GPU tasks, so each one gets
            # a fresh process and the GPUs Ray assigned it) are fixed by ray.remote.
            return ray.remote(num_gpus=gpus, num_cpus=self.num_cpus_per_task,
                              max_retries=self.max_retries)(function)

        data_ref = ray.put(data)  # once; every task reads the same object
        buckets = ray.get(remote(self.plan_task).remote(configs, data_ref, settings, gpus, cache))
        if on_plan is not None:
            on_plan(buckets)

        # Longest first: the biggest tasks start first, so the last to finish is a small one.
        work = []
        for bucket in buckets:
            cost = model_flops(bucket.shape, data.in_dim, data.n_classes)
            for members in _chunks(bucket.members, self.chunk_models):
                work.append((cost * len(members), bucket, members))
        work.sort(key=lambda item: -item[0])
        task = remote(self.bucket_task)
        pending = {}
        for _, bucket, members in work:
            ref = task.remote([configs[i] for i in members], data_ref, settings,
                              bucket.shape, bucket.overhead,
                              gpus, cache)
            pending[ref] = members
        if log:
            log(f"[dendrax] ray: {len(configs)} models in {len(buckets)} buckets as "
                f"{len(pending)} tasks ({gpus} GPU, {self.num_cpus_per_task} CPU each)")

        results: list[Optional[TrialOutcome]] = [None] * len(configs)
        failure: Optional[BaseException] = None
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    members = pending.pop(ref)
                    try:
                        outcomes = ray.get(ref)
                    except Exception as error:  # noqa: BLE001 - re-raised once all finish
                        # The other tasks keep going and are logged, so a resume retrains
                        # only the failed ones.
                        failure = failure or error
                        if log:
                            cause = getattr(error, "cause", None) or error
                            log(f"[dendrax] ray: a task of {len(members)} models failed "
                                f"({type(cause).__name__}: {cause})")
                        continue
                    if len(outcomes) != len(members):
                        raise RuntimeError(f"a bucket task returned {len(outcomes)} outcomes "
                                           f"for {len(members)} models")
                    for i, outcome in zip(members, outcomes):
                        results[i] = outcome
                    if on_bucket_done is not None:
                        on_bucket_done(outcomes)
        except BaseException:
            for ref in pending:  # interrupted, or the driver's callback failed
                ray.cancel(ref, force=True)
            raise
        if failure is not None:
            raise failure
        return results  # type: ignore[return-value]
