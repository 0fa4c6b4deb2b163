"""A finished search as TensorBoard runs (``pip install 'dendrax[tensorboard]'``, which
brings tensorboardX: it writes TensorBoard's event files without TensorFlow).

One run (a subfolder of ``logdir``) per configuration, holding
  scalars per epoch (mean over seeds): val_accuracy, test_accuracy, train_accuracy,
      train_loss, val_loss, test_loss, swaps;
  the HParams plugin's summary: the searched hyperparameters and the final metrics
      hparams/val_accuracy, hparams/test_accuracy (means over seeds) and hparams/params,
      which TensorBoard's HPARAMS tab tabulates and plots against each other.

One export per folder: a ``logdir`` that already holds TensorBoard event files (an earlier
export, or any other run) is refused with an ExportError, since a second export would
write every scalar again beside the first, and an export of a resumed, larger log would
leave the old runs beside the new. Export into a new folder (``tensorboard --logdir`` on
their parent shows several side by side), or delete the old one. The folder is checked
before anything is written (:func:`check_logdir`); a failure while writing (a full disk, a
permission) is an ExportError naming the folder, and removes the run folders this export
created, so the export can simply be run again.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from typing import Any, Sequence

from dendrax.export.common import (ExportError, check_folder, export_settings, finite,
                                   hyperparameters, require, run_name, text_target, writing)
from dendrax.search.record import SearchRecord
from dendrax.search.results import epoch_stats
from dendrax.search.table import hyperparameter_names, varying_parameters
from dendrax.spec import METRICS

FINAL_METRICS = ("hparams/val_accuracy", "hparams/test_accuracy", "hparams/params")


EXAMPLE = "tb/"
URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
INT64 = 2 ** 63


def _hparam_value(value: Any) -> Any:
    """HParams values are bool, number or string; anything else is written as text, and
    an integer beyond 64 bits (``max_params=10**23``, which numpy cannot hold) as a float
    (or as text beyond a float's range)."""
    if isinstance(value, int) and not isinstance(value, bool) and not -INT64 <= value < INT64:
        try:
            return float(value)
        except OverflowError:
            return str(value)
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def event_files(logdir: str, limit: int = 3, scan: int = 10_000) -> list[str]:
    """Up to ``limit`` TensorBoard event files in ``logdir`` or its subfolders (where
    every exporter writes its runs; deeper ones are not looked at), sorted, looking at
    no more than ``scan`` entries."""
    found: list[str] = []
    folders = [logdir]
    seen = 0
    for depth in range(2):
        deeper = []
        for folder in folders:
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                seen += 1
                if ".tfevents." in entry.name:
                    found.append(entry.path)
                elif depth == 0 and entry.is_dir(follow_symlinks=False):
                    deeper.append(entry.path)
                if len(found) >= limit or seen >= scan:
                    return sorted(found)
        folders = deeper
    return sorted(found)


def check_logdir(logdir: Any, what: str = "to_tensorboard logdir", *,
                 avoid: Sequence[Any] = ()) -> str:
    """Check a TensorBoard folder before writing anything and return it as a str: a
    local folder (not a URL), writable and holding no event files yet, or one that can
    be created. ``what``
    names it in messages ("--to-tensorboard" on the command line); ``avoid`` holds paths
    it must not be (the search log). Raises ExportError."""
    require("tensorboardX", "tensorboard", "to_tensorboard")
    logdir = text_target(logdir, what, EXAMPLE)
    if URL.match(logdir):  # tensorboardX would send s3://... and gs://... elsewhere
        raise ExportError(f"{what} {logdir!r} is a URL; TensorBoard runs are written to a "
                          f"local folder, such as {EXAMPLE} (copy it elsewhere afterwards)")
    if check_folder(logdir, what, avoid=avoid):
        existing = event_files(logdir)
        if existing:
            runs = ", ".join(repr(os.path.relpath(os.path.dirname(f), logdir))
                             for f in existing)
            raise ExportError(f"{what} {logdir!r} already holds TensorBoard runs (event "
                              f"files in {runs}); exporting again would write every scalar "
                              f"twice. Export into a new folder (tensorboard --logdir on "
                              f"their parent shows both), or delete {logdir!r} first")
    return logdir


def _missing_folders(path: str) -> list[str]:
    """``path`` and its ancestors that do not exist yet, outermost first."""
    missing = []
    path = os.path.abspath(path)
    while not os.path.lexists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing[::-1]


def to_tensorboard(record: SearchRecord, logdir: str) -> list[str]:
    """Write one TensorBoard run per configuration of a search ``record`` into ``logdir``
    (created; refused if it already holds TensorBoard runs, see the module doc); returns
    the run folders, ranked first (best first), then diverged. The search's settings
    (dataset, epochs, budget...) are recorded as hyperparameters of every run."""
    require("tensorboardX", "tensorboard", "to_tensorboard")
    from tensorboardX.event_file_writer import EventsWriter
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.summary import hparams, scalar

    logdir = check_logdir(logdir)
    results = record.ordered
    names = hyperparameter_names(results)
    short = varying_parameters(results)
    extra = {f"search/{k}": _hparam_value(v) for k, v in export_settings(record).items()}
    now = time.time()
    runs = []
    for index, result in enumerate(results, 1):  # every event, before anything is written
        path = os.path.join(logdir, run_name(index, result, short).replace(" ", "_")
                            .replace("/", "-"))
        events = [Event(wall_time=now, step=epoch, summary=scalar(metric, value))
                  for metric in METRICS
                  for epoch, value in enumerate(epoch_stats(result, metric)[0], 1)
                  if finite(value)]
        finals = {"hparams/val_accuracy": result.val_accuracy,
                  "hparams/test_accuracy": result.test_accuracy,
                  "hparams/params": _hparam_value(result.total_params)}
        finals = {k: float(v) for k, v in finals.items() if finite(v)}
        values = {k: _hparam_value(v) for k, v in hyperparameters(result, names).items()}
        events += [Event(wall_time=now, summary=summary)
                   for summary in hparams({**values, **extra}, finals)]
        events += [Event(wall_time=now, step=int(result.epochs_trained),
                         summary=scalar(tag, value)) for tag, value in finals.items()]
        runs.append((path, events))
    created = _missing_folders(logdir)
    try:
        with writing(f"to_tensorboard logdir {logdir!r}",
                     "check that the folder is writable and the disk has room"):
            os.makedirs(logdir, exist_ok=True)
            for path, events in runs:
                if not os.path.lexists(path):
                    created.append(os.path.abspath(path))
                os.makedirs(path, exist_ok=True)
                # Written here, in this thread (SummaryWriter writes from a thread of its
                # own, whose errors, a full disk say, would never reach this code).
                writer = EventsWriter(os.path.join(path, "events"))
                try:
                    for event in events:
                        writer.write_event(event)
                finally:
                    writer.close()
    except BaseException:  # no half export that would refuse the retry
        for folder in reversed(created):
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return [run[0] for run in runs]
