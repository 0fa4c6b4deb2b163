"""What each built-in dataset is: its files, image shape, classes, TFDS name and downloads."""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Sequence

import numpy as np

from dendrax.data.dataset import DataError

DATASETS = ("mnist", "fashion-mnist", "cifar10")
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
SYSTEM_DIRS = (Path("/usr/share/datasets"),)
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "_sample"
ALIASES = {"fashion_mnist": "fashion-mnist", "cifar-10": "cifar10"}
TFDS_HINT = "pip install 'dendrax[tfds]'"


@dataclasses.dataclass(frozen=True)
class Download:
    url: str
    sha256: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[1]


@dataclasses.dataclass(frozen=True)
class Spec:
    name: str
    format: str                      # "idx" or "cifar"
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    folders: tuple[str, ...]         # subfolders of a data dir that may hold the files
    tfds_name: str
    downloads: tuple[Download, ...]
    install: tuple[str, ...] = ()    # system packages that put the files on this machine
    # Per-channel statistics of pixel/255 that normalise the inputs, as the original's
    # loaders: MNIST's for MNIST and Fashion-MNIST, CIFAR-10's own for CIFAR-10.
    mean: tuple[float, ...] = MNIST_MEAN
    std: tuple[float, ...] = MNIST_STD

    @property
    def files(self) -> tuple[str, ...]:
        return IDX_FILES if self.format == "idx" else CIFAR_FILES


IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"


def idx_downloads(base: str, sha256s: Sequence[str]) -> tuple[Download, ...]:
    return tuple(Download(f"{base}{name}.gz", digest) for name, digest in zip(IDX_FILES, sha256s))


# Checksums are those tensorflow-datasets and Keras register for the same URLs.
SPECS = {spec.name: spec for spec in (
    Spec("mnist", "idx", (28, 28, 1), tuple(str(d) for d in range(10)),
          ("mnist", "MNIST/raw"), "mnist",
          idx_downloads("https://storage.googleapis.com/cvdf-datasets/mnist/", (
              "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
              "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
              "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
              "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"))),
    Spec("fashion-mnist", "idx", (28, 28, 1),
          ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot"),
          ("fashion-mnist", "fashion_mnist", "FashionMNIST/raw"), "fashion_mnist",
          idx_downloads("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", (
              "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
              "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
              "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
              "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5")),
          install=("dataset-fashion-mnist",)),
    Spec("cifar10", "cifar", (32, 32, 3),
          ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"),
          ("cifar10", "cifar-10", "cifar-10-batches-py"), "cifar10",
          (Download(f"https://www.cs.toronto.edu/~kriz/{CIFAR_ARCHIVE}",
                     "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"),),
          mean=CIFAR10_MEAN, std=CIFAR10_STD),
)}


def dataset_spec(name: str) -> Spec:
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in SPECS:
        close = difflib.get_close_matches(key, DATASETS + tuple(ALIASES), n=1)
        hint = f"did you mean {ALIASES.get(close[0], close[0])!r}? " if close else ""
        raise DataError(f"unknown dataset {name!r}; {hint}valid names: {', '.join(DATASETS)}")
    return SPECS[key]


@dataclasses.dataclass(frozen=True)
class Raw:
    """Pixels as stored: uint8 (n, H*W*C) in (H, W, C) order, labels as read."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
