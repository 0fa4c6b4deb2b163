"""The sweep progress display: where a search's training stands, on one line.

The trainer reports one :class:`dendrax.search.trial.Progress` event per finished epoch of each
chunk, and the searcher reports each finished bucket. :class:`SweepProgress` turns those
into a status line::

    [bucket 2/5] dendritic_simple|soma|n12|d6|k96|random  epoch 3/15  8/8 alive
      best val 0.8123  elapsed 0:42  ETA 1:30

On a terminal the line is redrawn in place (carriage return); elsewhere (a pipe, a log
file, a notebook capturing stdout) it is printed as a plain line at most every
``interval`` seconds, so logs stay short. Each finished bucket also gets a permanent line.

The ETA extrapolates from model-epochs: every model of the sweep trains ``n_epochs``
epochs, so work done = finished model-epochs / (models × n_epochs). Compile time is
counted as work time, so the first estimate of each new shape is pessimistic.

Pure Python, no JAX: the searcher creates it.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from typing import Any, Callable, Sequence, TextIO

from dendrax.search.trial import Progress


def format_duration(seconds: float) -> str:
    """0:42, 12:05, 1:02:03."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(max(0.0, seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class SweepProgress:
    """Progress of one trainer call over ``n_buckets`` shape buckets and ``n_models`` models.

    Args:
      n_buckets, n_models, n_epochs: the size of the sweep (models that will train).
      stream: where to write (default: sys.stdout at construction time).
      tty: redraw one line in place; None asks ``stream.isatty()``.
      interval: seconds between plain lines when not on a terminal.
      clock: a monotonic clock in seconds (tests pass a fake one).

    Use :meth:`update` as the trainer's ``progress`` callback, :meth:`bucket_done` when a
    bucket's outcomes arrive, :meth:`message` for any other line printed during training
    (it clears the status line first), and :meth:`close` at the end.
    """

    def __init__(self, n_buckets: int, n_models: int, n_epochs: int, *,
                 stream: TextIO | None = None, tty: bool | None = None,
                 interval: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.n_buckets = int(n_buckets)
        self.n_models = int(n_models)
        self.n_epochs = int(n_epochs)
        self.stream = stream if stream is not None else sys.stdout
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty()) if callable(isatty) else False
        self.tty = tty
        self.interval = float(interval)
        self.clock = clock
        self.start = clock()
        self.buckets_done = 0
        self.best_val = math.nan
        self._finished_model_epochs = 0       # buckets already done
        self._chunks_model_epochs = 0         # earlier chunks of the bucket in flight
        self._event: Progress | None = None   # latest event of the bucket in flight
        self._last_plain = -math.inf
        self._line_width = 0                  # characters of the status line on screen

    # ---- accounting ------------------------------------------------------------------
    @property
    def model_epochs_done(self) -> int:
        current = self._event.chunk_models * self._event.epoch if self._event else 0
        return self._finished_model_epochs + self._chunks_model_epochs + current

    @property
    def model_epochs_total(self) -> int:
        return max(1, self.n_models * self.n_epochs)

    def elapsed(self) -> float:
        return self.clock() - self.start

    def eta(self) -> float:
        """Seconds left, extrapolated from the model-epochs done so far (nan before any)."""
        done = self.model_epochs_done
        if done <= 0:
            return math.nan
        left = max(0, self.model_epochs_total - done)
        return self.elapsed() * left / done

    def _best(self, value: float) -> None:
        if value is not None and math.isfinite(value) and not value <= self.best_val:
            self.best_val = value

    # ---- callbacks -------------------------------------------------------------------
    def update(self, event: Progress) -> None:
        """One finished epoch of one chunk (the trainer's ``progress`` callback)."""
        previous = self._event
        if previous is not None and previous.bucket == event.bucket \
                and event.epoch <= previous.epoch:
            # A new chunk of the same bucket began: the previous chunk finished.
            self._chunks_model_epochs += previous.chunk_models * previous.n_epochs
        self._event = event
        self._best(event.best_val_accuracy)
        self._show()

    def bucket_done(self, outcomes: Sequence[Any], label: str = "") -> None:
        """A bucket finished: print its permanent line and count its models as done."""
        outcomes = list(outcomes)
        if not outcomes:
            return
        self.buckets_done += 1
        # The count is the searcher's estimate; a trainer that groups differently wins.
        self.n_buckets = max(self.n_buckets, self.buckets_done)
        self._finished_model_epochs += len(outcomes) * self.n_epochs
        self._chunks_model_epochs = 0
        self._event = None
        finals = [o.final("val_accuracy") for o in outcomes if not o.diverged]
        finals = [v for v in finals if math.isfinite(v)]
        for value in finals:
            self._best(value)
        n_diverged = sum(bool(o.diverged) for o in outcomes)
        name = label or getattr(outcomes[0], "bucket", "") or "bucket"
        best = f"best val acc {max(finals):.4f}" if finals else "all diverged"
        wall = getattr(outcomes[0], "bucket_wall_time", math.nan)
        when = f"elapsed {format_duration(self.elapsed())}"
        if self.buckets_done < self.n_buckets:
            when += f", ETA {format_duration(self.eta())}"
        self.message(f"  bucket {self.buckets_done}/{self.n_buckets} {name}: "
                     f"{len(outcomes)} models, {best}"
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
    def status_line(self) -> str:
        event = self._event
        in_flight = event is not None
        bucket_no = min(self.buckets_done + (1 if in_flight else 0), self.n_buckets)
        parts = [f"[bucket {bucket_no}/{self.n_buckets}]"]
        if in_flight:
            parts += [event.bucket, f"epoch {event.epoch}/{event.n_epochs}",
                      f"{event.alive}/{event.chunk_models} alive"]
        best = f"{self.best_val:.4f}" if math.isfinite(self.best_val) else "-"
        parts += [f"best val {best}", f"elapsed {format_duration(self.elapsed())}",
                  f"ETA {format_duration(self.eta())}"]
        return "  ".join(parts)

    def _show(self) -> None:
        if self._event is None and (not self.tty or self.buckets_done >= self.n_buckets):
            return  # between buckets the permanent line says everything off a terminal
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
