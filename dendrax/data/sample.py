"""The embedded sample: a stratified, seeded pick of the real Fashion-MNIST files."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

from dendrax.data.catalog import DEBIAN_FASHION_MNIST, IDX_FILES, SAMPLE_DIR, SPECS
from dendrax.data.dataset import DataError
from dendrax.data.formats import Unavailable, read_folder
from dendrax.data.sources import file_list
from dendrax.data.split import stratified_choice


def _write_idx(path: Path, array: np.ndarray) -> None:
    """IDX of unsigned bytes, gzipped with no name or time in the header (reproducible)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                compresslevel=9, mtime=0) as out:
        out.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def make_sample(source_dir: str | os.PathLike = DEBIAN_FASHION_MNIST,
                out_dir: str | os.PathLike = SAMPLE_DIR, *, n_train: int = 5000,
                n_test: int = 1000, seed: int = 0) -> list[Path]:
    """Write the embedded sample: a stratified, seeded pick of the full Fashion-MNIST files.

    Deterministic: the same full files give the same images, labels and order (each
    picked set kept in file order). Returns the four IDX .gz files written.
    """
    spec = SPECS["fashion-mnist"]
    try:
        raw = read_folder(spec, Path(source_dir))
    except Unavailable as miss:
        raise DataError(f"{miss}; it should hold {file_list(spec)}") from None
    rng = np.random.default_rng(seed)
    train = stratified_choice(raw.y_train, n_train, rng)
    test = stratified_choice(raw.y_test, n_test, rng)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    image = spec.image_shape[:2]
    arrays = (raw.x_train[train].reshape(-1, *image), raw.y_train[train],
              raw.x_test[test].reshape(-1, *image), raw.y_test[test])
    paths = [out / f"{name}.gz" for name in IDX_FILES]
    for path, array in zip(paths, arrays):
        _write_idx(path, array)
    return paths
