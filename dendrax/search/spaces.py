"""Search spaces: distributions, grid expansion and seeded sampling.

Pure Python: nothing here knows about models or training. A *space* maps a parameter
name to a distribution; a *grid* maps a parameter name to a list of values. Both follow
the original toolkit's formats (see :func:`parse_distribution`).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import numbers
import random
from typing import Any, Callable, Iterator, Mapping, Sequence

from dendrax.config import INTEGER_FIELDS
from dendrax.errors import ConfigError


def plain(value: Any) -> Any:
    """numpy scalars/arrays -> Python values, tuples -> lists (so specs are JSON-able),
    -0.0 -> 0.0 (the same value to every model: one config, one spec)."""
    if hasattr(value, "tolist") and callable(value.tolist):
        value = value.tolist()
    if isinstance(value, float) and value == 0.0:
        return 0.0
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _finite(value: numbers.Real) -> bool:
    # Python ints are always finite (and may be too large to convert to a float).
    return isinstance(value, numbers.Integral) or math.isfinite(value)


# ---- distributions -------------------------------------------------------------------
# Each distribution samples one value from a random.Random; to_spec() is its canonical,
# JSON-able description (used in the log's spec hash and in save_results).

@dataclasses.dataclass(frozen=True)
class Fixed:
    """Always the same value (the original passes non-list, non-tuple, non-dict values through)."""

    value: Any

    def sample(self, rng: random.Random) -> Any:
        return self.value

    def to_spec(self) -> dict:
        return {"type": "fixed", "value": plain(self.value)}


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of ``values``, uniformly."""

    values: tuple

    def sample(self, rng: random.Random) -> Any:
        return rng.choice(self.values)

    def to_spec(self) -> dict:
        return {"type": "choice", "values": plain(list(self.values))}


@dataclasses.dataclass(frozen=True)
class IntRange:
    """An integer in [low, high], BOTH ends inclusive (the original used random.randint)."""

    low: int
    high: int

    def sample(self, rng: random.Random) -> int:
        return rng.randint(self.low, self.high)

    def to_spec(self) -> dict:
        return {"type": "randint", "low": self.low, "high": self.high}


@dataclasses.dataclass(frozen=True)
class Uniform:
    """A float in [low, high]."""

    low: float
    high: float

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)

    def to_spec(self) -> dict:
        return {"type": "uniform", "low": self.low, "high": self.high}


@dataclasses.dataclass(frozen=True)
class LogUniform:
    """A float in [low, high] whose logarithm is uniform (for lr and weight_decay); low > 0."""

    low: float
    high: float

    def sample(self, rng: random.Random) -> float:
        return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))

    def to_spec(self) -> dict:
        return {"type": "loguniform", "low": self.low, "high": self.high}


Distribution = Fixed | Choice | IntRange | Uniform | LogUniform
DISTRIBUTION_TYPES = ("uniform", "choice", "randint", "loguniform")


def _bounds(name: str, low: Any, high: Any, integer: bool) -> tuple:
    low, high = plain(low), plain(high)
    for label, v in (("low", low), ("high", high)):
        whole = isinstance(v, numbers.Integral) or (isinstance(v, float) and v.is_integer())
        if not _is_number(v) or not _finite(v) or (integer and not whole):
            kind = "an integer" if integer else "a finite number"
            why = f" ({name} takes integers)" if integer and name in INTEGER_FIELDS else ""
            raise ConfigError(f"distribution for {name!r}: {label}={v!r} must be {kind}{why}")
    if low > high:
        raise ConfigError(f"distribution for {name!r}: low={low!r} > high={high!r}")
    return (int(low), int(high)) if integer else (float(low), float(high))


def candidate_values(dist: Distribution) -> tuple:
    """Values whose validity implies every draw's: a choice's values, a range's two ends
    (every value between two valid ends is valid), a fixed value."""
    if isinstance(dist, Choice):
        return dist.values
    if isinstance(dist, Fixed):
        return (dist.value,)
    return (dist.low, dist.high)


def parse_distribution(name: str, spec: Any) -> Distribution:
    """Turn one entry of ``param_distributions`` into a distribution.

    Formats (the original's, plus "loguniform"):
      - list                      -> Choice (uniform over the list)
      - (low, high) 2-tuple       -> IntRange, both ends inclusive, if both are integers;
                                     Uniform [low, high] if either is a float
      - {"type": "choice", "values": [...]}
      - {"type": "randint", "low": a, "high": b}   integers in [a, b], b INCLUSIVE
        (like Python's random.randint, which the original used; numpy's excludes b)
      - {"type": "uniform", "low": a, "high": b}   floats in [a, b]
      - {"type": "loguniform", "low": a, "high": b}
      - anything else (a number, a string, a bool, None) -> Fixed
    """
    if isinstance(spec, (Fixed, Choice, IntRange, Uniform, LogUniform)):
        return spec
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"distribution for {name!r}: empty list of choices")
        return Choice(tuple(plain(spec)))
    if isinstance(spec, tuple):
        if len(spec) != 2:
            raise ConfigError(f"distribution for {name!r}: a tuple must be (low, high); "
                              f"got {len(spec)} items (use a list for choices)")
        integer = name in INTEGER_FIELDS or all(
            _is_number(v) and isinstance(plain(v), numbers.Integral) for v in spec)
        low, high = _bounds(name, spec[0], spec[1], integer)
        return IntRange(low, high) if integer else Uniform(low, high)
    if isinstance(spec, Mapping):
        kind = spec.get("type")
        if kind not in DISTRIBUTION_TYPES:
            raise ConfigError(f"distribution for {name!r}: unknown type {kind!r}; "
                              f"choose one of {', '.join(DISTRIBUTION_TYPES)}")
        expected = {"type", "values"} if kind == "choice" else {"type", "low", "high"}
        missing, extra = expected - set(spec), set(spec) - expected
        if missing or extra:
            raise ConfigError(f"distribution for {name!r} of type {kind!r} needs exactly the "
                              f"keys {sorted(expected)}; missing {sorted(missing)}, "
                              f"unexpected {sorted(extra)}")
        if kind == "choice":
            values = spec["values"]
            if not isinstance(values, (list, tuple)) or not values:
                raise ConfigError(f"distribution for {name!r}: 'values' must be a non-empty list")
            return Choice(tuple(plain(list(values))))
        if kind in ("uniform", "loguniform") and name in INTEGER_FIELDS:
            raise ConfigError(f"distribution for {name!r}: type {kind!r} draws floats, but "
                              f"{name} takes integers; use 'randint'")
        low, high = _bounds(name, spec["low"], spec["high"], integer=(kind == "randint"))
        if kind == "randint":
            return IntRange(low, high)
        if kind == "loguniform" and low <= 0:
            raise ConfigError(f"distribution for {name!r}: loguniform needs low > 0, got {low!r}")
        return Uniform(low, high) if kind == "uniform" else LogUniform(low, high)
    return Fixed(plain(spec))


def parse_space(param_distributions: Mapping[str, Any]) -> dict[str, Distribution]:
    """Parse every entry of a random-search space (insertion order is kept: it fixes the
    order in which values are drawn, and so the samples of a given seed)."""
    if not isinstance(param_distributions, Mapping):
        raise ConfigError("param_distributions must be a dict of parameter name -> distribution")
    if not param_distributions:
        raise ConfigError("empty search space: param_distributions has no parameters")
    return {str(k): parse_distribution(str(k), v) for k, v in param_distributions.items()}


def space_spec(space: Mapping[str, Distribution]) -> dict:
    return {name: dist.to_spec() for name, dist in space.items()}


def _value_key(value: Any) -> str:
    """A hashable identity of one drawn value (values may be lists)."""
    try:
        return json.dumps(plain(value), sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def distinct_values(dist: Distribution) -> int | None:
    """How many distinct values ``dist`` can draw; None for a continuous range."""
    if isinstance(dist, Fixed):
        return 1
    if isinstance(dist, Choice):
        return len({_value_key(v) for v in dist.values})
    if isinstance(dist, IntRange):
        return dist.high - dist.low + 1
    return 1 if dist.low == dist.high else None  # Uniform, LogUniform


def space_size(space: Mapping[str, Distribution]) -> int | None:
    """How many distinct parameter dicts ``space`` can draw (the product of each
    distribution's distinct values), or None when one of them is continuous (a uniform or
    loguniform range with low < high). Distinct dicts may still be one config (8 and 8.0
    for an integer parameter), so this bounds the distinct configs from above."""
    size = 1
    for dist in space.values():
        count = distinct_values(dist)
        if count is None:
            return None
        size *= count
    return size


def params_key(params: Mapping[str, Any]) -> tuple:
    """A hashable identity of one drawn parameter dict (see :func:`space_size`)."""
    return tuple((name, _value_key(value)) for name, value in params.items())


def sample_space(space: Mapping[str, Distribution], n_trials: int, rng: random.Random,
                 *, stop_when_exhausted: bool = False) -> list[dict[str, Any]]:
    """Draw ``n_trials`` parameter dicts; each draws its parameters in the space's order.

    ``stop_when_exhausted``: for a finite space (:func:`space_size`) of fewer points than
    ``n_trials``, stop as soon as every distinct dict has been drawn. Every later draw
    would repeat one, and repeated draws train once, so the result is a prefix of the
    full draw that holds the same configs in the same order of first appearance; a space
    of 5 points and ``n_trials=10**6`` then takes a few dozen draws, not a million."""
    size = space_size(space) if stop_when_exhausted else None
    if size is None or size >= n_trials:
        return [{name: dist.sample(rng) for name, dist in space.items()}
                for _ in range(n_trials)]
    drawn: list[dict[str, Any]] = []
    seen: set[tuple] = set()
    while len(drawn) < n_trials and len(seen) < size:
        params = {name: dist.sample(rng) for name, dist in space.items()}
        drawn.append(params)
        seen.add(params_key(params))
    return drawn


# ---- grids ----------------------------------------------------------------------------

def parse_grid(param_grid: Mapping[str, Any]) -> dict[str, list]:
    """Normalise a grid: each value is a list of candidates. A scalar (including a string)
    is one candidate; an empty list is an error, since it would make the product empty."""
    if not isinstance(param_grid, Mapping):
        raise ConfigError("param_grid must be a dict of parameter name -> list of values")
    if not param_grid:
        raise ConfigError("empty grid: param_grid has no parameters")
    grid: dict[str, list] = {}
    for name, values in param_grid.items():
        if isinstance(values, (list, tuple, range)) or (
                hasattr(values, "tolist") and getattr(values, "ndim", 0) > 0):
            values = plain(list(values))
        else:
            values = [plain(values)]
        if not values:
            raise ConfigError(f"empty grid: {name!r} has no values")
        grid[str(name)] = values
    return grid


def grid_size(grid: Mapping[str, Sequence]) -> int:
    """Number of combinations of a parsed grid: the product of its value counts."""
    return math.prod(len(values) for values in grid.values())


def grid_combination(grid: Mapping[str, Sequence], index: int) -> dict[str, Any]:
    """Combination number ``index`` of a parsed grid, in itertools.product order.

    The index is a mixed-radix number whose last digit (radix: the last parameter's value
    count) varies fastest: digit_j = (index // prod_{i>j} n_i) mod n_j.
    """
    digits: dict[str, Any] = {}
    for name in reversed(list(grid)):
        index, digit = divmod(index, len(grid[name]))
        digits[name] = grid[name][digit]
    return {name: digits[name] for name in grid}


def expand_grid(param_grid: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every combination, in itertools.product order (last parameter varies fastest)."""
    grid = parse_grid(param_grid)
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*grid.values())]


# How many combinations a grid draw examines at most before giving up on filling
# max_trials: bounds the time a budget that rejects nearly everything can take.
MAX_GRID_CHECKS = 100_000


@dataclasses.dataclass(frozen=True)
class GridDraw:
    """What :func:`sample_grid` drew: the combinations (in grid order), how many it
    examined, and the grid's size."""

    combinations: list
    checked: int
    size: int

    @property
    def exhausted(self) -> bool:
        """True when every combination of the grid was examined."""
        return self.checked >= self.size


def _distinct_indices(size: int, rng: random.Random, max_checks: int) -> Iterator[int]:
    """Indices of range(size) in a uniformly random order, lazily, never materialising
    more than ``max_checks`` of them when the grid is larger than that."""
    if size <= max_checks:
        yield from rng.sample(range(size), size)
        return
    seen: set[int] = set()
    while len(seen) < size:
        index = rng.randrange(size)
        if index not in seen:
            seen.add(index)
            yield index


def sample_grid(param_grid: Mapping[str, Any], max_trials: int | None, rng: random.Random,
                accept: Callable[[dict], bool] | None = None,
                max_checks: int = MAX_GRID_CHECKS) -> GridDraw:
    """At most ``max_trials`` combinations with ``accept(c)`` true, drawn WITHOUT
    replacement and uniformly among those, kept in grid order.

    Lazy: combination indices are drawn at random and decoded by
    :func:`grid_combination`, so a grid of any size is never materialised. Drawing stops
    when ``max_trials`` are accepted, the grid is exhausted, or ``max_checks``
    combinations were examined. ``max_trials=None`` takes the whole grid (every
    combination examined, in grid order).
    """
    grid = parse_grid(param_grid)
    size = grid_size(grid)
    if max_trials is None:
        combos = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]
        kept = [c for c in combos if accept is None or accept(c)]
        return GridDraw(kept, size, size)
    picked: list[int] = []
    checked = 0
    for index in _distinct_indices(size, rng, max_checks):
        if len(picked) >= max_trials or checked >= max_checks:
            break
        checked += 1
        if accept is None or accept(grid_combination(grid, index)):
            picked.append(index)
    return GridDraw([grid_combination(grid, i) for i in sorted(picked)], checked, size)
