"""The sweep progress display: a progress bar of where a search's training stands.

The trainer reports :class:`dendrax.spec.Progress` events (a "compile" event while
a population waits for its program, a "start" event when it starts training, a "train"
event after each epoch), and the searcher reports each finished bucket. :class:`SweepProgress` turns
those into one status line::

    [########------------]  42%  bucket 2/5 dendritic_simple|soma|n12|d6|k96|random
      epoch 3/15  8/8 alive  best val 0.8123  0:42 elapsed  ETA 1:30

or, while a program compiles, ``... bucket 2/5 <label>  compiling``. On a terminal (or in
a Jupyter notebook) the line is redrawn in place; elsewhere (a pipe, a log file) it is
printed as a plain line at most every ``interval`` seconds. Each finished bucket also gets
a permanent line.

Accounting, in model-epochs (one model trained for one epoch):
  - done: counted from the train events (epochs advanced × models in the chunk), or, for a
    trainer that reports no events, from the finished outcomes' histories;
  - total: models × n_epochs, less the epochs successive halving took from stopped models;
  - ETA: (total − done) / rate, where the rate is measured over epoch time only: the time
    from a population's start of training to its epochs' ends. Compile time is not an
    epoch, so it never inflates the estimate (before any epoch is timed there is no ETA).
Buckets keep the number of their label in the searcher's plan, so under halving, where a
bucket trains again at every rung, its number stays the same.

Pure Python, no JAX: the searcher creates it.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from typing import Any, Callable, Sequence, TextIO

from dendrax.spec import Progress

BAR_WIDTH = 20


def format_duration(seconds: float) -> str:
    """0:42, 12:05, 1:02:03."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(max(0.0, seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def plural(n: int, noun: str) -> str:
    """"1 model", "3 models"."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def progress_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """"[#####---------------]" for a fraction in [0, 1]."""
    fraction = min(1.0, max(0.0, fraction if math.isfinite(fraction) else 0.0))
    filled = int(round(fraction * width))
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def _in_notebook() -> bool:
    """A Jupyter kernel renders a carriage return as a redraw, like a terminal."""
    return "ipykernel" in sys.modules


class SweepProgress:
    """Progress of one trainer call over ``n_buckets`` buckets and ``n_models`` models.

    Args:
      n_buckets, n_models, n_epochs: the size of the sweep (models that will train).
      labels: the planned buckets' labels, in plan order: a bucket's number is its place
          here (labels not planned get the next numbers).
      stream: where to write (default: sys.stdout at construction time).
      tty: redraw one line in place; None asks ``stream.isatty()`` (or a notebook).
      interval: seconds between plain lines when not on a terminal.
      clock: a monotonic clock in seconds (tests pass a fake one).

    Use :meth:`update` as the trainer's ``progress`` callback, :meth:`bucket_done` when a
    bucket's outcomes arrive, :meth:`message` for any other line printed during training
    (it clears the status line first), and :meth:`close` at the end.
    """

    def __init__(self, n_buckets: int, n_models: int, n_epochs: int, *,
                 labels: Sequence[str] | None = None, stream: TextIO | None = None,
                 tty: bool | None = None, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        self.n_models = int(n_models)
        self.n_epochs = int(n_epochs)
        self.labels: dict[str, int] = {}
        for label in labels or ():
            self.labels.setdefault(label, len(self.labels) + 1)
        self.n_buckets = max(int(n_buckets), len(self.labels))
        self.stream = stream if stream is not None else sys.stdout
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = (bool(isatty()) if callable(isatty) else False) or (
                self.stream in (sys.stdout, sys.stderr) and _in_notebook())
        self.tty = tty
        self.interval = float(interval)
        self.clock = clock
        self.start = clock()
        self.buckets_done = 0
        self.best_val = math.nan
        self.model_epochs_done = 0         # from train events (or outcomes, see above)
        self._skipped = 0                  # model-epochs that halving took away
        self._train_seconds = 0.0          # epoch time only
        self._timed_model_epochs = 0       # model-epochs trained within that time
        self._event: Progress | None = None
        self._event_time = 0.0
        self._seen: set[str] = set()       # bucket labels that reported events
        self._last_plain = -math.inf
        self._line_width = 0

    # ---- accounting ------------------------------------------------------------------
    @property
    def model_epochs_total(self) -> int:
        return max(1, self.n_models * self.n_epochs - self._skipped)

    def elapsed(self) -> float:
        return self.clock() - self.start

    def eta(self) -> float:
        """Seconds left at the rate measured over epoch time (nan before an epoch is timed)."""
        if self._timed_model_epochs <= 0 or self._train_seconds <= 0:
            return math.nan
        left = max(0, self.model_epochs_total - self.model_epochs_done)
        return left * self._train_seconds / self._timed_model_epochs

    def set_plan(self, labels: Sequence[str]) -> None:
        """The trainer's bucket plan, in order: bucket numbers follow it."""
        for label in labels:
            self.labels.setdefault(label, len(self.labels) + 1)
        self.n_buckets = max(len(self.labels), self.buckets_done)

    def number(self, label: str) -> int:
        """The bucket's stable number (its place in the plan)."""
        if label not in self.labels:
            self.labels[label] = len(self.labels) + 1
            self.n_buckets = max(self.n_buckets, len(self.labels))
        return self.labels[label]

    def _best(self, value: float) -> None:
        if value is not None and math.isfinite(value) and not value <= self.best_val:
            self.best_val = value

    # ---- callbacks -------------------------------------------------------------------
    def update(self, event: Progress) -> None:
        """A trainer event (the ``progress`` callback)."""
        now = self.clock()
        previous = self._event
        self._seen.add(event.bucket)
        if getattr(event, "phase", "train") == "train":
            after = getattr(previous, "phase", None)
            if (after in ("start", "train") and previous.bucket == event.bucket
                    and previous.chunk_models == event.chunk_models
                    and previous.epoch < event.epoch):
                advanced = event.epoch - previous.epoch  # timed: epochs only since then
                self._train_seconds += now - self._event_time
                self._timed_model_epochs += advanced * event.chunk_models
            else:
                advanced = event.epoch  # a run whose start was not reported: untimed
            self.model_epochs_done += advanced * event.chunk_models
        self._event, self._event_time = event, now
        self._best(event.best_val_accuracy)
        self._show()

    def bucket_done(self, outcomes: Sequence[Any], label: str = "") -> None:
        """Outcomes arrived: a finished bucket (a permanent line), or, under halving,
        models a rung stopped (their remaining epochs leave the total)."""
        outcomes = list(outcomes)
        if not outcomes:
            return
        name = label or getattr(outcomes[0], "bucket", "") or "bucket"
        if name not in self._seen:  # a trainer without events: count the histories
            self.model_epochs_done += sum(_epochs(o) for o in outcomes)
        finals = [o.final("val_accuracy") for o in outcomes if not o.diverged]
        finals = [v for v in finals if math.isfinite(v)]
        for value in finals:
            self._best(value)
        stopped = [o for o in outcomes if getattr(o, "stopped_epoch", None) is not None]
        best = f"best val acc {max(finals):.4f}" if finals else "all diverged"
        if stopped and len(stopped) == len(outcomes):
            # The trainer's own line says which rung stopped them; only the total changes.
            self._skipped += sum(self.n_epochs - o.stopped_epoch for o in stopped)
            self._show()
            return
        self.buckets_done += 1
        n_diverged = sum(bool(o.diverged) for o in outcomes)
        wall = getattr(outcomes[0], "bucket_wall_time", math.nan)
        when = f"elapsed {format_duration(self.elapsed())}"
        if self.buckets_done < self.n_buckets:
            when += f", ETA {format_duration(self.eta())}"
        self._event = None
        self.message(f"  bucket {self.number(name)}/{self.n_buckets} {name}: "
                     f"{plural(len(outcomes), 'model')}, {best}"
                     + (f", {n_diverged} diverged" if n_diverged and finals else "")
                     + f", {wall:.1f}s ({when})")
        self._last_plain = self.clock()  # the line above is this moment's plain update
        self._show()

    def message(self, text: str) -> None:
        """Print a permanent line without mangling the status line."""
        self._clear()
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        """Remove the status line (on a terminal); the permanent lines stay."""
        self._clear()

    # ---- drawing ---------------------------------------------------------------------
    def fraction(self) -> float:
        return min(1.0, self.model_epochs_done / self.model_epochs_total)

    def status_line(self) -> str:
        event = self._event
        fraction = self.fraction()
        parts = [f"{progress_bar(fraction)} {fraction * 100:3.0f}%"]
        if event is not None:
            parts.append(f"bucket {self.number(event.bucket)}/{self.n_buckets} {event.bucket}")
            if getattr(event, "phase", "train") == "compile":
                parts.append(f"compiling ({plural(event.chunk_models, 'model')})")
            else:
                parts += [f"epoch {event.epoch}/{event.n_epochs}",
                          f"{event.alive}/{event.chunk_models} alive"]
        best = f"{self.best_val:.4f}" if math.isfinite(self.best_val) else "-"
        parts += [f"best val {best}", f"{format_duration(self.elapsed())} elapsed",
                  f"ETA {format_duration(self.eta())}"]
        return "  ".join(parts)

    def _show(self) -> None:
        if self._event is None and not self.tty:
            return  # between buckets the permanent line says everything off a terminal
        if self._event is None and self.buckets_done >= self.n_buckets:
            return
        line = self.status_line()
        if self.tty:
            width = shutil.get_terminal_size((100, 24)).columns - 1
            line = line[:max(20, width)]
            pad = " " * max(0, self._line_width - len(line))
            self.stream.write("\r" + line + pad)
            self.stream.flush()
            self._line_width = len(line)
            return
        now = self.clock()
        if now - self._last_plain >= self.interval:
            print(line, file=self.stream, flush=True)
            self._last_plain = now

    def _clear(self) -> None:
        if self.tty and self._line_width:
            self.stream.write("\r" + " " * self._line_width + "\r")
            self.stream.flush()
            self._line_width = 0


def _epochs(outcome: Any) -> int:
    history = getattr(outcome, "history", None) or {}
    values = history.get("val_accuracy") or history.get("train_loss") or []
    return len(values)
