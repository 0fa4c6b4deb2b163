"""Datasets from the user's own arrays, split and normalised like the built-in ones."""

from __future__ import annotations

import math
import numbers
from typing import Sequence

import numpy as np

from dendrax.checks import INT32_MAX, shown
from dendrax.data.dataset import DataError, Dataset
from dendrax.data.split import FLOAT32_MAX, assemble, check_split_args


NORMALISE = ("auto", "pixels", "standardise", "none")


def from_arrays(x_train, y_train, x_test, y_test, *, name: str = "custom",
                image_shape: Sequence[int] | None = None,
                class_names: Sequence[str] | None = None, validation_fraction: float = 0.1,
                subset_size: int | None = None, seed: int = 0,
                normalise: bool | str = "auto") -> Dataset:
    """A Dataset from your own arrays, split and normalised like the built-in ones.

    x: (n, ...) features; each example is flattened row-major. 3-D input (n, H, W) is
    taken as grey images, 4-D (n, H, W, C) as channels-last images; for 2-D input pass
    ``image_shape`` (otherwise (1, in_dim, 1), a row of features). y: integer classes
    0..K-1; n_classes is K = max label + 1 (or len(class_names)), in_dim is inferred.
    Without class_names, every class 0..K-1 must have an example in y_train or y_test:
    labels such as {0, 5, 100} (101 outputs, 98 of them never used) are refused with the
    remapping that fixes them; pass class_names to keep empty classes on purpose. The
    training labels must hold at least 2 classes, and x_test at least one example.

    name: a non-empty string. image_shape: three positive integers (H, W, C) with
    H*W*C features. class_names: a list, tuple or array of names (strings; integers are
    written as text). x arrays must be numeric (no ragged lists, no masked values) with at
    least one feature; labels whole numbers 0..2**31-1. Anything else is a DataError
    naming the argument.

    validation_fraction: the share of the training arrays held out, stratified; it must
    hold out at least one example (a search ranks on it). None: no validation split at
    all, for training outside a search.

    normalise:
      "auto" (default): integer arrays within 0..255 are pixels ("pixels"); anything else
          (floats, other integers) is standardised per feature ("standardise").
      "pixels" (or True): integer pixels must be 0..255 and float pixels whose maximum
          exceeds 1 are taken as 0..255 too; both are divided by 255. Float pixels within
          [0, 1] are taken as already scaled. Then (x − 0.1307) / 0.3081, as for the
          built-in datasets.
      "standardise": each feature becomes (x − mean) / std, with the mean and std (ddof=0)
          of the training split only (after the validation examples and the subset are
          taken out), so no validation or test statistic leaks in; a constant feature
          is only centred. The statistics are computed on features scaled by a power of
          two, so values near the float64 limit (1e300) standardise correctly.
      "none" (or False): features are used as given (cast to float32); values beyond
          float32's range (about 3.4e38) are refused.
    """
    check_split_args(validation_fraction, subset_size, seed)
    if not isinstance(name, str) or not name:
        raise DataError(f"name={shown(name)} must be a non-empty string (it names the "
                        f"dataset in the search log and the results)")
    mode = {True: "pixels", False: "none"}.get(normalise, normalise) \
        if isinstance(normalise, bool) else normalise
    if not isinstance(mode, str) or mode not in NORMALISE:
        raise DataError(f"normalise={shown(normalise)}; choose one of {', '.join(NORMALISE)} "
                        f"(or True for pixels, False for none)")
    x_train, x_test = _as_array("x_train", x_train), _as_array("x_test", x_test)
    for label, x in (("x_train", x_train), ("x_test", x_test)):
        if x.ndim < 2 or x.dtype.kind not in "iuf":
            raise DataError(f"{label} must be a numeric array (n, ...); got {x.dtype} {x.shape}")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise DataError(f"{label} holds NaN or infinite values")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"x_train examples have shape {x_train.shape[1:]} but x_test "
                        f"examples have {x_test.shape[1:]}")
    if len(x_train) == 0:
        raise DataError("x_train is empty")
    if 0 in x_train.shape[1:]:
        raise DataError(f"x_train examples have shape {x_train.shape[1:]}: no features")
    shape = _image_shape(image_shape, x_train.shape[1:])
    y_train, y_test = _as_labels("y_train", y_train, x_train), _as_labels("y_test", y_test, x_test)
    n_classes = int(max(y_train.max(), y_test.max(initial=0))) + 1
    if class_names is None:
        _check_contiguous(y_train, y_test, n_classes)
        class_names = tuple(str(k) for k in range(n_classes))
    else:
        class_names = _class_names(class_names)
        if len(class_names) < n_classes:
            raise DataError(f"{len(class_names)} class_names for labels up to "
                            f"{n_classes - 1}")
    in_dim = int(np.prod(x_train.shape[1:]))
    flat_train = x_train.reshape(len(x_train), in_dim)
    flat_test = x_test.reshape(len(x_test), in_dim)  # -1 cannot be inferred for 0 rows
    if mode == "auto":
        mode = "pixels" if _are_pixels(flat_train, flat_test) else "standardise"
    if mode == "pixels":
        flat_train, flat_test = _as_pixels(flat_train, flat_test)
    elif mode == "none":
        _check_float32_range(("x_train", flat_train), ("x_test", flat_test))
    return assemble(name, flat_train, y_train, flat_test, y_test, image_shape=shape,
                     class_names=tuple(str(c) for c in class_names),
                     validation_fraction=validation_fraction, subset_size=subset_size,
                     seed=seed, source=f"arrays given to from_arrays ({name}; {mode})",
                     normalise={"pixels": True, "none": False}.get(mode, mode))


def _check_contiguous(y_train: np.ndarray, y_test: np.ndarray, n_classes: int) -> None:
    """Every class 0..K-1 has an example (K = max label + 1); else a DataError naming the
    labels in use and the remapping, since each empty class is one more output."""
    used = np.union1d(np.unique(y_train), np.unique(y_test))
    if len(used) == n_classes:
        return
    shown = ", ".join(str(v) for v in used[:10]) + (", ..." if len(used) > 10 else "")
    missing = np.setdiff1d(np.arange(min(n_classes, 10 ** 6)), used)[:5]
    raise DataError(
        f"y_train and y_test use {len(used)} distinct labels ({shown}) but classes are "
        f"0..K-1 with K = max label + 1 = {n_classes:,}, so {n_classes - len(used):,} "
        f"outputs (classes {', '.join(str(v) for v in missing)}"
        f"{', ...' if n_classes - len(used) > len(missing) else ''}) would never see an "
        f"example and would count against the parameter budget. Remap the labels to "
        f"0..{len(used) - 1} first: classes, y = np.unique(y, return_inverse=True) over "
        f"y_train and y_test together; or pass class_names with {n_classes:,} names to "
        f"keep the empty classes on purpose")


def _check_float32_range(*arrays: tuple[str, np.ndarray]) -> None:
    """Features used as given must fit float32, which dendrax trains in."""
    for label, x in arrays:
        if x.size and x.dtype.kind == "f":
            peak = float(np.abs(x).max())
            if peak > FLOAT32_MAX:
                raise DataError(
                    f"{label} holds values beyond float32's range (largest |x| = {peak:.4g}, "
                    f"float32 holds up to {FLOAT32_MAX:.4g}); dendrax trains in float32, so "
                    f"they would become inf and every model would be reported as diverged. "
                    f"Rescale the features, or pass normalise='standardise'")


def _are_pixels(*arrays: np.ndarray) -> bool:
    """Integer arrays whose values all lie in 0..255."""
    parts = [x for x in arrays if x.size]
    return all(x.dtype.kind in "iu" for x in arrays) and bool(parts) and \
        min(int(x.min()) for x in parts) >= 0 and max(int(x.max()) for x in parts) <= 255


def _as_array(label: str, value) -> np.ndarray:
    """``value`` as an array; a DataError naming ``label`` for what numpy cannot make one of
    (ragged lists) and for masked arrays with masked values (which would be used as if
    they were data)."""
    if isinstance(value, np.ma.MaskedArray) and np.ma.is_masked(value):
        raise DataError(f"{label} is a masked array with masked values; fill or drop them "
                        f"first (numpy would use the values under the mask)")
    try:
        return np.asarray(value)
    except (ValueError, TypeError, OverflowError) as e:
        first = str(e).split(". ")[0]
        raise DataError(f"{label} must be a numeric array (n, ...); numpy cannot make an "
                        f"array of it ({first})") from None


def _class_names(class_names) -> tuple[str, ...]:
    """class_names as a tuple of strings: a list, tuple or array of names (strings, or
    integers written as text); a DataError otherwise."""
    if isinstance(class_names, (str, bytes)) or not isinstance(
            class_names, (list, tuple, np.ndarray)) or np.ndim(class_names) != 1:
        raise DataError(f"class_names={shown(class_names)} must be a list of names, one per "
                        f"class (or None for '0', '1', ...)")
    names = []
    for value in class_names:
        if isinstance(value, (str, np.str_)):
            names.append(str(value))
        elif isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)) \
                and abs(int(value)) <= INT32_MAX:
            names.append(str(int(value)))
        else:
            raise DataError(f"class_names holds {shown(value)}; each name must be a string")
    return tuple(names)


def _image_shape(image_shape, example_shape: tuple[int, ...]) -> tuple[int, int, int]:
    in_dim = int(np.prod(example_shape))
    if image_shape is None:
        shape = {1: (1, in_dim, 1), 2: (*example_shape, 1), 3: example_shape}.get(
            len(example_shape))
        if shape is None:
            raise DataError(f"cannot tell the image shape of examples shaped {example_shape}; "
                            "pass image_shape=(H, W, C)")
        return tuple(int(d) for d in shape)
    if isinstance(image_shape, (str, bytes)) or not isinstance(
            image_shape, (list, tuple, np.ndarray)) or np.ndim(image_shape) != 1 \
            or len(image_shape) != 3 or not all(
                isinstance(d, numbers.Integral) and not isinstance(d, (bool, np.bool_))
                and 1 <= d <= in_dim for d in image_shape) \
            or math.prod(int(d) for d in image_shape) != in_dim:
        raise DataError(f"image_shape={shown(image_shape)} must be (H, W, C), three positive "
                        f"integers with H*W*C = {in_dim} features")
    return tuple(int(d) for d in image_shape)


def _as_labels(label: str, y, x: np.ndarray) -> np.ndarray:
    y = _as_array(label, y)
    if y.ndim == 2 and y.shape[1] == 1:  # Keras-style (n, 1) column
        y = y[:, 0]
    if y.shape != (len(x),):
        raise DataError(f"{label} has shape {y.shape}; expected ({len(x)},), one label per "
                        "example")
    if y.size and (y.dtype.kind not in "iuf" or (y.dtype.kind == "f" and not (
            np.isfinite(y).all() and np.all(y == np.round(y))))):
        raise DataError(f"{label} must hold integer class indices 0..K-1; got {y.dtype}")
    if y.size and y.min() < 0:
        raise DataError(f"{label} holds negative labels ({y.min()}); classes are 0..K-1")
    if y.size and y.max() > INT32_MAX:  # before the cast, which would wrap it
        raise DataError(f"{label} holds the label {y.max():.6g}; classes are 0..K-1, and "
                        f"a label cannot exceed {INT32_MAX:,}")
    return y.astype(np.int64)


def _as_pixels(x_train: np.ndarray, x_test: np.ndarray):
    """Both sets on one scale: uint8 0..255, or float32 in [0, 1] (rule in from_arrays)."""
    parts = [x for x in (x_train, x_test) if x.size]
    low, high = min(float(x.min()) for x in parts), max(float(x.max()) for x in parts)
    if low < 0 or high > 255:
        raise DataError(f"pixel values range {low:g}..{high:g}; with normalise=True they must "
                        "be 0..255 or 0..1 (pass normalise=False for other features)")
    if all(x.dtype.kind in "iu" for x in (x_train, x_test)):
        return x_train.astype(np.uint8), x_test.astype(np.uint8)
    # Divide in float32, as for uint8, so that whole-valued floats give identical inputs.
    scale = np.float32(255 if high > 1 else 1)
    return x_train.astype(np.float32) / scale, x_test.astype(np.float32) / scale
