"""The one error boundary: every problem with what a user gave dendrax is a DendraxError.

This module imports nothing, so every part of dendrax (JAX-free or not) can use it.

- ``DendraxError``: the base class. Its message names the parameter, file or line, the
  value, and what is allowed. The command line prints it as one line and exits 2.
- ``ModelTooLargeError``: one model alone does not fit in device memory.

- ``ConfigError``: a configuration, searcher argument, search space or setting is unknown,
  of the wrong type or out of range (``BudgetError`` and the command line's ``UsageError``
  derive from it).

The other subclasses live next to what they check: ``DataError`` (dendrax.data: data files and arrays),
``LogError`` (dendrax.search.log: the search log) and ``OutputError`` (dendrax.search.results:
an output file that cannot be written). Anything else that escapes dendrax is a
bug, and keeps its traceback.
"""

from __future__ import annotations


class DendraxError(Exception):
    """A bad input, file or setting; the message says which, its value, and what is allowed."""


class ModelTooLargeError(DendraxError, RuntimeError):
    """A single model's estimated device memory exceeds what the device has free."""


class ConfigError(DendraxError, ValueError):
    """A configuration value is unknown, of the wrong type or out of range."""
