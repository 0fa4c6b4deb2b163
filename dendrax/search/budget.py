"""The parameter budget: a range min_param_ratio × max_params ≤ count ≤ max_params."""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Sequence

from dendrax.errors import ConfigError


class BudgetError(ConfigError):
    """No configuration of a search fits the parameter budget."""


@dataclasses.dataclass(frozen=True)
class Rejection:
    """A configuration left out before training, with its exact count and why."""

    params: dict[str, Any]
    total_params: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Budget:
    """Allowed parameter counts. ``min_params`` is floor(ratio × max), as in the original."""

    max_params: int = 8000
    min_param_ratio: float = 0.8

    def __post_init__(self) -> None:
        if (not isinstance(self.max_params, numbers.Integral) or isinstance(self.max_params, bool)
                or self.max_params <= 0):
            raise ConfigError(f"max_params={self.max_params!r} must be an integer > 0")
        ratio = self.min_param_ratio
        if not isinstance(ratio, numbers.Real) or isinstance(ratio, bool) or not 0 < ratio <= 1:
            raise ConfigError(f"min_param_ratio={ratio!r} must be a number in (0, 1] "
                              f"(the share of max_params a model must use at least)")

    @property
    def min_params(self) -> int:
        return int(self.max_params * self.min_param_ratio)

    def reason(self, count: int) -> str | None:
        """None if ``count`` fits, else a short reason such as "7,198 > max 7,000"."""
        if count > self.max_params:
            return f"{count:,} > max {self.max_params:,}"
        if count < self.min_params:
            return (f"{count:,} below {self.min_param_ratio * 100:.0f}% floor "
                    f"({self.min_params:,})")
        return None

    def distance(self, count: int) -> int:
        """How many parameters ``count`` lies outside the range (0 inside)."""
        return max(0, count - self.max_params, self.min_params - count)

    def describe(self) -> str:
        return (f"{self.min_params:,}-{self.max_params:,} parameters "
                f"({self.min_param_ratio * 100:.0f}%-100% of {self.max_params:,})")

    def to_dict(self) -> dict[str, Any]:
        return {"max_params": self.max_params, "min_param_ratio": self.min_param_ratio,
                "min_params": self.min_params}


def no_fit_error(budget: Budget, rejections: Sequence[Rejection]) -> BudgetError:
    """The error for a search none of whose configs fits: it names the closest one."""
    closest = min(rejections, key=lambda r: budget.distance(r.total_params))
    return BudgetError(
        f"no configuration fits the budget of {budget.describe()}: all {len(rejections)} "
        f"were rejected. Closest: {closest.params} with {closest.total_params:,} parameters "
        f"({closest.reason}). Widen the search space, raise max_params or lower "
        f"min_param_ratio.")
