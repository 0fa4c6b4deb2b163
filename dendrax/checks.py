"""Argument checks shared by every layer: each raises ConfigError naming the field, its
value and what is allowed. Pure Python; imports only dendrax.errors."""

from __future__ import annotations

import math
import numbers
from typing import Any

from dendrax.errors import ConfigError

# JAX's PRNGKey takes a signed 64-bit seed; 2**63 overflows inside it, after a compile.
MAX_SEED = 2**63 - 1
# The trainer keeps step counts and rewiring periods as int32 (dendrax.population):
# a larger value passes Python's checks and then overflows inside numpy or JAX.
INT32_MAX = 2**31 - 1
# Far beyond any real run (the original trains 15 epochs), and small enough that a typo
# such as n_epochs=10**20 is an error instead of a search that never ends.
MAX_EPOCHS = 100_000


def shown(value: Any, limit: int = 60) -> str:
    """repr(value) cut to ``limit`` characters, safe for integers too long to print
    (Python refuses to print one of over 4,300 digits), also inside lists and dicts."""
    try:
        text = repr(value)
    except ValueError:
        text = _safe_repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _safe_repr(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return repr(value)
        except ValueError:
            return f"<an integer of {value.bit_length()} bits>"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_safe_repr(k)}: {_safe_repr(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_safe_repr(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    return repr(value)


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


def check_capped_int(name: str, value: Any, low: int, high: int, why: str) -> int:
    """Like check_int(name, value, low), with a ceiling whose reason ``why`` the error
    gives: a value that is a plain integer but too large for what uses it."""
    value = check_int(name, value, low)
    if value > high:
        raise ConfigError(f"{name}={shown(value)} is out of range; it must be an integer in "
                          f"[{low}, {high}] ({why})")
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
