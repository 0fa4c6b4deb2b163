"""JAX's persistent compilation cache: compiled programs reused across processes."""

from __future__ import annotations

import os
from pathlib import Path


def enable_compilation_cache() -> str | None:
    """Turn on JAX's persistent compilation cache (imports JAX); returns its folder.

    ``$JAX_COMPILATION_CACHE_DIR`` wins (JAX reads it itself); otherwise
    ``$XDG_CACHE_HOME/dendrax/jax`` (default ``~/.cache/dendrax/jax``).
    """
    import jax

    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return os.environ["JAX_COMPILATION_CACHE_DIR"]
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dendrax" / "jax"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only home: run without the cache
    jax.config.update("jax_compilation_cache_dir", str(folder))
    return str(folder)
