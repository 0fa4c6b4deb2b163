"""JAX's persistent compilation cache: compiled programs reused across processes.

dendrax turns it on the first time it compiles a population program, in the Python API
and the command line alike, so a second process running the same search loads its
programs from disk instead of compiling them. Short compiles are cached too.

Where: ``$JAX_COMPILATION_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/dendrax/jax``
(default ``~/.cache/dendrax/jax``). To turn it off: ``DENDRAX_COMPILATION_CACHE=0`` in
the environment, or :func:`disable_compilation_cache` before the first search.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_SWITCH = "DENDRAX_COMPILATION_CACHE"
_OFF = ("0", "off", "false", "no")
_state = {"decided": False, "folder": None, "disabled": False}


def cache_folder() -> Path:
    """The folder dendrax uses unless ``$JAX_COMPILATION_CACHE_DIR`` names another."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dendrax" / "jax"


def disable_compilation_cache() -> None:
    """Keep dendrax from turning on the persistent cache in this process (call it before
    the first search; a cache JAX was already told to use stays in use)."""
    _state.update(decided=True, disabled=True, folder=None)


def enable_compilation_cache() -> str | None:
    """Turn on JAX's persistent compilation cache (imports JAX); returns its folder, or
    None when it is off (opted out, or the folder cannot be created).

    Every compile is cached, however short: this sets JAX's minimum compile time and
    minimum entry size for caching to zero unless their own environment variables are set.
    """
    import jax

    if _state["disabled"] or os.environ.get(ENV_SWITCH, "").strip().lower() in _OFF:
        _state.update(decided=True, folder=None)
        return None
    folder = os.environ.get("JAX_COMPILATION_CACHE_DIR") or jax.config.jax_compilation_cache_dir
    if not folder:
        try:
            cache_folder().mkdir(parents=True, exist_ok=True)
        except OSError:
            _state.update(decided=True, folder=None)
            return None  # a read-only home: run without the cache
        folder = str(cache_folder())
        jax.config.update("jax_compilation_cache_dir", folder)
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    if "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES" not in os.environ:
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    _state.update(decided=True, folder=folder)
    return folder


def ensure_compilation_cache() -> str | None:
    """:func:`enable_compilation_cache` once per process (later calls are free)."""
    if not _state["decided"]:
        return enable_compilation_cache()
    return _state["folder"]
