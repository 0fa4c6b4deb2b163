"""Small generated datasets and shortcuts shared by the tests."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class ArrayData:
    """Duck-typed stand-in for dendrax.data.Dataset (the trainer needs only these)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple = (28, 28, 1)
    n_classes: int = 10
    name: str = "generated"

    @property
    def in_dim(self) -> int:
        return self.x_train.shape[1]


def prototype_data(n_train=1024, n_val=256, n_test=256, in_dim=784, n_classes=10,
                   noise=1.0, seed=0, image_shape=(28, 28, 1)) -> ArrayData:
    """Classes are noisy copies of random prototypes: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    protos = rng.normal(size=(n_classes, in_dim)).astype(np.float32)

    def split(n):
        y = rng.integers(0, n_classes, n).astype(np.int32)
        x = (protos[y] + noise * rng.normal(size=(n, in_dim))).astype(np.float32)
        return x, y

    return ArrayData(*split(n_train), *split(n_val), *split(n_test),
                     image_shape=image_shape, n_classes=n_classes)
