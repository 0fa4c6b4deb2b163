"""Datasets as flat, normalised numpy arrays: MNIST, Fashion-MNIST, CIFAR-10, or your own.

:func:`load_dataset` tries *sources* in order and uses the first one that has the data:

============ ===========================================================================
``dir``      ``data_dir=`` or ``$DENDRAX_DATA_DIR``: the original files, in a subfolder
             named after the dataset or in the folder itself
``system``   well-known installs: ``/usr/share/datasets/<name>`` (Debian's
             ``dataset-fashion-mnist``)
``tfds``     tensorflow-datasets (``pip install 'dendrax[tfds]'``), in its own data dir
             (``$TFDS_DATA_DIR`` or its default); prepares the dataset if download=True
``download`` the original files from their publishers, checked against sha256 sums and
             cached in ``$XDG_CACHE_HOME/dendrax`` (default ``~/.cache/dendrax``)
``sample``   a small real Fashion-MNIST sample shipped inside the package
============ ===========================================================================

Preprocessing, as in the original toolkit: each image is flattened in (H, W, C) order (so
``x.reshape(-1, *image_shape)`` gives the images back), scaled by 1/255 and normalised as
(x − 0.1307) / 0.3081. Those are MNIST's statistics; like the original, we apply them to
Fashion-MNIST and to CIFAR-10 too (one fixed map from pixel value to input, the same for
every dataset; the inputs are not zero-mean on the other two).

The training file is split into train and validation sets, stratified by class and seeded.
Validation is carved out first, from the whole training file; ``subset_size`` then draws
a stratified, seeded subset of what is left. So the validation set does not depend on
``subset_size``, and scores across subset sizes are comparable. The test set is untouched.

This module needs numpy only. It never imports JAX, so the searcher stays JAX-free.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import gzip
import hashlib
import io
import numbers
import os
import pickle
import struct
import sys
import socket
import tarfile
import urllib.parse
import warnings
import zlib
from pathlib import Path
from typing import Callable, Sequence
from urllib.request import urlopen

import numpy as np

__all__ = ["DATASETS", "SOURCES", "DataError", "Dataset", "from_arrays", "load_dataset",
           "make_sample"]

DATASETS = ("mnist", "fashion-mnist", "cifar10")
SOURCES = ("dir", "system", "tfds", "download", "sample")
MEAN, STD = 0.1307, 0.3081  # MNIST's pixel statistics after /255, as the original uses

SYSTEM_DIRS = (Path("/usr/share/datasets"),)
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
SAMPLE_DIR = Path(__file__).resolve().parent / "_sample"

_ALIASES = {"fashion_mnist": "fashion-mnist", "cifar-10": "cifar10"}
_TFDS_HINT = "pip install 'dendrax[tfds]'"


class DataError(ValueError):
    """Bad data or arguments: names the file or argument and what is wrong with it."""


class _Unavailable(Exception):
    """A source has nothing for this dataset: not the user's fault, try the next one."""


# ---- the value ----------------------------------------------------------------------------

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


# ---- what each dataset is -----------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Download:
    url: str
    sha256: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[1]


@dataclasses.dataclass(frozen=True)
class _Spec:
    name: str
    format: str                      # "idx" or "cifar"
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    folders: tuple[str, ...]         # subfolders of a data dir that may hold the files
    tfds_name: str
    downloads: tuple[_Download, ...]
    install: tuple[str, ...] = ()    # system packages that put the files on this machine

    @property
    def files(self) -> tuple[str, ...]:
        return _IDX_FILES if self.format == "idx" else _CIFAR_FILES


_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
_CIFAR_ARCHIVE = "cifar-10-python.tar.gz"


def _idx_downloads(base: str, sha256s: Sequence[str]) -> tuple[_Download, ...]:
    return tuple(_Download(f"{base}{name}.gz", digest) for name, digest in zip(_IDX_FILES, sha256s))


# Checksums are those tensorflow-datasets and Keras register for the same URLs.
_SPECS = {spec.name: spec for spec in (
    _Spec("mnist", "idx", (28, 28, 1), tuple(str(d) for d in range(10)),
          ("mnist", "MNIST/raw"), "mnist",
          _idx_downloads("https://storage.googleapis.com/cvdf-datasets/mnist/", (
              "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
              "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
              "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
              "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"))),
    _Spec("fashion-mnist", "idx", (28, 28, 1),
          ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot"),
          ("fashion-mnist", "fashion_mnist", "FashionMNIST/raw"), "fashion_mnist",
          _idx_downloads("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", (
              "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
              "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
              "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
              "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5")),
          install=("dataset-fashion-mnist",)),
    _Spec("cifar10", "cifar", (32, 32, 3),
          ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"),
          ("cifar10", "cifar-10", "cifar-10-batches-py"), "cifar10",
          (_Download(f"https://www.cs.toronto.edu/~kriz/{_CIFAR_ARCHIVE}",
                     "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"),)),
)}


def _spec(name: str) -> _Spec:
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _SPECS:
        close = difflib.get_close_matches(key, DATASETS + tuple(_ALIASES), n=1)
        hint = f"did you mean {_ALIASES.get(close[0], close[0])!r}? " if close else ""
        raise DataError(f"unknown dataset {name!r}; {hint}valid names: {', '.join(DATASETS)}")
    return _SPECS[key]


@dataclasses.dataclass(frozen=True)
class _Raw:
    """Pixels as stored: uint8 (n, H*W*C) in (H, W, C) order, labels as read."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


# ---- file formats -------------------------------------------------------------------------

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


def _read_idx_pair(spec: _Spec, images_path: Path, labels_path: Path):
    """Images flattened to (n, H*W) and their labels, checked against each other and spec."""
    images, labels = _read_idx(images_path, 3), _read_idx(labels_path, 1)
    if images.shape[1:] != spec.image_shape[:2]:
        raise DataError(f"{images_path}: images are {images.shape[1]}×{images.shape[2]}; "
                        f"{spec.name} images are {spec.image_shape[0]}×{spec.image_shape[1]}")
    if len(images) != len(labels):
        raise DataError(f"{labels_path}: {len(labels):,} labels, but {images_path} holds "
                        f"{len(images):,} images")
    return images.reshape(len(images), -1), _checked_labels(labels, spec, labels_path)


def _checked_labels(labels: np.ndarray, spec: _Spec, where: object) -> np.ndarray:
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
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _read_cifar_batch(spec: _Spec, data: bytes, where: str):
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
    return hwc, _checked_labels(labels, spec, where)


def _cifar_raw(spec: _Spec, parts: dict[str, tuple[bytes, str]], source: str) -> _Raw:
    """Assemble the five training batches and the test batch (name → (bytes, where))."""
    batches = {name: _read_cifar_batch(spec, data, where)
               for name, (data, where) in parts.items()}
    train = [batches[name] for name in _CIFAR_FILES[:-1]]
    x_test, y_test = batches["test_batch"]
    return _Raw(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]),
                x_test, y_test, source)


def _read_cifar_archive(spec: _Spec, path: Path) -> _Raw:
    """The batches inside cifar-10-python.tar.gz, read in memory (nothing is extracted)."""
    try:
        with tarfile.open(path, "r:*") as archive:
            members = {Path(m.name).name: m for m in archive.getmembers() if m.isfile()}
            missing = [name for name in _CIFAR_FILES if name not in members]
            if missing:
                raise DataError(f"{path}: archive lacks {', '.join(missing)}")
            parts = {name: (archive.extractfile(members[name]).read(),
                            f"{path}:{members[name].name}") for name in _CIFAR_FILES}
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


def _read_folder(spec: _Spec, folder: Path) -> _Raw:
    """The dataset from a subfolder named after it, else from the folder itself.

    Raises _Unavailable when none of the files is there and DataError when they are there
    but incomplete or unreadable.
    """
    if not folder.is_dir():
        raise _Unavailable(f"{folder}: no such folder")
    for place in [folder / sub for sub in spec.folders] + [folder]:
        found = {name: _find(place, name) for name in spec.files}
        present = [path for path in found.values() if path]
        if len(present) == len(found):
            return _read_files(spec, place, found)
        if present:
            missing = [name for name, path in found.items() if path is None]
            raise DataError(f"{place}: incomplete {spec.name} files: found "
                            f"{', '.join(p.name for p in present)} but not {', '.join(missing)}")
        if spec.format == "cifar" and (place / _CIFAR_ARCHIVE).is_file():
            return _read_cifar_archive(spec, place / _CIFAR_ARCHIVE)
    subs = ", ".join(spec.folders)
    raise _Unavailable(f"{folder}: no {spec.name} files in it or in its subfolders {subs}")


def _read_files(spec: _Spec, place: Path, found: dict[str, Path]) -> _Raw:
    if spec.format == "cifar":
        parts = {name: (_read_bytes(path), str(path)) for name, path in found.items()}
        return _cifar_raw(spec, parts, f"CIFAR-10 python batches in {place}")
    x_train, y_train = _read_idx_pair(spec, found[_IDX_FILES[0]], found[_IDX_FILES[1]])
    x_test, y_test = _read_idx_pair(spec, found[_IDX_FILES[2]], found[_IDX_FILES[3]])
    return _Raw(x_train, y_train, x_test, y_test, f"IDX files in {place}")


# ---- sources ------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Request:
    data_dir: str | os.PathLike | None
    download: bool
    log: Callable[[str], None]


def _from_dir(spec: _Spec, request: _Request) -> _Raw:
    """``data_dir`` (must hold the dataset), else ``$DENDRAX_DATA_DIR`` (may lack it)."""
    if request.data_dir is not None:
        try:
            return _read_folder(spec, Path(request.data_dir).expanduser())
        except _Unavailable as miss:
            raise DataError(f"data_dir {miss}; it should hold {_file_list(spec)}") from None
    env = os.environ.get("DENDRAX_DATA_DIR")
    if not env:
        raise _Unavailable("no data_dir given and $DENDRAX_DATA_DIR is not set")
    return _read_folder(spec, Path(env).expanduser())


def _from_system(spec: _Spec, request: _Request) -> _Raw:
    misses = []
    for root in SYSTEM_DIRS:
        try:
            return _read_folder(spec, root)
        except _Unavailable as miss:
            misses.append(str(miss))
    raise _Unavailable("; ".join(misses) or "no system folders configured (SYSTEM_DIRS)")


def _from_tfds(spec: _Spec, request: _Request) -> _Raw:
    """tensorflow-datasets' copy, prepared first if needed; converted from its numpy output.

    Reading needs tensorflow (the ``dendrax[tfds]`` extra brings tensorflow-cpu).
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise _Unavailable(f"tensorflow-datasets is not installed ({_TFDS_HINT})") from None
    data_dir = os.environ.get("TFDS_DATA_DIR") or None
    where = f"tensorflow-datasets {spec.tfds_name!r} in {data_dir or 'its default data dir'}"
    try:
        builder = tfds.builder(spec.tfds_name, data_dir=data_dir)
        if not builder.is_prepared():
            if not request.download:
                raise _Unavailable(f"{where}: not prepared, and download=False")
            host = urllib.parse.urlsplit(spec.downloads[0].url).hostname
            # TFDS retries a dead network for minutes; offline, give up at once instead.
            if not _reachable(spec.downloads[0].url):
                raise _Unavailable(f"{where}: not prepared, and {host} is unreachable")
            builder.download_and_prepare()
        splits = builder.as_dataset(split=["train", "test"], batch_size=-1, as_supervised=True)
        (x_train, y_train), (x_test, y_test) = tfds.as_numpy(splits)
    except ImportError as err:  # tensorflow itself is missing
        raise _Unavailable(f"{where}: {err} ({_TFDS_HINT})") from None
    except _Unavailable:
        raise
    except Exception as err:  # TFDS raises many types: download failed, bad files, ...
        reason = (str(err).strip().splitlines() or [""])[0]
        raise _Unavailable(f"{where}: {type(err).__name__}: {reason}") from None
    for x, split in ((x_train, "train"), (x_test, "test")):
        if x.shape[1:] != spec.image_shape:
            raise DataError(f"{where}: {split} images have shape {x.shape[1:]}, "
                            f"expected {spec.image_shape}")
    return _Raw(x_train.reshape(len(x_train), -1), _checked_labels(y_train, spec, where),
                x_test.reshape(len(x_test), -1), _checked_labels(y_test, spec, where), where)


def _reachable(url: str, timeout: float = 5.0) -> bool:
    """Whether url's host accepts a TCP connection within timeout seconds."""
    parts = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection(
                (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)),
                timeout=timeout):
            return True
    except OSError:
        return False


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dendrax"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(item: _Download, dest: Path, log: Callable[[str], None]) -> None:
    """Download item.url to dest, keeping it only if its sha256 matches."""
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    log(f"downloading {item.url}")
    try:
        with urlopen(item.url, timeout=60) as response, open(part, "wb") as out:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != item.sha256:
            raise DataError(f"checksum mismatch: sha256 {digest.hexdigest()}, expected "
                            f"{item.sha256}; download discarded")
        part.replace(dest)
    finally:
        part.unlink(missing_ok=True)


def _from_download(spec: _Spec, request: _Request) -> _Raw:
    """The publishers' files, verified and cached; with download=False only the cache."""
    folder = _cache_dir() / spec.name
    missing = [item for item in spec.downloads
               if not ((folder / item.filename).is_file()
                       and _sha256(folder / item.filename) == item.sha256)]
    if missing and not request.download:
        raise _Unavailable(f"{folder}: not cached, and download=False")
    for item in missing:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            _fetch(item, folder / item.filename, request.log)
        except (OSError, DataError) as err:  # URLError and timeouts are OSErrors
            # Stop at the first failure: every file is needed, and when the network is
            # down each further try would only wait out its own timeout.
            raise _Unavailable(f"{item.url}: {err}") from None
    raw = _read_folder(spec, folder)
    return dataclasses.replace(raw, source=f"{raw.source} (downloaded from "
                                           f"{spec.downloads[0].url.rsplit('/', 1)[0]})")


def _from_sample(spec: _Spec, request: _Request) -> _Raw:
    if spec.name != "fashion-mnist":
        raise _Unavailable("the embedded sample is Fashion-MNIST only")
    raw = _read_folder(spec, SAMPLE_DIR)
    return dataclasses.replace(raw, source=(
        f"embedded sample ({len(raw.x_train):,} train + {len(raw.x_test):,} test images of "
        f"the real Fashion-MNIST, in {SAMPLE_DIR})"))


_SOURCE_FUNCTIONS = {"dir": _from_dir, "system": _from_system, "tfds": _from_tfds,
                     "download": _from_download, "sample": _from_sample}


# ---- loading ------------------------------------------------------------------------------

def load_dataset(name: str = "fashion-mnist", *, data_dir: str | os.PathLike | None = None,
                 subset_size: int | None = None, validation_fraction: float = 0.1,
                 seed: int = 0, sources: Sequence[str] | None = None, download: bool = True,
                 verbose: bool = False) -> Dataset:
    """Load a dataset from the first source that has it (see the module docstring).

    Args:
      name: "mnist", "fashion-mnist" ("fashion_mnist") or "cifar10" ("cifar-10").
      data_dir: a folder holding the original files; overrides $DENDRAX_DATA_DIR. Files
        missing or unreadable there raise at once rather than falling back.
      subset_size: keep this many training examples (stratified, seeded), chosen after
        the validation set is carved out; all of them if there are fewer.
      validation_fraction: share of the training file held out, stratified; 0 gives empty
        validation arrays.
      seed: fixes the validation split and the subset.
      sources: the sources to try, in order; default SOURCES.
      download: allow the "tfds" and "download" sources to fetch from the internet.
      verbose: print each place tried and the result.

    Raises:
      DataError: bad arguments, unreadable files in a folder you named, or no source has
        the data (the message lists every place tried and why, and how to fix it).
    """
    spec = _spec(name)
    order = _check_sources(sources)
    _check_split_args(validation_fraction, subset_size, seed)
    log = (lambda message: print(f"dendrax.data: {message}", flush=True)) if verbose \
        else (lambda message: None)
    request = _Request(data_dir, bool(download), log)
    tried = []
    for source in order:
        try:
            raw = _SOURCE_FUNCTIONS[source](spec, request)
        except _Unavailable as miss:
            reason = str(miss)
        except DataError as err:
            if source == "dir":  # files the user named are bad: never fall back silently
                raise
            reason = str(err)
        else:
            if source == "sample":
                _announce_sample(spec, raw, fallback=bool(tried), verbose=verbose, log=log)
            dataset = _assemble(spec.name, raw.x_train, raw.y_train, raw.x_test, raw.y_test,
                                image_shape=spec.image_shape, class_names=spec.class_names,
                                validation_fraction=validation_fraction,
                                subset_size=subset_size, seed=seed, source=raw.source,
                                is_sample=source == "sample")
            log(dataset.summary())
            return dataset
        tried.append((source, reason))
        log(f"{source}: {reason}")
    raise DataError(_not_found_message(spec, tried, download))


def _check_sources(sources: Sequence[str] | None) -> tuple[str, ...]:
    order = SOURCES if sources is None else (sources,) if isinstance(sources, str) \
        else tuple(sources)
    if not order:
        raise DataError(f"sources is empty; choose from {', '.join(SOURCES)}")
    for source in order:
        if source not in SOURCES:
            close = difflib.get_close_matches(str(source), SOURCES, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise DataError(f"unknown source {source!r}; {hint}choose from {', '.join(SOURCES)}")
    return order


def _file_list(spec: _Spec) -> str:
    if spec.format == "cifar":
        return f"{', '.join(_CIFAR_FILES)} or {_CIFAR_ARCHIVE}"
    return ", ".join(f"{name}[.gz]" for name in _IDX_FILES)


def _fixes(spec: _Spec, download: bool) -> list[tuple[str, str]]:
    """(command, what it does) pairs that would put the full dataset within reach."""
    fixes = [(f"sudo apt-get install {package}", f"installs /usr/share/datasets/{spec.name}")
             for package in spec.install]
    fixes.append((_TFDS_HINT, f"tensorflow-datasets then downloads {spec.tfds_name} once"))
    fixes.append(("export DENDRAX_DATA_DIR=/path/to/data",
                  f"a folder whose {spec.name}/ holds {_file_list(spec)}"))
    if not download:
        fixes.append(("load_dataset(..., download=True)", "on a machine with internet access"))
    return fixes


def _not_found_message(spec: _Spec, tried: list[tuple[str, str]], download: bool) -> str:
    lines = [f"could not load {spec.name}; looked in:"]
    lines += [f"  {source:<9} {why}" for source, why in tried]
    lines.append("any one of these fixes it:")
    lines += [f"  {command}   # {note}" for command, note in _fixes(spec, download)]
    return "\n".join(lines)


def _announce_sample(spec: _Spec, raw: _Raw, *, fallback: bool, verbose: bool, log) -> None:
    """Make it obvious that the small sample, not the full dataset, is in use."""
    message = (f"using the EMBEDDED SAMPLE of {spec.name} ({len(raw.x_train):,} train + "
               f"{len(raw.x_test):,} test images), not the full dataset. For the full set: "
               + " or ".join(f"`{command}`" for command, _ in _fixes(spec, True)))
    log(message)
    if fallback and not verbose:  # asked for the full set, got the sample: say so anyway
        warnings.warn(f"dendrax.data: {message}", stacklevel=3)


# ---- from the user's own arrays -----------------------------------------------------------

def from_arrays(x_train, y_train, x_test, y_test, *, name: str = "custom",
                image_shape: Sequence[int] | None = None,
                class_names: Sequence[str] | None = None, validation_fraction: float = 0.1,
                subset_size: int | None = None, seed: int = 0,
                normalise: bool = True) -> Dataset:
    """A Dataset from your own arrays, split and normalised like the built-in ones.

    x: (n, ...) features; each example is flattened row-major. 3-D input (n, H, W) is
    taken as grey images, 4-D (n, H, W, C) as channels-last images; for 2-D input pass
    ``image_shape`` (otherwise (1, in_dim, 1), a row of features). y: integer classes
    0..K-1; n_classes is K = max label + 1 (or len(class_names)), in_dim is inferred.

    normalise=True: integer pixels must be 0..255 and float pixels whose maximum exceeds 1
    are taken as 0..255 too; both are divided by 255. Float pixels within [0, 1] are taken
    as already scaled. Then (x − 0.1307) / 0.3081, as for the built-in datasets.
    normalise=False: features are used as given (cast to float32).
    """
    _check_split_args(validation_fraction, subset_size, seed)
    x_train, x_test = np.asarray(x_train), np.asarray(x_test)
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
    shape = _image_shape(image_shape, x_train.shape[1:])
    y_train, y_test = _as_labels("y_train", y_train, x_train), _as_labels("y_test", y_test, x_test)
    n_classes = int(max(y_train.max(), y_test.max(initial=0))) + 1
    if class_names is None:
        class_names = tuple(str(k) for k in range(n_classes))
    elif len(class_names) < n_classes:
        raise DataError(f"{len(class_names)} class_names for labels up to {n_classes - 1}")
    flat_train = x_train.reshape(len(x_train), -1)
    flat_test = x_test.reshape(len(x_test), -1)
    if normalise:
        flat_train, flat_test = _as_pixels(flat_train, flat_test)
    return _assemble(name, flat_train, y_train, flat_test, y_test, image_shape=shape,
                     class_names=tuple(str(c) for c in class_names),
                     validation_fraction=validation_fraction, subset_size=subset_size,
                     seed=seed, source=f"arrays given to from_arrays ({name})",
                     normalise=normalise)


def _image_shape(image_shape, example_shape: tuple[int, ...]) -> tuple[int, int, int]:
    in_dim = int(np.prod(example_shape))
    if image_shape is None:
        shape = {1: (1, in_dim, 1), 2: (*example_shape, 1), 3: example_shape}.get(
            len(example_shape))
        if shape is None:
            raise DataError(f"cannot tell the image shape of examples shaped {example_shape}; "
                            "pass image_shape=(H, W, C)")
        return tuple(int(d) for d in shape)
    shape = tuple(int(d) for d in image_shape)
    if len(shape) != 3 or int(np.prod(shape)) != in_dim:
        raise DataError(f"image_shape {tuple(image_shape)} must be (H, W, C) with "
                        f"H*W*C = {in_dim} features")
    return shape


def _as_labels(label: str, y, x: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:  # Keras-style (n, 1) column
        y = y[:, 0]
    if y.shape != (len(x),):
        raise DataError(f"{label} has shape {y.shape}; expected ({len(x)},), one label per "
                        "example")
    if y.size and (y.dtype.kind not in "iuf" or (y.dtype.kind == "f"
                                                  and not np.all(y == np.round(y)))):
        raise DataError(f"{label} must hold integer class indices 0..K-1; got {y.dtype}")
    if y.size and y.min() < 0:
        raise DataError(f"{label} holds negative labels ({y.min()}); classes are 0..K-1")
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


# ---- split and normalise ------------------------------------------------------------------

def _features(x: np.ndarray, normalise: bool) -> np.ndarray:
    """Read-only float32 features; normalise: uint8 pixels / 255 (others are already in
    [0, 1]), then (x − 0.1307) / 0.3081, all in float32."""
    out = x.astype(np.float32)
    if normalise:
        if x.dtype == np.uint8:
            out /= np.float32(255)
        out = (out - np.float32(MEAN)) / np.float32(STD)
    return _frozen(out)


def _frozen(array: np.ndarray) -> np.ndarray:
    """The array made read-only: a Dataset is a value, shared without copies."""
    array.flags.writeable = False
    return array


def _check_split_args(validation_fraction, subset_size, seed) -> None:
    if (not isinstance(validation_fraction, numbers.Real) or isinstance(validation_fraction, bool)
            or not 0 <= validation_fraction < 1):
        raise DataError(f"validation_fraction={validation_fraction!r} must be a number in [0, 1)")
    if subset_size is not None and (not isinstance(subset_size, numbers.Integral)
                                    or isinstance(subset_size, bool) or subset_size < 1):
        raise DataError(f"subset_size={subset_size!r} must be None or an integer >= 1")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise DataError(f"seed={seed!r} must be an integer >= 0")


def _stratified_choice(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
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
    val = _stratified_choice(labels, n_val, rng)
    train = np.setdiff1d(np.arange(len(labels)), val)
    if subset_size is not None and subset_size < len(train):
        train = train[_stratified_choice(labels[train], subset_size, rng)]
    return train, val


def _assemble(name, x_train, y_train, x_test, y_test, *, image_shape, class_names,
              validation_fraction, subset_size, seed, source, is_sample=False,
              normalise=True) -> Dataset:
    """Split the training set, then convert every part to read-only float32/int32."""
    train, val = _split(y_train, validation_fraction, subset_size, seed)
    return Dataset(name=name,
                   x_train=_features(x_train[train], normalise),
                   y_train=_frozen(y_train[train].astype(np.int32)),
                   x_val=_features(x_train[val], normalise),
                   y_val=_frozen(y_train[val].astype(np.int32)),
                   x_test=_features(x_test, normalise),
                   y_test=_frozen(y_test.astype(np.int32)),
                   class_names=tuple(class_names), image_shape=tuple(image_shape),
                   source=source, is_sample=is_sample)


# ---- the embedded sample ------------------------------------------------------------------

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
    spec = _SPECS["fashion-mnist"]
    try:
        raw = _read_folder(spec, Path(source_dir))
    except _Unavailable as miss:
        raise DataError(f"{miss}; it should hold {_file_list(spec)}") from None
    rng = np.random.default_rng(seed)
    train = _stratified_choice(raw.y_train, n_train, rng)
    test = _stratified_choice(raw.y_test, n_test, rng)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    image = spec.image_shape[:2]
    arrays = (raw.x_train[train].reshape(-1, *image), raw.y_train[train],
              raw.x_test[test].reshape(-1, *image), raw.y_test[test])
    paths = [out / f"{name}.gz" for name in _IDX_FILES]
    for path, array in zip(paths, arrays):
        _write_idx(path, array)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dendrax.data [NAME]``: where NAME loads from; ``--make-sample``: rebuild
    dendrax/_sample from the full Fashion-MNIST files."""
    parser = argparse.ArgumentParser(
        prog="python -m dendrax.data",
        description="Show where a dataset loads from (every place tried), or with "
                    "--make-sample rebuild the embedded Fashion-MNIST sample.")
    parser.add_argument("name", nargs="?", default="fashion-mnist", help="dataset to load")
    parser.add_argument("--data-dir", help="folder holding the original files")
    parser.add_argument("--no-download", action="store_true", help="never fetch from the web")
    parser.add_argument("--make-sample", action="store_true",
                        help="write the embedded Fashion-MNIST sample instead of loading")
    parser.add_argument("--from", dest="source_dir", default=str(DEBIAN_FASHION_MNIST),
                        help="full Fashion-MNIST files for --make-sample (default: %(default)s)")
    parser.add_argument("--out", default=str(SAMPLE_DIR),
                        help="where --make-sample writes (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        if args.make_sample:
            for path in make_sample(args.source_dir, args.out):
                print(f"wrote {path} ({path.stat().st_size:,} bytes)")
        else:
            load_dataset(args.name, data_dir=args.data_dir, download=not args.no_download,
                         verbose=True)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
