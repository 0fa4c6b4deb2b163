"""The shared vocabulary of dendrax: the types and names every layer speaks.

A leaf module (it imports only :mod:`dendrax.errors` and :mod:`dendrax.checks`, and no
JAX), so the JAX side (``nn/``, ``population/``) and the search side (``search/``) both
import from here and never from each other:

- names: :data:`ARCHITECTURES`, :data:`STRATEGIES`, :data:`METRICS`,
  :data:`MATMUL_DTYPES`, :data:`DATA_ORDERS`, :data:`PADDINGS`;
- a model's sizes and shape: :class:`ModelSizes`, :class:`ModelShape`,
  :func:`count_shape_params`;
- the lowerings of the dendritic layer, one :class:`Lowering` each: :data:`LOWERINGS`;
- the rewiring schedule as a plain rule: :func:`rewires_after`, :func:`rewiring_rounds`;
- what passes between the searcher and a trainer: :class:`TrainSettings`,
  :class:`ProgramSpec`, :class:`TrialOutcome`, :class:`Progress`, :class:`Trainer`.

The searcher hands a list of :class:`dendrax.config.ModelConfig` and a
:class:`TrainSettings` to a trainer function, and gets one :class:`TrialOutcome` back per
config.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Callable, NamedTuple, Optional, Protocol, Sequence

from dendrax.checks import MAX_EPOCHS, MAX_SEED, check_capped_int, check_int, check_number
from dendrax.errors import ConfigError

ARCHITECTURES = ("dendritic_simple", "soma_disabled", "dendritic_with_hidden", "mlp")
STRATEGIES = ("random", "local-receptive-fields", "fully-connected")
# What a trainer records for every model and epoch (TrialOutcome.history), in this order.
METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
           "test_accuracy", "swaps")
# "float32": true float32 products on every backend; "tf32": float32 at the backend's
# default matmul precision (TF32 on recent NVIDIA GPUs); "bfloat16": bfloat16 operands;
# "float64": float64 products, for checks against the float64 oracle (needs JAX's x64 mode).
# dendrax.nn.lowerings.MATMUL_DTYPES gives each its operand dtype and precision.
MATMUL_DTYPES = ("float32", "tf32", "bfloat16", "float64")
DATA_ORDERS = ("own", "shared")
# How configs of different shapes share compiled programs (dendrax.plan).
PADDINGS = ("auto", "exact", "padded", "pow2")


class ModelSizes(NamedTuple):
    """The sizes of a model: plain ints for a shape, or traced int scalars for one member
    running at its own sizes inside a padded population (dendrax.plan)."""

    n_neurons: Any  # somas; 0 without a soma
    n_dendrites: Any  # branches per soma, or all the branches without a soma
    k: Any  # connections per branch
    hidden: Any  # width of the hidden Linear layer; 0 when there is none


@dataclasses.dataclass(frozen=True)
class ModelShape:
    """Everything that fixes a model's arrays, and so its compiled program.

    Models of equal shape train together as one population. Built once from a config by
    :meth:`ModelConfig.shape`; layers, models, the population program, the padding masks
    and the bucket planner all read it by name.
    """

    architecture: str
    has_soma: bool
    n_neurons: int  # somas; 0 without a soma
    n_dendrites: int  # 0 for "mlp", which has no dendritic layer
    k: int  # connections per branch (in_dim for "fully-connected", and for "mlp")
    hidden: int | None  # the hidden Linear's width; None when the architecture has none
    strategy: str  # "fully-connected" for "mlp" (every unit reads every input)

    @property
    def has_dendrites(self) -> bool:
        """Whether the model has a dendritic layer (all but the dense baseline "mlp")."""
        return self.architecture != "mlp"

    @property
    def n_branches(self) -> int:
        """Branches of the dendritic layer: n_neurons × n_dendrites, or n_dendrites without soma."""
        return self.n_neurons * self.n_dendrites if self.has_soma else self.n_dendrites

    @property
    def layer_width(self) -> int:
        """Outputs of the dendritic layer: one per soma, or one per branch without soma."""
        return self.n_neurons if self.has_soma else self.n_dendrites

    @property
    def sizes(self) -> ModelSizes:
        return ModelSizes(self.n_neurons, self.n_dendrites, self.k, self.hidden or 0)

    def with_sizes(self, sizes: ModelSizes) -> "ModelShape":
        """The same structure with other (e.g. padded) sizes; a hidden width of 0 is none."""
        return dataclasses.replace(self, n_neurons=int(sizes.n_neurons) if self.has_soma else 0,
                                   n_dendrites=int(sizes.n_dendrites), k=int(sizes.k),
                                   hidden=int(sizes.hidden) if self.hidden is not None else None)

    @property
    def structure(self) -> tuple:
        """What padding cannot change: architecture, soma, strategy, whether there is a
        hidden layer. Shapes of one structure can run padded in one population."""
        return self.architecture, self.has_soma, self.strategy, self.hidden is None

    def fits_in(self, other: "ModelShape") -> bool:
        """Same structure, and no size larger than ``other``'s (so it can run padded there).

        A shape without a hidden layer never fits in one with (an "mlp" linear classifier
        is not an "mlp" with a hidden layer of width 0).
        """
        return self.structure == other.structure and \
            all(a <= b for a, b in zip(self.sizes, other.sizes))

    @property
    def label(self) -> str:
        """A short readable name, e.g. "dendritic_simple|soma|n12|d6|k96|random", "mlp|h32"."""
        if not self.has_dendrites:
            return f"mlp|h{self.hidden}" if self.hidden is not None else "mlp|linear"
        parts = [self.architecture, "soma" if self.has_soma else "nosoma"]
        if self.has_soma:
            parts.append(f"n{self.n_neurons}")
        parts += [f"d{self.n_dendrites}", f"k{self.k}"]
        if self.hidden is not None:
            parts.append(f"h{self.hidden}")
        parts.append(self.strategy)
        return "|".join(parts)


def count_shape_params(shape: ModelShape, n_classes: int = 10) -> int:
    """Exact count of trainable parameters of a model of this shape.

    Each branch counts its k connections (never the dense in_dim row), plus one bias;
    the soma has one weight per branch (block-diagonal) and one bias per neuron; Linear
    layers count fan_in × fan_out + fan_out. An "mlp" is Linear layers only, from its
    k = in_dim inputs.
    """
    if not shape.has_dendrites:
        width = shape.k
        if shape.hidden is not None:
            width, total = shape.hidden, shape.k * shape.hidden + shape.hidden
        else:
            total = 0
        return total + width * n_classes + n_classes
    branches = shape.n_branches
    total = branches * shape.k + branches
    if shape.has_soma:
        total += branches + shape.n_neurons
    width = shape.layer_width
    if shape.hidden is not None:
        total += width * shape.hidden + shape.hidden
        width = shape.hidden
    return total + width * n_classes + n_classes


@dataclasses.dataclass(frozen=True)
class Lowering:
    """One way to compute the dendritic layer's contraction

        out[n, b] = Σ_j kernel[b, j] · x[n, index[b, j]],

    with everything dendrax knows about it, so that a new lowering is one entry of
    :data:`LOWERINGS`:

    - ``matmul``: its JAX function, as ``"module:function"`` (imported when a layer is
      traced, so this table loads no JAX): ``f(x, kernel, index, dtype, accumulate,
      precision)``, the last three from :func:`dendrax.nn.lowerings.matmul_settings`;
    - ``unavailable``: ``"module:function"`` of ``(backend, matmul_dtype)`` returning why it
      cannot run there, or None; None here means it runs everywhere;
    - ``auto_on``: the backends where ``lowering="auto"`` takes it when it can run (measured
      fastest there: docs/benchmarks.md, "Lowerings");
    - :meth:`synapses`: what the planner charges a member for it (dendrax.plan.cost_terms);
    - :meth:`temporary_bytes`: what the memory model adds for it
      (dendrax.population.memory.bytes_per_model).
    """

    matmul: str
    every_feature: bool  # computes all branches × in_dim synapses, not only branches × k
    temporary_words: int  # float32 words held per computed synapse (per sample if per_sample)
    per_sample: bool
    auto_on: tuple = ()
    unavailable: Optional[str] = None

    def synapses(self, shape: ModelShape, in_dim: int) -> int:
        """Synapses computed per sample: branches × in_dim when it reads every feature,
        branches × k otherwise."""
        return shape.n_branches * (in_dim if self.every_feature else shape.k)

    def temporary_bytes(self, shape: ModelShape, in_dim: int, batch_size: int) -> int:
        """Bytes of its float32 temporaries for one member: ``temporary_words`` per computed
        synapse, times the batch when they are per sample."""
        words = self.temporary_words * self.synapses(shape, in_dim)
        return 4 * words * (batch_size if self.per_sample else 1)


# The lowerings by name, in the order they are listed to users; "auto" (dendrax.nn.lowerings
# .resolve_lowering) picks one per backend. Their measured costs per backend are
# dendrax.plan.COST_MODELS (a lowering without its own rows is costed at "dense"'s rates).
LOWERINGS = {
    # x[:, index] gathered (as rows of xᵀ), then a contraction over the k inputs; holds the
    # gathered inputs, their gradient and the products, per sample.
    "gather": Lowering(matmul="dendrax.nn.lowerings:gather_matmul", every_feature=False,
                       temporary_words=3, per_sample=True),
    # The kernel scattered into a (branches, in_dim) matrix, then one GEMM; holds that
    # matrix, its gradient and the scatter's temporaries.
    "dense": Lowering(matmul="dendrax.nn.lowerings:dense_matmul", every_feature=True,
                      temporary_words=4, per_sample=False),
    # A Numba kernel over the k connected inputs (dendrax.nn.sparse_cpu): CPU only, float32
    # products, needs Numba. Costed in memory like "gather", which is generous.
    "sparse": Lowering(matmul="dendrax.nn.lowerings:sparse_matmul", every_feature=False,
                       temporary_words=3, per_sample=True, auto_on=("cpu",),
                       unavailable="dendrax.nn.lowerings:sparse_unavailable"),
}


def lowering_named(name: str) -> Lowering:
    """The :data:`LOWERINGS` entry of a resolved lowering; ValueError for any other name."""
    if name not in LOWERINGS:
        raise ValueError(f"unknown lowering {name!r}; choose one of {', '.join(LOWERINGS)}")
    return LOWERINGS[name]


def rewires_after(step: int, steps_to_resample: int) -> bool:
    """Whether a member rewires once it has taken ``step`` optimiser steps: after every
    ``steps_to_resample`` steps (a period below 1 counts as 1). The JAX updater
    (:meth:`dendrax.nn.rewire.SynapticResampling.is_due`) computes this same rule on traced
    values; a test pins the two together."""
    return step > 0 and step % max(int(steps_to_resample), 1) == 0


def rewiring_rounds(n_steps: int, steps_to_resample: int) -> int:
    """Rounds of rewiring in the first ``n_steps`` optimiser steps under
    :func:`rewires_after`: floor(n_steps / steps_to_resample)."""
    return max(int(n_steps), 0) // max(int(steps_to_resample), 1)


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """Settings shared by every model of a run (not searched per trial).

    Some fields shape the compiled program (batch_size, data_order, lowering,
    eval_batch_size, matmul_dtype, divergence_threshold: they go into its
    :class:`ProgramSpec`); the others only steer the run (n_epochs, data_seed, chunk_size,
    padding, devices, halving, compile_ahead) and never cause a recompile.

    data_order: "own" gives each model its own batch order (seeded by its config seed);
        "shared" makes every model see the same batches (seeded by ``data_seed``), which
        lets the model axis fold into one large matrix product.
    lowering: "gather" (x[:, idx] then a contraction), "dense" (scatter into a
        branches × in_dim matrix, one GEMM), "sparse" (CPU only: a Numba kernel over the
        connected inputs, called by XLA in place; needs ``pip install 'dendrax[cpu-kernel]'``)
        or "auto" (the faster on this backend; see :data:`LOWERINGS`). A lowering that
        cannot run here (for "sparse": another backend, no Numba, or float64 products)
        trains as "dense", with one warning when the run starts.
    chunk_size: most models per compiled call; None estimates it from device memory.
    padding: "exact" trains only configs of identical shapes together; "padded" (or
        "pow2") rounds sizes up to a few levels so that a random search compiles a handful
        of programs instead of one per trial; "auto" (the default) takes whichever of the
        two the cost model expects to finish first (see dendrax.plan). Masks make
        the padding an exact no-op.
    devices: how many local devices share each population (its model axis is split
        across them); None uses them all.
    halving_eta: successive halving inside the populations (dendrax.population.halving): after
        ``halving_min_epochs`` epochs, then η times as many, and so on, only the best 1/η
        of all models by validation accuracy train on. None trains every model to the end.
    compile_ahead: compile the next bucket's program on a background thread while the
        current bucket trains (results are the same either way).
    matmul_dtype: the precision of the matrix products: "float32" (true float32 on every
        backend), "tf32" (float32 at the backend's default precision: TF32 on Ampere and
        later NVIDIA GPUs, float32 on CPUs), "bfloat16" (bfloat16 operands, float32 sums) or
        "float64" (for checks against a float64 reference; needs JAX's x64 mode).
    divergence_threshold: a member whose training loss is NaN, infinite, or above this
        value is frozen and reported as diverged (None: only NaN and infinity count).
        The default, 1e4, is over 4,000 times the loss of a uniform guess on 10 classes.
    """

    n_epochs: int = 15  # at most MAX_EPOCHS (100,000)
    batch_size: int = 256
    data_order: str = "own"
    data_seed: int = 0
    lowering: str = "auto"
    chunk_size: Optional[int] = None
    eval_batch_size: int = 2000
    matmul_dtype: str = "float32"
    divergence_threshold: Optional[float] = 1e4
    padding: str = "auto"
    devices: Optional[int] = None
    halving_eta: Optional[int] = None
    halving_min_epochs: int = 1
    compile_ahead: bool = True

    def __post_init__(self) -> None:
        # numpy integers (from a grid or np.arange) become plain ints, so settings compare,
        # hash and print the same whichever integer type they came with.
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                object.__setattr__(self, field.name, int(value))

    def validate(self) -> None:
        """Raise ConfigError naming the first setting out of range (bools are not integers)."""
        check_capped_int("n_epochs", self.n_epochs, 1, MAX_EPOCHS,
                         "a larger value is a typo that would train for ever")
        check_int("batch_size", self.batch_size, 1)
        check_int("data_seed", self.data_seed, 0, MAX_SEED)
        check_int("eval_batch_size", self.eval_batch_size, 1)
        if self.lowering not in ("auto", *LOWERINGS):
            raise ConfigError(f"lowering={self.lowering!r}; choose one of auto, "
                              f"{', '.join(LOWERINGS)}")
        if self.data_order not in DATA_ORDERS:
            raise ConfigError(
                f"data_order={self.data_order!r}; choose one of {', '.join(DATA_ORDERS)}")
        check_int("chunk_size", self.chunk_size, 1, allow_none=True)
        check_int("devices", self.devices, 1, allow_none=True)
        check_int("halving_eta", self.halving_eta, 2, allow_none=True)
        check_int("halving_min_epochs", self.halving_min_epochs, 1)
        if self.divergence_threshold is not None:
            check_number("divergence_threshold", self.divergence_threshold, 0.0, open_low=True)
        if self.padding not in PADDINGS:
            raise ConfigError(f"padding={self.padding!r}; choose one of {', '.join(PADDINGS)}")
        if self.matmul_dtype not in MATMUL_DTYPES:
            raise ConfigError(f"matmul_dtype={self.matmul_dtype!r}; choose one of "
                              f"{', '.join(MATMUL_DTYPES)}")
        if not isinstance(self.compile_ahead, bool):
            raise ConfigError(f"compile_ahead={self.compile_ahead!r} must be True or False")


@dataclasses.dataclass(frozen=True)
class ProgramSpec:
    """Everything that shapes one compiled population program, and nothing else.

    The runner keys its compile cache on this value alone, so settings that only steer
    a run (epochs, seeds, chunking, halving, padding policy) never cause a recompile,
    and a new run-only setting cannot silently defeat a cache hit.
    """

    shape: ModelShape  # the (padded) model shape
    n_classes: int
    image_shape: tuple
    in_dim: int
    n_train: int  # training examples; steps per epoch = n_train // batch_size
    n_eval: int  # validation then test examples, each padded to whole evaluation batches
    eval_batch_size: int
    batch_size: int
    data_order: str
    lowering: str  # resolved (never "auto"): the lowering XLA runs
    matmul_dtype: str
    divergence_threshold: Optional[float]
    padded: bool  # members run at their own sizes inside ``shape``
    members: int  # population size
    n_devices: int  # the population axis is split across this many devices


@dataclasses.dataclass
class TrialOutcome:
    """What one trained model (one config, one seed) produced.

    history holds one value per epoch under: train_loss, train_accuracy, val_loss,
    val_accuracy, test_loss, test_accuracy, and swaps (accepted rewiring swaps that epoch).
    train_time is the bucket's wall time divided by its number of models; bucket is the
    label of the (possibly padded) shape it trained in, and padding_overhead the bucket's
    padded compute over its members' own compute, minus 1.
    """

    config: Any  # a dendrax.config.ModelConfig (this leaf module imports nothing above it)
    total_params: int
    history: dict[str, list[float]]
    diverged: bool = False
    diverged_step: Optional[int] = None
    diverged_epoch: Optional[int] = None
    bucket: str = ""
    bucket_size: int = 1
    bucket_wall_time: float = 0.0
    compile_time: float = 0.0
    train_time: float = 0.0
    padding_overhead: float = 0.0
    stopped_epoch: Optional[int] = None  # set when successive halving stopped it early
    n_devices: int = 1  # local devices its population was split across

    def final(self, metric: str) -> float:
        values = self.history.get(metric) or [float("nan")]
        return float(values[-1])

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["config"] = self.config.to_dict()
        return out


@dataclasses.dataclass(frozen=True)
class Progress:
    """A progress event from the trainer.

    phase "compile": a chunk has to wait for its program to compile. phase "start": the
    chunk begins to train at ``epoch`` (epochs already done; compile is over), so that a
    display times epochs only. phase "train": one per finished epoch of a chunk. In train
    events ``members`` are the configs of the chunk's real members and ``metrics`` their
    values for this epoch, one list per metric in member order (empty/None when the
    trainer does not report them).
    """

    bucket: str
    chunk_models: int
    epoch: int
    n_epochs: int
    alive: int
    best_val_accuracy: float
    phase: str = "train"  # "compile", "start" or "train"
    members: tuple = ()
    metrics: Optional[dict] = None



class Trainer(Protocol):
    """What the searcher trains with: ``dendrax.population.train_configs`` (this process),
    :class:`dendrax.search.executors.RayExecutor` (a Ray cluster), or a stand-in.

    Called with the models to train, it makes the bucket plan for its real backend and
    hands it to ``on_plan`` before training (the searcher shows and logs that plan),
    trains, calls ``on_bucket_done`` with each bucket's outcomes as it finishes, sends
    ``progress`` events, prints through ``log`` (None: silent), and returns one outcome
    per config, in input order. A trainer that runs successive halving may also take
    ``replay`` ({place in the sweep: outcome} of the call's models that finished before,
    ranked at every rung, see dendrax.population.halving); the searcher passes it only to
    trainers whose signature has it.
    """

    def __call__(self, configs: Sequence[Any], data: Any, settings: TrainSettings, *,
                 progress: Optional[Callable[[Progress], None]] = None,
                 on_bucket_done: Optional[Callable[[list[TrialOutcome]], None]] = None,
                 on_plan: Optional[Callable[[list], None]] = None,
                 log: Optional[Callable[[str], None]] = print) -> list[TrialOutcome]: ...
