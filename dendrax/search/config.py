"""Model configurations: one typed, validated value per trial, and exact parameter counts.

Field names and defaults follow the original toolkit, so a dict of the original's
hyperparameters maps 1:1 onto a :class:`ModelConfig`.
"""

from __future__ import annotations

import dataclasses
import difflib
import numbers
from typing import Any, Mapping

ARCHITECTURES = ("dendritic_simple", "soma_disabled", "dendritic_with_hidden")
STRATEGIES = ("random", "local-receptive-fields", "fully-connected")


class ConfigError(ValueError):
    """A configuration value is unknown, of the wrong type or out of range."""


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """One trial: architecture, shape, resampling rule, optimiser values and seed.

    Defaults are the original toolkit's (``create_model`` and ``HyperparameterSearcher``).
    ``hidden_dim=None`` means ``n_neurons`` (``dendritic_with_hidden`` only).
    ``soma_disabled`` always builds its dendritic layer without a soma.
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

    # ---- derived shape -------------------------------------------------------------
    @property
    def has_soma(self) -> bool:
        return self.soma_enabled and self.architecture != "soma_disabled"

    @property
    def n_branches(self) -> int:
        """Branches in the dendritic layer: n_neurons × n_dendrites, or n_dendrites without soma."""
        return self.n_neurons * self.n_dendrites if self.has_soma else self.n_dendrites

    @property
    def dendritic_out(self) -> int:
        return self.n_neurons if self.has_soma else self.n_dendrites

    @property
    def hidden_width(self) -> int | None:
        """Width of the hidden Linear layer, or None when the architecture has none."""
        if self.architecture == "dendritic_with_hidden":
            return self.hidden_dim if self.hidden_dim is not None else self.n_neurons
        if self.architecture == "soma_disabled":
            return self.n_neurons
        return None

    def inputs_per_branch(self, in_dim: int) -> int:
        """k: connections per branch; "fully-connected" connects every input feature."""
        return in_dim if self.strategy == "fully-connected" else self.n_dendrite_inputs

    def shape_key(self, in_dim: int) -> tuple:
        """Everything that fixes array shapes or the program: configs with equal keys
        train together in one compiled population."""
        return (self.architecture, self.has_soma, self.n_neurons if self.has_soma else 0,
                self.n_dendrites, self.inputs_per_branch(in_dim), self.hidden_width,
                self.strategy)

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
            _int_at_least(name, getattr(self, name), 1)
        if self.hidden_dim is not None:
            _int_at_least("hidden_dim", self.hidden_dim, 1)
        if in_dim is not None and self.n_dendrite_inputs > in_dim:
            raise ConfigError(
                f"n_dendrite_inputs={self.n_dendrite_inputs} exceeds the {in_dim} input "
                f"features; allowed range is 1..{in_dim}")
        for name in ("soma_enabled", "synaptic_resampling"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r} must be True or False")
        pct = self.percentage_resample
        if not isinstance(pct, numbers.Real) or isinstance(pct, bool) or not 0.0 <= pct <= 1.0:
            raise ConfigError(f"percentage_resample={pct!r} must be a number in [0, 1]")
        for name in ("lr", "weight_decay"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name}={value!r} must be a number >= 0")
        if not isinstance(self.seed, numbers.Integral) or isinstance(self.seed, bool) or self.seed < 0:
            raise ConfigError(f"seed={self.seed!r} must be an integer >= 0")


def _coerce(name: str, value: Any) -> Any:
    # Grids often carry numpy scalars; accept them as plain Python values.
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    field_types = {"n_neurons": int, "n_dendrites": int, "n_dendrite_inputs": int,
                   "hidden_dim": int, "steps_to_resample": int, "seed": int}
    if name in field_types and isinstance(value, float) and value.is_integer():
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


def _int_at_least(name: str, value: Any, low: int) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} must be an integer >= {low}")
    if value < low:
        raise ConfigError(f"{name}={value} is out of range; it must be an integer >= {low}")


def count_params(config: ModelConfig, in_dim: int = 784, n_classes: int = 10) -> int:
    """Exact count of trainable parameters.

    Each branch counts its k connections (never the dense in_dim row), plus one bias;
    the soma has one weight per branch (block-diagonal) and one bias per neuron; Linear
    layers count fan_in × fan_out + fan_out. ``in_dim`` matters only for the
    "fully-connected" strategy, whose branches connect every input feature.
    """
    branches = config.n_branches
    total = branches * config.inputs_per_branch(in_dim) + branches
    if config.has_soma:
        total += branches + config.n_neurons
    width = config.dendritic_out
    hidden = config.hidden_width
    if hidden is not None:
        total += width * hidden + hidden
        width = hidden
    return total + width * n_classes + n_classes
