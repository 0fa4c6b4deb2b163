"""Model configurations: one typed, validated value per trial, and exact parameter counts.

Field names and defaults follow the original toolkit, so a dict of the original's
hyperparameters maps 1:1 onto a :class:`ModelConfig`. Pure Python, below every package:
the searcher builds configs, the trainer reads them.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Mapping

from dendrax.checks import INT32_MAX, MAX_SEED, check_capped_int, check_int, check_number, shown
from dendrax.errors import ConfigError
from dendrax.spec import ARCHITECTURES, STRATEGIES, ModelShape, count_shape_params

INTEGER_FIELDS = ("n_neurons", "n_dendrites", "n_dendrite_inputs", "hidden_dim",
                  "steps_to_resample", "seed", "init_seed", "order_seed", "rewire_seed")
# One seed per stream of a model's randomness (initial weights, batch order, rewiring
# draws); None: the stream derived from ``seed``, as before the streams could be set apart.
STREAM_SEED_FIELDS = ("init_seed", "order_seed", "rewire_seed")
FLOAT_FIELDS = ("percentage_resample", "lr", "weight_decay")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """One trial: architecture, shape, resampling rule, optimiser values and seed.

    Defaults are the original toolkit's (``create_model`` and ``HyperparameterSearcher``).
    ``hidden_dim=None`` means ``n_neurons`` (``dendritic_with_hidden`` only).
    ``soma_disabled`` always builds its dendritic layer without a soma.

    ``mlp`` is the dense baseline: Linear(in_dim → hidden_dim) → LeakyReLU →
    Linear(hidden_dim → classes), or one Linear(in_dim → classes) when ``hidden_dim=0``.
    It needs ``hidden_dim`` and has no dendritic layer, so it ignores n_neurons,
    n_dendrites, n_dendrite_inputs, soma_enabled, strategy and the resampling fields
    (they are still validated, so that one search space can mix architectures).

    ``init_seed``, ``order_seed``, ``rewire_seed`` set one stream of randomness apart (the
    initial weights, the batch order with data_order="own", the rewiring draws); None, the
    default, derives the stream from ``seed`` exactly as a config without them, and
    :meth:`to_dict` leaves a None stream seed out, so such a config keeps its results and
    its trial key.

    A float field of -0.0 is stored as 0.0: the two train the same model, so they are one
    config (one key, one row), not two.
    """

    architecture: str = "dendritic_simple"
    n_neurons: int = 10
    n_dendrites: int = 6
    n_dendrite_inputs: int = 128
    soma_enabled: bool = True
    hidden_dim: int | None = None
    strategy: str = "random"
    synaptic_resampling: bool = True
    percentage_resample: float = 0.25
    steps_to_resample: int = 128
    lr: float = 5e-4
    weight_decay: float = 0.01
    seed: int = 0
    init_seed: int | None = None
    order_seed: int | None = None
    rewire_seed: int | None = None

    def __post_init__(self) -> None:
        for name in FLOAT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, float) and value == 0.0:  # -0.0 == 0.0
                object.__setattr__(self, name, 0.0)

    def shape(self, in_dim: int) -> "ModelShape":
        """The model's shape for inputs of ``in_dim`` features (see :class:`ModelShape`)."""
        if self.architecture == "mlp":
            return ModelShape("mlp", False, 0, 0, in_dim, self.hidden_dim or None,
                              "fully-connected")
        has_soma = self.soma_enabled and self.architecture != "soma_disabled"
        if self.architecture == "dendritic_with_hidden":
            hidden = self.hidden_dim if self.hidden_dim is not None else self.n_neurons
        elif self.architecture == "soma_disabled":
            hidden = self.n_neurons  # its n_neurons is the hidden Linear's width
        else:
            hidden = None
        k = in_dim if self.strategy == "fully-connected" else self.n_dendrite_inputs
        return ModelShape(self.architecture, has_soma, self.n_neurons if has_soma else 0,
                          self.n_dendrites, k, hidden, self.strategy)

    def to_dict(self) -> dict[str, Any]:
        """Every field, less the stream seeds that are None (so a config that sets none
        has the same dict, and the same trial key, as before stream seeds existed)."""
        out = dataclasses.asdict(self)
        for name in STREAM_SEED_FIELDS:
            if out[name] is None:
                del out[name]
        return out

    def stream_seeds(self) -> tuple[int, int, int]:
        """The seed of each stream (init, order, rewire): its own, or ``seed``."""
        return tuple(self.seed if getattr(self, name) is None else getattr(self, name)
                     for name in STREAM_SEED_FIELDS)

    def replace(self, **changes: Any) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, params: Mapping[str, Any], in_dim: int | None = None) -> "ModelConfig":
        """Build and validate a config from the original's parameter dict."""
        names = [f.name for f in dataclasses.fields(cls)]
        for key in params:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(names)}"
                raise ConfigError(f"unknown parameter {key!r}{hint}")
        config = cls(**{k: _coerce(k, v) for k, v in params.items()})
        config.validate(in_dim)
        return config

    def validate(self, in_dim: int | None = None) -> None:
        """Raise :class:`ConfigError` naming the parameter, its value and what is allowed."""
        _choice("architecture", self.architecture, ARCHITECTURES)
        _choice("strategy", self.strategy, STRATEGIES)
        for name in ("n_neurons", "n_dendrites", "n_dendrite_inputs"):
            check_capped_int(name, getattr(self, name), 1, INT32_MAX,
                             "a model's sizes are 32-bit integers")
        check_capped_int("steps_to_resample", self.steps_to_resample, 1, INT32_MAX,
                         "the trainer holds it as a 32-bit integer")
        if self.architecture == "mlp":
            if self.hidden_dim is None:
                raise ConfigError("architecture='mlp' needs hidden_dim: the hidden layer's "
                                  "width, an integer >= 0 (0 for a linear classifier)")
            check_capped_int("hidden_dim", self.hidden_dim, 0, INT32_MAX,
                             "a model's sizes are 32-bit integers")
        elif self.hidden_dim is not None:
            check_capped_int("hidden_dim", self.hidden_dim, 1, INT32_MAX,
                             "a model's sizes are 32-bit integers")
        if in_dim is not None and self.n_dendrite_inputs > in_dim:
            raise ConfigError(
                f"n_dendrite_inputs={shown(self.n_dendrite_inputs)} exceeds the {in_dim} input "
                f"features; allowed range is 1..{in_dim}")
        for name in ("soma_enabled", "synaptic_resampling"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r} must be True or False")
        check_number("percentage_resample", self.percentage_resample, 0.0, 1.0)
        for name in ("lr", "weight_decay"):
            check_number(name, getattr(self, name), 0.0)
        check_int("seed", self.seed, 0, MAX_SEED)
        for name in STREAM_SEED_FIELDS:
            check_int(name, getattr(self, name), 0, MAX_SEED, allow_none=True)


def _coerce(name: str, value: Any) -> Any:
    # Grids often carry numpy scalars; accept them as plain Python values.
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if name in INTEGER_FIELDS and isinstance(value, float) and value.is_integer():
        value = int(value)
    if name in FLOAT_FIELDS and isinstance(value, int) \
            and not isinstance(value, bool):
        try:
            value = float(value)
        except OverflowError:
            pass  # beyond any float: validation names the field and its range
    return value


def _choice(name: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        close = difflib.get_close_matches(str(value), options, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"unknown {name} {value!r}; {hint}choose one of {', '.join(options)}")


def count_params(config: ModelConfig, in_dim: int = 784, n_classes: int = 10) -> int:
    """Exact count of trainable parameters (see :func:`count_shape_params`).

    ``in_dim`` matters only for the "fully-connected" strategy, whose branches connect
    every input feature.
    """
    return count_shape_params(config.shape(in_dim), n_classes)
