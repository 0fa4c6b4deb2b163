"""Callbacks: plain Python hooks a search calls while it runs (no JAX, picklable data).

A callback is any object with one or both of

    on_epoch(bucket: str, epoch: int, members: list[dict]) -> None
        after every epoch of every population: ``members`` holds one dict per model in it,
        {"params": the config's searched parameters, "seed": its seed, "train_loss",
        "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy",
        "swaps": that epoch's values}. ``epoch`` counts from 1. Each call gets fresh
        dicts: writing to them (tagging ``members[i]["params"]`` for a tracker, say)
        changes nothing in the search.
    on_result(result: SearchResult) -> None
        once per configuration, as soon as all of its seeds have finished (the same
        object that ends up in ``searcher.results``: do not modify it).

A plain function is taken as ``on_result``. Subclass :class:`Callback` to get no-op
defaults. From the command line, ``--callback module:name`` names one: a class (built
with no arguments), an object, or a function.

How a search treats its callbacks (:func:`hooks` wraps each one):
  - a hook that raises an exception does not stop the search: the first failure of each
    hook is reported as a RuntimeWarning naming the hook and the error,
    later ones are counted silently, and the search, its log and its results go on as if
    the hook had returned (a tracker's hiccup must not cost a search);
  - ``sys.exit()`` in a hook stops the search like Ctrl-C: it raises
    :class:`CallbackExit`, a KeyboardInterrupt, so the log keeps every finished model,
    ``--resume`` continues, and ``dendrax search`` exits with status 130, never 0;
  - an ``async def`` hook (or one that returns an awaitable) is run to completion with
    asyncio before the search goes on (in a helper thread when an event loop already
    runs in this one, as in Jupyter);
  - the time spent in hooks (and in the progress display) is not training time: the
    search subtracts it from each model's ``train_time`` and its bucket's wall time.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import threading
import warnings
from typing import Any, Callable, Iterable, Sequence

from dendrax.errors import ConfigError


class Callback:
    """Base class with no-op hooks; override the ones you need."""

    def on_epoch(self, bucket: str, epoch: int, members: list[dict[str, Any]]) -> None:
        pass

    def on_result(self, result: Any) -> None:
        pass


class CallbackExit(KeyboardInterrupt):
    """A callback called ``sys.exit()``: the search stops as if interrupted (its log
    keeps what finished). ``code`` is the code it passed to ``sys.exit``."""

    def __init__(self, message: str, code: Any = None):
        super().__init__(message)
        self.code = code


class _ResultFunction(Callback):
    def __init__(self, function):
        self.function = function

    def on_result(self, result: Any) -> None:
        return self.function(result)

    def __repr__(self) -> str:
        return describe(self.function)


def describe(target: Any) -> str:
    """A short name for a callback: module.qualname of a function or class, else repr."""
    if isinstance(target, _ResultFunction):
        return describe(target.function)
    owner = target if inspect.isfunction(target) or inspect.ismethod(target) \
        or isinstance(target, type) else type(target)
    name = getattr(owner, "__qualname__", None) or repr(target)
    module = getattr(owner, "__module__", None)
    return f"{module}.{name}" if module and module != "builtins" else name


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


def _run_awaitable(awaitable: Any) -> Any:
    """Run a coroutine (or other awaitable) to completion and return its value."""

    async def wait() -> Any:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop in this thread: the usual case
        return asyncio.run(wait())
    # A loop already runs in this thread (Jupyter): it cannot be re-entered, so the hook
    # runs in a thread of its own, and the search waits for it.
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = asyncio.run(wait())
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = error

    thread = threading.Thread(target=run, name="dendrax-async-callback", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


class GuardedHook:
    """One callback hook as a search calls it: awaitables awaited, exceptions reported
    once and survived, ``sys.exit`` turned into :class:`CallbackExit` (see the module
    doc). ``failures`` counts the calls that raised."""

    def __init__(self, hook: Callable, name: str):
        self.hook = hook
        self.name = name
        self.failures = 0

    def __call__(self, *args: Any) -> None:
        try:
            value = self.hook(*args)
            if inspect.isawaitable(value):
                _run_awaitable(value)
        except SystemExit as exit_:
            raise CallbackExit(f"callback {self.name} called sys.exit({exit_.code!r})",
                               exit_.code) from None
        except Exception as error:  # noqa: BLE001 - a callback's failure is reported, survived
            self.failures += 1
            if self.failures == 1:
                warnings.warn(f"callback {self.name} raised {type(error).__name__}: {error}; "
                              f"the search goes on (its log and results are unaffected; "
                              f"further errors from this hook are not reported)",
                              RuntimeWarning, stacklevel=2)

    def __repr__(self) -> str:
        return f"GuardedHook({self.name})"


def hooks(callbacks: Sequence[Any], name: str) -> list[GuardedHook]:
    """The ``name`` hooks of ``callbacks`` that exist, each wrapped in a
    :class:`GuardedHook`."""
    out = []
    for cb in callbacks:
        hook = getattr(cb, name, None)
        if callable(hook):
            out.append(GuardedHook(hook, f"{describe(cb)}.{name}"
                                   if not isinstance(cb, _ResultFunction) else describe(cb)))
    return out


def load_callback(spec: str) -> Any:
    """``"module:name"`` → the callback it names (a class is instantiated with no
    arguments). Any failure (the module cannot be imported or raises while it is, the
    name is missing, the class needs arguments or raises when built) is a one-line
    ConfigError, before anything trains."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(f"--callback {spec!r}: write MODULE:NAME, e.g. mytracker:on_result")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"--callback {spec!r}: cannot import {module_name!r} ({e}); is it "
                          f"on PYTHONPATH?") from None
    except BaseException as e:  # noqa: BLE001 - the module's own code raised at import
        if isinstance(e, KeyboardInterrupt):
            raise
        raise ConfigError(f"--callback {spec!r}: importing {module_name!r} raised "
                          f"{type(e).__name__}: {e}") from None
    try:
        target = getattr(module, attribute)
    except AttributeError:
        raise ConfigError(f"--callback {spec!r}: module {module_name!r} has no "
                          f"{attribute!r}") from None
    if isinstance(target, type):
        try:
            target = target()
        except BaseException as e:  # noqa: BLE001 - its __init__ needs arguments, or raised
            if isinstance(e, KeyboardInterrupt):
                raise
            raise ConfigError(f"--callback {spec!r}: cannot build {attribute} with no "
                              f"arguments ({type(e).__name__}: {e}); --callback builds a "
                              f"class as NAME(), so give its arguments defaults or name an "
                              f"instance instead") from None
    return as_callbacks([target])[0]
