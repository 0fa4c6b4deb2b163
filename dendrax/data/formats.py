"""File formats: IDX (raw or gzip) and CIFAR-10 python batches (folder or tar.gz).

Readers raise :class:`DataError` naming the file and what is wrong with it, and
:class:`Unavailable` when a folder simply does not hold the dataset.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
import zlib
from pathlib import Path

import numpy as np

from dendrax.data.catalog import CIFAR_ARCHIVE, CIFAR_FILES, IDX_FILES, Raw, Spec
from dendrax.data.dataset import DataError


class Unavailable(Exception):
    """A source has nothing for this dataset: not the user's fault, try the next one."""



def _read_bytes(path: Path) -> bytes:
    """The file's contents, gunzipped when it is gzip (told by its magic bytes, not its name)."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from err
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: corrupt or truncated gzip data ({err})") from err


_IDX_KINDS = {0x0801: "labels (idx1)", 0x0803: "images (idx3)"}


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes with ``ndim`` dimensions (3: images, 1: labels).

    Layout: magic 0x00 0x00 0x08 ndim, then ndim big-endian uint32 sizes, then the bytes.
    """
    data = _read_bytes(path)
    header = 4 + 4 * ndim
    magic = 0x0800 | ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated: {len(data)} bytes, shorter than an IDX header")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        what = _IDX_KINDS.get(found, "not an IDX file of unsigned bytes")
        raise DataError(f"{path}: wrong IDX magic number 0x{found:08x} ({what}); "
                        f"expected 0x{magic:08x}, {_IDX_KINDS[magic]}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    size = int(np.prod(shape))
    if len(data) - header != size:
        problem = "truncated" if len(data) - header < size else "trailing bytes"
        raise DataError(f"{path}: {problem}: the header gives shape {shape} ({size:,} bytes) "
                        f"but {len(data) - header:,} bytes follow it")
    return np.frombuffer(data, np.uint8, count=size, offset=header).reshape(shape)


def _read_idx_pair(spec: Spec, images_path: Path, labels_path: Path):
    """Images flattened to (n, H*W) and their labels, checked against each other and spec."""
    images, labels = _read_idx(images_path, 3), _read_idx(labels_path, 1)
    if len(images) == 0 or images.shape[1] * images.shape[2] == 0:
        raise DataError(f"{images_path}: holds no pixels (shape {images.shape}); a dataset "
                        f"file needs at least one image")
    if images.shape[1:] != spec.image_shape[:2]:
        raise DataError(f"{images_path}: images are {images.shape[1]}×{images.shape[2]}; "
                        f"{spec.name} images are {spec.image_shape[0]}×{spec.image_shape[1]}")
    if len(images) != len(labels):
        raise DataError(f"{labels_path}: {len(labels):,} labels, but {images_path} holds "
                        f"{len(images):,} images")
    return images.reshape(len(images), -1), checked_labels(labels, spec, labels_path)


def checked_labels(labels: np.ndarray, spec: Spec, where: object) -> np.ndarray:
    if labels.size and not 0 <= labels.min() <= labels.max() < len(spec.class_names):
        raise DataError(f"{where}: labels range {labels.min()}..{labels.max()}; "
                        f"{spec.name} has classes 0..{len(spec.class_names) - 1}")
    return labels


class _BatchUnpickler(pickle.Unpickler):
    """Builds only what a CIFAR batch holds: dicts, lists, bytes, ints and numpy arrays."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"),
                ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module: str, name: str):
        if (module, name) == ("_codecs", "encode"):
            # How protocol 2 stores bytes pickled by Python 3 (a batch re-saved with
            # pickle.dump): _codecs.encode(text, "latin1"). Only that codec is allowed.
            return _latin1_bytes
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _latin1_bytes(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing to load _codecs.encode(..., {encoding!r})")
    return text.encode("latin1")


def _read_cifar_batch(spec: Spec, data: bytes, where: str):
    """One pickled CIFAR-10 batch → (uint8 (n, 3072) in (H, W, C) order, labels).

    The file is a dict: b"data" uint8 (n, 3072), each row 1024 red, then 1024 green, then
    1024 blue values, each plane row-major; b"labels" n ints in 0..9.
    """
    try:
        batch = _BatchUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as err:  # pickle raises many types on bad input; all mean "corrupt"
        raise DataError(f"{where}: not a readable CIFAR-10 batch ({type(err).__name__}: "
                        f"{err})") from err
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{where}: not a CIFAR-10 batch: expected a dict with b'data' and "
                        "b'labels'")
    pixels, labels = batch[b"data"], np.asarray(batch[b"labels"])
    if not (isinstance(pixels, np.ndarray) and pixels.dtype == np.uint8 and pixels.ndim == 2
            and pixels.shape[1] == 3072):
        raise DataError(f"{where}: b'data' must be uint8 (n, 3072); got "
                        f"{getattr(pixels, 'dtype', type(pixels).__name__)} "
                        f"{getattr(pixels, 'shape', '')}")
    if labels.shape != (len(pixels),) or (labels.size and labels.dtype.kind not in "iu"):
        raise DataError(f"{where}: {labels.size:,} labels for {len(pixels):,} images")
    hwc = pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).reshape(len(pixels), -1)
    return hwc, checked_labels(labels, spec, where)


def _cifar_raw(spec: Spec, parts: dict[str, tuple[bytes, str]], source: str) -> Raw:
    """Assemble the five training batches and the test batch (name → (bytes, where))."""
    batches = {name: _read_cifar_batch(spec, data, where)
               for name, (data, where) in parts.items()}
    train = [batches[name] for name in CIFAR_FILES[:-1]]
    x_test, y_test = batches["test_batch"]
    return Raw(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]),
                x_test, y_test, source)


def _read_cifar_archive(spec: Spec, path: Path) -> Raw:
    """The batches inside cifar-10-python.tar.gz, read in memory (nothing is extracted)."""
    try:
        with tarfile.open(path, "r:*") as archive:
            members = {Path(m.name).name: m for m in archive.getmembers() if m.isfile()}
            missing = [name for name in CIFAR_FILES if name not in members]
            if missing:
                raise DataError(f"{path}: archive lacks {', '.join(missing)}")
            parts = {name: (archive.extractfile(members[name]).read(),
                            f"{path}:{members[name].name}") for name in CIFAR_FILES}
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: corrupt or truncated archive ({err})") from err
    return _cifar_raw(spec, parts, f"CIFAR-10 archive {path}")


# ---- finding files in a folder ------------------------------------------------------------

def _find(folder: Path, name: str) -> Path | None:
    """``name`` or ``name.gz`` in folder (raw preferred: no decompression)."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_folder(spec: Spec, folder: Path) -> Raw:
    """The dataset from a subfolder named after it, else from the folder itself.

    Raises Unavailable when none of the files is there and DataError when they are there
    but incomplete or unreadable.
    """
    if not folder.is_dir():
        raise Unavailable(f"{folder}: no such folder")
    for place in [folder / sub for sub in spec.folders] + [folder]:
        found = {name: _find(place, name) for name in spec.files}
        present = [path for path in found.values() if path]
        if len(present) == len(found):
            return _read_files(spec, place, found)
        if present:
            missing = [name for name, path in found.items() if path is None]
            raise DataError(f"{place}: incomplete {spec.name} files: found "
                            f"{', '.join(p.name for p in present)} but not {', '.join(missing)}")
        if spec.format == "cifar" and (place / CIFAR_ARCHIVE).is_file():
            return _read_cifar_archive(spec, place / CIFAR_ARCHIVE)
    subs = ", ".join(spec.folders)
    raise Unavailable(f"{folder}: no {spec.name} files in it or in its subfolders {subs}")


def _read_files(spec: Spec, place: Path, found: dict[str, Path]) -> Raw:
    if spec.format == "cifar":
        parts = {name: (_read_bytes(path), str(path)) for name, path in found.items()}
        return _cifar_raw(spec, parts, f"CIFAR-10 python batches in {place}")
    x_train, y_train = _read_idx_pair(spec, found[IDX_FILES[0]], found[IDX_FILES[1]])
    x_test, y_test = _read_idx_pair(spec, found[IDX_FILES[2]], found[IDX_FILES[3]])
    return Raw(x_train, y_train, x_test, y_test, f"IDX files in {place}")
