"""Callbacks: plain Python hooks a search calls while it runs (no JAX, picklable data).

A callback is any object with one or both of

    on_epoch(bucket: str, epoch: int, members: list[dict]) -> None
        after every epoch of every population: ``members`` holds one dict per model in it,
        {"params": the config's searched parameters, "seed": its seed, "train_loss",
        "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy",
        "swaps": that epoch's values}. ``epoch`` counts from 1.
    on_result(result: SearchResult) -> None
        once per configuration, as soon as all of its seeds have finished (the same
        object that ends up in ``searcher.results``).

A plain function is taken as ``on_result``. Subclass :class:`Callback` to get no-op
defaults. From the command line, ``--callback module:name`` names one: a class (built
with no arguments), an object, or a function.
"""

from __future__ import annotations

import importlib
from typing import Any, Iterable, Sequence

from dendrax.errors import ConfigError


class Callback:
    """Base class with no-op hooks; override the ones you need."""

    def on_epoch(self, bucket: str, epoch: int, members: list[dict[str, Any]]) -> None:
        pass

    def on_result(self, result: Any) -> None:
        pass


class _ResultFunction(Callback):
    def __init__(self, function):
        self.function = function

    def on_result(self, result: Any) -> None:
        self.function(result)


def as_callbacks(callbacks: Iterable[Any] | None) -> list[Any]:
    """Objects with ``on_epoch``/``on_result`` (a function becomes an ``on_result``);
    ConfigError for anything else."""
    out = []
    for cb in callbacks or ():
        if callable(getattr(cb, "on_epoch", None)) or callable(getattr(cb, "on_result", None)):
            out.append(cb)
        elif callable(cb):
            out.append(_ResultFunction(cb))
        else:
            raise ConfigError(f"callbacks: {cb!r} has neither on_epoch nor on_result and is "
                              f"not a function (see dendrax.search.callbacks)")
    return out


def hooks(callbacks: Sequence[Any], name: str) -> list:
    """The bound ``name`` hooks of ``callbacks`` that exist."""
    return [h for h in (getattr(cb, name, None) for cb in callbacks) if callable(h)]


def load_callback(spec: str) -> Any:
    """``"module:name"`` → the callback it names (a class is instantiated)."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(f"--callback {spec!r}: write MODULE:NAME, e.g. mytracker:on_result")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"--callback {spec!r}: cannot import {module_name!r} ({e}); is it "
                          f"on PYTHONPATH?") from None
    try:
        target = getattr(module, attribute)
    except AttributeError:
        raise ConfigError(f"--callback {spec!r}: module {module_name!r} has no "
                          f"{attribute!r}") from None
    if isinstance(target, type):
        target = target()
    return as_callbacks([target])[0]
