"""The seeded, stratified validation split, the training subset, and normalisation."""

from __future__ import annotations

import numbers

import numpy as np

from dendrax.checks import MAX_SEED, shown
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


# float32's largest finite value: dendrax trains in float32, so features beyond it are inf.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_split_args(validation_fraction, subset_size, seed) -> None:
    """Types and ranges of the split arguments. ``validation_fraction=None`` asks for no
    validation split on purpose (training outside a search); a number must hold out at
    least one example, which :func:`_split` checks against the data."""
    if validation_fraction is not None and (
            not isinstance(validation_fraction, numbers.Real)
            or isinstance(validation_fraction, bool) or not 0 <= validation_fraction < 1):
        raise DataError(f"validation_fraction={shown(validation_fraction)} must be a number "
                        f"in [0, 1) (or None for no validation split)")
    if subset_size is not None and (not isinstance(subset_size, numbers.Integral)
                                    or isinstance(subset_size, bool) or subset_size < 1):
        raise DataError(f"subset_size={shown(subset_size)} must be None or an integer >= 1")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) \
            or not 0 <= seed <= MAX_SEED:
        raise DataError(f"seed={shown(seed)} must be an integer >= 0 and at most 2**63-1 "
                        f"(it is logged with the search, as the searcher's seed is)")


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
    n_val = 0 if validation_fraction is None else round(validation_fraction * len(labels))
    if n_val == 0 and validation_fraction is not None:
        raise DataError(_empty_validation_message(validation_fraction, len(labels)))
    if n_val >= len(labels):
        raise DataError(f"validation_fraction={validation_fraction} leaves no training "
                        f"examples out of {len(labels)}")
    val = stratified_choice(labels, n_val, rng)
    train = np.setdiff1d(np.arange(len(labels)), val)
    if subset_size is not None and subset_size < len(train):
        train = train[stratified_choice(labels[train], subset_size, rng)]
    return train, val


def _empty_validation_message(validation_fraction: float, n: int) -> str:
    """Why a validation split of no examples is refused, and what to pass instead."""
    if validation_fraction == 0:
        why = f"validation_fraction={validation_fraction!r} holds out no validation examples"
    else:
        why = (f"validation_fraction={validation_fraction!r} of {n:,} training examples "
               f"rounds to 0 validation examples")
    return (f"{why}: every config would rank on NaN validation accuracy, in input order. "
            f"Pass a validation_fraction of at least {1 / n:.3g} (one example; a useful "
            f"ranking needs hundreds)" + (f", or more data" if n < 100 else "")
            + "; or validation_fraction=None to train without a validation split outside "
              "a search")


def _scales(x: np.ndarray) -> np.ndarray:
    """Per feature, a power of two above half the largest |x| (1 for an all-zero feature):
    dividing by it is exact and brings every value into (-2, 2), so sums and squares of
    features near the float64 limit (1e300) cannot overflow."""
    peak = np.abs(x).max(0) if len(x) else np.zeros(x.shape[1:])
    return np.ldexp(1.0, np.frexp(peak)[1] - 1)


def feature_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-feature ``(scale, mean, std)`` of ``x`` in float64, ddof=0: the mean and std are
    those of ``x / scale`` (see _scales), so they never overflow; a constant feature gets
    scale 1, its own mean and std 1, so it is only centred. ``(x / scale - mean) / std``
    standardises, and equals ``(x - mean·scale) / (std·scale)`` exactly when neither
    overflows (scaling by a power of two is exact)."""
    x = np.asarray(x, np.float64)
    if len(x) == 0:
        raise DataError("cannot standardise features: the training split is empty")
    scale = _scales(x)
    scaled = x / scale
    mean, std = scaled.mean(0), scaled.std(0)
    constant = std == 0  # only centred, in the feature's own units: scale 1, std 1
    return (np.where(constant, 1.0, scale), np.where(constant, mean * scale, mean),
            np.where(constant, 1.0, std))


def _standardised(x: np.ndarray, scale: np.ndarray, mean: np.ndarray,
                  std: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # out-of-range values become inf, refused in assemble
        return _frozen(((np.asarray(x, np.float64) / scale - mean) / std).astype(np.float32))


def _check_float32(name: str, parts: dict[str, np.ndarray], normalise) -> None:
    """Every feature of every part finite in float32 (the casts above turn values beyond
    float32's range into inf, which would only show up as every model "diverging")."""
    for label, x in parts.items():
        if x.size and not np.isfinite(x).all():
            how = ("after standardisation with the training split's statistics (a value "
                   "far outside the training range)" if normalise == "standardise"
                   else "after the conversion to float32")
            raise DataError(f"{name}: {label} holds values beyond float32's range "
                            f"(|x| <= {FLOAT32_MAX:.4g}) {how}; dendrax trains in float32: "
                            f"rescale the features")


def check_classes(name: str, y_train: np.ndarray) -> None:
    """At least two classes among the training labels: with one, every model predicts it,
    scores 1.0 on everything, and the search cannot rank anything."""
    classes = np.unique(y_train)
    if len(classes) < 2:
        held = f"a single class ({classes[0]})" if len(classes) else "no labels"
        raise DataError(f"{name}: y_train holds {held}; a classifier "
                        f"needs at least 2 classes: every model would score 1.0 and the "
                        f"search could not rank them")


def assemble(name, x_train, y_train, x_test, y_test, *, image_shape, class_names,
              validation_fraction, subset_size, seed, source, is_sample=False,
              normalise=True, mean=(MEAN,), std=(STD,)) -> Dataset:
    """Split the training set, then convert every part to read-only float32/int32.

    normalise: True (pixels, see _features, with the per-channel statistics ``mean`` and
    ``std``; one value: the same for every channel), False (as given) or "standardise"
    (each feature by the training split's own mean and std, see feature_statistics)."""
    check_classes(name, y_train)
    if len(x_test) == 0:
        raise DataError(f"{name}: x_test is empty (0 examples); every test accuracy would be "
                        f"NaN: pass held-out examples (e.g. split some off your training "
                        f"arrays)")
    train, val = _split(y_train, validation_fraction, subset_size, seed)
    if normalise == "standardise":
        stats = feature_statistics(x_train[train])
        parts = [_standardised(x, *stats) for x in (x_train[train], x_train[val], x_test)]
    else:
        stats = {"mean": tuple(mean), "std": tuple(std)}
        with np.errstate(over="ignore"):  # out-of-range values become inf, refused below
            parts = [_features(x, normalise, **stats)
                     for x in (x_train[train], x_train[val], x_test)]
    _check_float32(name, {"x_train": parts[0], "x_train's validation rows": parts[1],
                          "x_test": parts[2]}, normalise)
    return Dataset(name=name,
                   x_train=parts[0],
                   y_train=_frozen(y_train[train].astype(np.int32)),
                   x_val=parts[1],
                   y_val=_frozen(y_train[val].astype(np.int32)),
                   x_test=parts[2],
                   y_test=_frozen(y_test.astype(np.int32)),
                   class_names=tuple(class_names), image_shape=tuple(image_shape),
                   source=source, is_sample=is_sample,
                   validation_fraction=validation_fraction, subset_size=subset_size,
                   seed=seed, normalise={True: "pixels", False: "none"}.get(normalise, normalise))
