"""The progress display (dendrax.search.progress): a bar, compile as its own phase, an ETA
from epoch times only, stable bucket numbers and alive/running under halving."""

import io

import pytest

from dendrax.search.progress import SweepProgress, plural, progress_bar
from dendrax.spec import Progress


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Outcome:
    def __init__(self, val, diverged=False, stopped_epoch=None, bucket="b", epochs=4):
        self.val, self.diverged, self.stopped_epoch = val, diverged, stopped_epoch
        self.bucket, self.bucket_wall_time = bucket, 1.5
        self.history = {"val_accuracy": [val] * epochs}

    def final(self, metric):
        return self.val


def event(epoch, models=2, bucket="b", best=0.5, phase="train", alive=None):
    return Progress(bucket=bucket, chunk_models=models, epoch=epoch, n_epochs=4,
                    alive=models if alive is None else alive, best_val_accuracy=best,
                    phase=phase)


def test_plain_lines_every_interval_with_a_bar():
    clock, stream = Clock(), io.StringIO()
    display = SweepProgress(2, 4, 4, stream=stream, clock=clock, interval=10.0)
    assert not display.tty
    clock.now += 5
    display.update(event(1))                    # first event: printed
    clock.now += 5
    display.update(event(2, best=0.6))          # 5 s later: not yet
    clock.now += 6
    display.update(event(3, best=0.55))         # 11 s after the first: printed
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in stream.getvalue()
    # 6 of 16 model-epochs: 38%, 8 of 20 bar cells.
    assert lines[1].startswith("[########------------]  38%  bucket 1/2 b  epoch 3/4")
    assert "2/2 alive" in lines[1] and "best val 0.6000" in lines[1]
    # The first event's epoch was not timed; the next two (4 model-epochs) took 11 s:
    # 10 left take 27.5 s.
    assert "0:16 elapsed" in lines[1] and "ETA 0:28" in lines[1]
    display.bucket_done([Outcome(0.7), Outcome(0.65)], "b")
    assert "bucket 1/2 b: 2 models, best val acc 0.7000" in stream.getvalue()
    assert display.model_epochs_done == 6 and display.best_val == 0.7


def test_compile_is_its_own_phase_and_never_in_the_eta():
    clock, stream = Clock(), io.StringIO()
    display = SweepProgress(1, 2, 4, stream=stream, tty=True, clock=clock)
    display.update(event(0, phase="compile"))
    assert "compiling (2 models)" in display.status_line() and "ETA ?" in display.status_line()
    clock.now += 60                              # a minute of compiling
    display.update(event(0, phase="start"))      # training starts
    assert display.model_epochs_done == 0
    clock.now += 10
    display.update(event(1))
    # One epoch of 2 models in 10 s; 3 epochs left: 30 s, not (60 + 10) × 3.
    assert display.eta() == pytest.approx(30.0)
    assert "ETA 0:30" in display.status_line() and "epoch 1/4" in display.status_line()


def test_chunks_of_one_bucket_are_counted_once():
    display = SweepProgress(1, 5, 4, stream=io.StringIO(), clock=Clock())
    for chunk in (3, 2):
        display.update(event(0, models=chunk, phase="compile"))
        display.update(event(0, models=chunk, phase="start"))
        for e in range(1, 5):
            display.update(event(e, models=chunk))
    assert display.model_epochs_done == 5 * 4 and display.fraction() == 1.0


def test_a_trainer_without_events_is_counted_from_its_outcomes():
    display = SweepProgress(1, 2, 4, stream=io.StringIO(), clock=Clock())
    display.bucket_done([Outcome(0.7), Outcome(0.6)], "b")
    assert display.model_epochs_done == 8


def test_halving_keeps_bucket_numbers_and_shrinks_the_total():
    stream = io.StringIO()
    display = SweepProgress(2, 6, 4, labels=["a", "b"], stream=stream, clock=Clock())
    display.update(event(0, models=3, bucket="b", phase="compile"))
    assert "bucket 2/2 b" in display.status_line()
    display.update(event(0, models=3, bucket="b", phase="start"))
    display.update(event(1, models=3, bucket="b"))
    display.update(event(0, models=3, bucket="a", phase="start"))  # its program was ready
    display.update(event(1, models=3, bucket="a"))
    # Rung 1 stops four of six models at epoch 1: 4 × 3 model-epochs leave the total.
    display.bucket_done([Outcome(0.5, stopped_epoch=1, bucket=x) for x in "aabb"], "a")
    assert display.model_epochs_total == 24 - 12 and display.buckets_done == 0
    display.update(event(1, models=1, bucket="b", phase="start"))  # rung 2, no compile
    assert display.model_epochs_done == 6
    display.update(event(4, models=1, bucket="b", alive=1))
    assert display.model_epochs_done == 6 + 3
    line = display.status_line()
    assert "bucket 2/2 b" in line and "1/1 alive" in line  # still number 2, one running
    display.bucket_done([Outcome(0.8, bucket="b")], "b")
    assert "bucket 2/2 b: 1 model," in stream.getvalue()


def test_a_terminal_redraws_one_line():
    clock, stream = Clock(), io.StringIO()
    display = SweepProgress(1, 2, 4, stream=stream, tty=True, clock=clock)
    display.update(event(1))
    display.update(event(2))
    text = stream.getvalue()
    assert text.count("\r") == 2 and "\n" not in text
    display.message("a permanent line")
    display.close()
    assert stream.getvalue().endswith("a permanent line\n")


def test_plural_and_bar():
    assert (plural(1, "model"), plural(2, "model"), plural(1200, "model")) == (
        "1 model", "2 models", "1,200 models")
    assert progress_bar(0.5, 10) == "[#####-----]" and progress_bar(float("nan"), 4) == "[----]"
