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


def feature_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std (ddof=0, in float64) of ``x``; a std of 0 (a constant
    feature) becomes 1, so that feature is only centred."""
    x = np.asarray(x, np.float64)
    if len(x) == 0:
        raise DataError("cannot standardise features: the training split is empty")
    mean, std = x.mean(0), x.std(0)
    return mean, np.where(std > 0, std, 1.0)


def _standardised(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return _frozen(((np.asarray(x, np.float64) - mean) / std).astype(np.float32))


def assemble(name, x_train, y_train, x_test, y_test, *, image_shape, class_names,
              validation_fraction, subset_size, seed, source, is_sample=False,
              normalise=True, mean=(MEAN,), std=(STD,)) -> Dataset:
    """Split the training set, then convert every part to read-only float32/int32.

    normalise: True (pixels, see _features, with the per-channel statistics ``mean`` and
    ``std``; one value: the same for every channel), False (as given) or "standardise"
    (each feature by the training split's own mean and std, see feature_statistics)."""
    train, val = _split(y_train, validation_fraction, subset_size, seed)
    if normalise == "standardise":
        mean, std = feature_statistics(x_train[train])
        parts = [_standardised(x, mean, std) for x in (x_train[train], x_train[val], x_test)]
    else:
        stats = {"mean": tuple(mean), "std": tuple(std)}
        parts = [_features(x, normalise, **stats) for x in (x_train[train], x_train[val], x_test)]
    return Dataset(name=name,
                   x_train=parts[0],
                   y_train=_frozen(y_train[train].astype(np.int32)),
                   x_val=parts[1],
                   y_val=_frozen(y_train[val].astype(np.int32)),
                   x_test=parts[2],
                   y_test=_frozen(y_test.astype(np.int32)),
                   class_names=tuple(class_names), image_shape=tuple(image_shape),
                   source=source, is_sample=is_sample)
