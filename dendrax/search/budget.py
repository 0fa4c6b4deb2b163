"""The parameter budget: a range min_param_ratio × max_params ≤ count ≤ max_params."""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from dendrax.checks import check_int, check_number
from dendrax.errors import ConfigError

# Beyond 2**53 a float no longer holds every integer, so floor(ratio × max) would be off;
# no model of dendrax's comes near it.
MAX_BUDGET = 2**53


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
        # Plain int and float from here on (numpy scalars included), so counts compare,
        # print and serialise alike.
        object.__setattr__(self, "max_params", check_int("max_params", self.max_params, 1,
                                                         MAX_BUDGET))
        try:
            ratio = check_number("min_param_ratio", self.min_param_ratio, 0.0, 1.0,
                                 open_low=True)
        except ConfigError as e:
            raise ConfigError(f"{e} (the share of max_params a model must use at least)") \
                from None
        object.__setattr__(self, "min_param_ratio", ratio)

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
