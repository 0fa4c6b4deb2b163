"""The Dataset value: train / validation / test arrays ready for training, and DataError."""

from __future__ import annotations

import dataclasses

import numpy as np

from dendrax.errors import DendraxError


class DataError(DendraxError, ValueError):
    """Bad data or arguments: names the file or argument and what is wrong with it."""


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Train / validation / test arrays ready for training.

    ``x_*`` are float32 (n, in_dim): images flattened in (H, W, C) order and normalised;
    ``y_*`` are int32 (n,) class indices. Arrays made by this module are read-only.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]
    source: str
    is_sample: bool = False

    def __post_init__(self) -> None:
        if self.x_train.ndim != 2 or len(self.image_shape) != 3 \
                or int(np.prod(self.image_shape)) != self.x_train.shape[1]:
            raise DataError(f"x_train {self.x_train.shape} must be (n, H*W*C) for "
                            f"image_shape (H, W, C) = {self.image_shape}")
        for part in ("train", "val", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != self.in_dim:
                raise DataError(f"x_{part} must be float32 (n, {self.in_dim}); "
                                f"got {x.dtype} {x.shape}")
            if y.dtype != np.int32 or y.shape != (len(x),):
                raise DataError(f"y_{part} must be int32 ({len(x)},); got {y.dtype} {y.shape}")

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_dim(self) -> int:
        return self.x_train.shape[1]

    def summary(self) -> str:
        """Two lines: sizes and shape, then where the data came from."""
        h, w, c = self.image_shape
        return (f"{self.name}: {len(self.x_train):,} train / {len(self.x_val):,} val / "
                f"{len(self.x_test):,} test, {h}×{w}×{c} = {self.in_dim} features, "
                f"{self.n_classes} classes\n  source: {self.source}")
