"""Model configurations: one typed, validated value per trial, and exact parameter counts.

Field names and defaults follow the original toolkit, so a dict of the original's
hyperparameters maps 1:1 onto a :class:`ModelConfig`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
from typing import Any, Mapping, NamedTuple

from dendrax.errors import DendraxError

ARCHITECTURES = ("dendritic_simple", "soma_disabled", "dendritic_with_hidden", "mlp")
STRATEGIES = ("random", "local-receptive-fields", "fully-connected")
INTEGER_FIELDS = ("n_neurons", "n_dendrites", "n_dendrite_inputs", "hidden_dim",
                  "steps_to_resample", "seed")


class ConfigError(DendraxError, ValueError):
    """A configuration value is unknown, of the wrong type or out of range."""


class ModelSizes(NamedTuple):
    """The sizes of a model: plain ints for a shape, or traced int scalars for one member
    running at its own sizes inside a padded population (dendrax.search.plan)."""

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
        return dataclasses.asdict(self)

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
        for name in ("n_neurons", "n_dendrites", "n_dendrite_inputs", "steps_to_resample"):
            check_int(name, getattr(self, name), 1)
        if self.architecture == "mlp":
            if self.hidden_dim is None:
                raise ConfigError("architecture='mlp' needs hidden_dim: the hidden layer's "
                                  "width, an integer >= 0 (0 for a linear classifier)")
            check_int("hidden_dim", self.hidden_dim, 0)
        elif self.hidden_dim is not None:
            check_int("hidden_dim", self.hidden_dim, 1)
        if in_dim is not None and self.n_dendrite_inputs > in_dim:
            raise ConfigError(
                f"n_dendrite_inputs={self.n_dendrite_inputs} exceeds the {in_dim} input "
                f"features; allowed range is 1..{in_dim}")
        for name in ("soma_enabled", "synaptic_resampling"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r} must be True or False")
        check_number("percentage_resample", self.percentage_resample, 0.0, 1.0)
        for name in ("lr", "weight_decay"):
            check_number(name, getattr(self, name), 0.0)
        check_int("seed", self.seed, 0, MAX_SEED)


def _coerce(name: str, value: Any) -> Any:
    # Grids often carry numpy scalars; accept them as plain Python values.
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if name in INTEGER_FIELDS and isinstance(value, float) and value.is_integer():
        value = int(value)
    if name in ("percentage_resample", "lr", "weight_decay") and isinstance(value, int) \
            and not isinstance(value, bool):
        value = float(value)
    return value


def _choice(name: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        close = difflib.get_close_matches(str(value), options, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"unknown {name} {value!r}; {hint}choose one of {', '.join(options)}")


# JAX's PRNGKey takes a signed 64-bit seed; 2**63 overflows inside it, after a compile.
MAX_SEED = 2**63 - 1


def shown(value: Any, limit: int = 60) -> str:
    """repr(value) cut to ``limit`` characters (and safe for ints too long to print)."""
    try:
        text = repr(value)
    except ValueError:  # Python refuses to print ints of more than 4,300 digits
        return f"<an integer of {value.bit_length()} bits>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _string_hint(value: Any) -> str:
    """Why a number arrived as a string, when it looks like one (YAML reads 1e-3 so)."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        return (" (it is the string {!r}: write it as a number; YAML reads exponents "
                "without a dot, like 1e-3, as strings, so write 1.0e-3)".format(value))
    return ""


def check_int(name: str, value: Any, low: int, high: int | None = None, *,
              allow_none: bool = False) -> int | None:
    """``value`` as a plain int, or ConfigError naming ``name``, the value and the range.

    Any integer type is accepted (numpy's included); bool is refused although Python
    counts it as an integer (``n_epochs=True`` is a mistake, not 1 epoch).
    """
    if value is None and allow_none:
        return None
    span = f">= {low}" if high is None else f"in [{low}, {high}]"
    wanted = f"{'None or ' if allow_none else ''}an integer {span}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name}={shown(value)} must be {wanted}{_string_hint(value)}")
    value = int(value)
    if value < low or (high is not None and value > high):
        raise ConfigError(f"{name}={shown(value)} is out of range; it must be {wanted}")
    return value


def check_number(name: str, value: Any, low: float | None = None, high: float | None = None,
                 *, open_low: bool = False, open_high: bool = False) -> float:
    """``value`` as a finite float within the bounds, or ConfigError naming it.

    NaN and infinities are refused everywhere: they cannot be written to the log (JSON
    has no such numbers), and two configs differing only in them would share a key.
    """
    left, right = "(" if open_low else "[", ")" if open_high else "]"
    if low is not None and high is not None:
        span = f" in {left}{low:g}, {high:g}{right}"
    elif low is not None:
        span = f" {'>' if open_low else '>='} {low:g}"
    else:
        span = ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name}={shown(value)} must be a number{span}{_string_hint(value)}")
    try:
        value = float(value)
    except OverflowError:  # an int beyond the float range
        raise ConfigError(f"{name}={shown(value)} is too large; it must be a number{span}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name}={shown(value)} must be a finite number{span}")
    ok = ((low is None or (value > low if open_low else value >= low))
          and (high is None or (value < high if open_high else value <= high)))
    if not ok:
        raise ConfigError(f"{name}={shown(value)} must be a number{span}")
    return value


def count_params(config: ModelConfig, in_dim: int = 784, n_classes: int = 10) -> int:
    """Exact count of trainable parameters (see :func:`count_shape_params`).

    ``in_dim`` matters only for the "fully-connected" strategy, whose branches connect
    every input feature.
    """
    return count_shape_params(config.shape(in_dim), n_classes)


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
