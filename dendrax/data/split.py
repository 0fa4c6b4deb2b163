"""The seeded, stratified validation split, the training subset, and normalisation."""

from __future__ import annotations

import numbers

import numpy as np

from dendrax.data.dataset import DataError, Dataset

MEAN, STD = 0.1307, 0.3081  # MNIST's pixel statistics after /255, as the original uses


def _features(x: np.ndarray, normalise: bool, mean=(MEAN,), std=(STD,)) -> np.ndarray:
    """Read-only float32 features; normalise: uint8 pixels / 255 (others are already in
    [0, 1]), then (x − mean[c]) / std[c] per channel c, all in float32. Features are laid
    out (H, W, C), so feature i belongs to channel i mod C (C = len(mean))."""
    out = x.astype(np.float32)
    if normalise:
        if x.dtype == np.uint8:
            out /= np.float32(255)
        channels = len(mean)
        shape = (len(out), out.shape[1] // channels, channels)
        out = ((out.reshape(shape) - np.asarray(mean, np.float32))
               / np.asarray(std, np.float32)).reshape(x.shape)
    return _frozen(out)


def _frozen(array: np.ndarray) -> np.ndarray:
    """The array made read-only: a Dataset is a value, shared without copies."""
    array.flags.writeable = False
    return array


def check_split_args(validation_fraction, subset_size, seed) -> None:
    if (not isinstance(validation_fraction, numbers.Real) or isinstance(validation_fraction, bool)
            or not 0 <= validation_fraction < 1):
        raise DataError(f"validation_fraction={validation_fraction!r} must be a number in [0, 1)")
    if subset_size is not None and (not isinstance(subset_size, numbers.Integral)
                                    or isinstance(subset_size, bool) or subset_size < 1):
        raise DataError(f"subset_size={subset_size!r} must be None or an integer >= 1")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise DataError(f"seed={seed!r} must be an integer >= 0")


def stratified_choice(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of k elements; each class gets its share, the rounding going to the
    classes with the largest remainders, and its members are drawn at random."""
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    classes, counts = np.unique(labels, return_counts=True)
    quota = k * counts / len(labels)
    take = np.floor(quota).astype(np.int64)
    order = np.argsort(-(quota - take), kind="stable")
    take[order[:k - take.sum()]] += 1
    picked = [rng.permutation(np.flatnonzero(labels == c))[:t] for c, t in zip(classes, take)]
    return np.sort(np.concatenate(picked))


def _split(labels: np.ndarray, validation_fraction: float, subset_size: int | None,
           seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices: validation first, then the training subset."""
    rng = np.random.default_rng(seed)
    n_val = round(validation_fraction * len(labels))
    if n_val >= len(labels):
        raise DataError(f"validation_fraction={validation_fraction} leaves no training "
                        f"examples out of {len(labels)}")
    val = stratified_choice(labels, n_val, rng)
    train = np.setdiff1d(np.arange(len(labels)), val)
    if subset_size is not None and subset_size < len(train):
        train = train[stratified_choice(labels[train], subset_size, rng)]
    return train, val


def assemble(name, x_train, y_train, x_test, y_test, *, image_shape, class_names,
              validation_fraction, subset_size, seed, source, is_sample=False,
              normalise=True, mean=(MEAN,), std=(STD,)) -> Dataset:
    """Split the training set, then convert every part to read-only float32/int32;
    ``mean``/``std`` are per-channel statistics (one value: the same for every channel)."""
    train, val = _split(y_train, validation_fraction, subset_size, seed)
    stats = {"mean": tuple(mean), "std": tuple(std)}
    return Dataset(name=name,
                   x_train=_features(x_train[train], normalise, **stats),
                   y_train=_frozen(y_train[train].astype(np.int32)),
                   x_val=_features(x_train[val], normalise, **stats),
                   y_val=_frozen(y_train[val].astype(np.int32)),
                   x_test=_features(x_test, normalise, **stats),
                   y_test=_frozen(y_test.astype(np.int32)),
                   class_names=tuple(class_names), image_shape=tuple(image_shape),
                   source=source, is_sample=is_sample)
