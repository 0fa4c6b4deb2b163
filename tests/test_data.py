"""dendrax.data: real Fashion-MNIST, every file format and source, and every bad input.

MNIST and CIFAR-10 cannot be fetched here, so their loaders run on files these tests
write in the published formats. Nothing here touches the network or ~/.cache.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import pickle
import socket
import struct
import sys
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from dendrax import data
from dendrax.data import __main__ as data_command
from dendrax.data import catalog, sources
from dendrax.data import DataError, from_arrays, load_dataset

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
REACHABLE = sources._reachable  # the tests replace it: they never touch the network
IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


CIFAR_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))


def formula(pixels: np.ndarray, stats=((0.1307,), (0.3081,))) -> np.ndarray:
    """The documented preprocessing, written out in float32: per channel (the last axis of
    the (H, W, C) order) for CIFAR-10's statistics."""
    mean, std = (np.asarray(v, np.float32) for v in stats)
    x = pixels.astype(np.float32) / np.float32(255)
    n = len(x)
    return ((x.reshape(n, -1, len(mean)) - mean) / std).reshape(n, -1)


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No user data dirs, a private cache, and no network unless a test serves it."""
    for var in ("DENDRAX_DATA_DIR", "TFDS_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def offline(url, timeout=None):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(sources, "urlopen", offline)
    monkeypatch.setattr(sources, "_reachable", lambda url: False)


# ---- writers for the published formats (independent of the code under test) --------------

def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    magic = (0x0800 | array.ndim) if magic is None else magic
    return (struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
            + array.astype(np.uint8).tobytes())


def fake_images(n: int, rng, shape=(28, 28)) -> tuple[np.ndarray, np.ndarray]:
    labels = (np.arange(n) % 10).astype(np.uint8)
    return rng.integers(0, 256, (n, *shape), dtype=np.uint8), labels


def write_idx_set(folder: Path, *, gz: bool, n_train=200, n_test=50, seed=0, shape=(28, 28)):
    """The four MNIST files in folder; returns (x_train, y_train, x_test, y_test)."""
    rng = np.random.default_rng(seed)
    arrays = (*fake_images(n_train, rng, shape), *fake_images(n_test, rng, shape))
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in zip(IDX, arrays):
        payload = idx_bytes(array)
        (folder / (name + ".gz" if gz else name)).write_bytes(
            gzip.compress(payload) if gz else payload)
    return arrays


class Py2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2 strings, as cPickle did for the real CIFAR files."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    def save_str(self, obj):
        self.save_bytes(obj.encode("latin-1"))

    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    # numpy 1.x, which wrote the real files, named the module numpy.core.multiarray.
    return buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def cifar_batch(images_hwc: np.ndarray, labels: np.ndarray, label: str) -> bytes:
    rows = images_hwc.transpose(0, 3, 1, 2).reshape(len(images_hwc), 3072)  # R, G, B planes
    return py2_pickle({"batch_label": label, "labels": [int(v) for v in labels], "data": rows,
                       "filenames": [f"img_{i}.png" for i in range(len(labels))]})


def cifar_files(n_per_batch=20, seed=0):
    """{file name: bytes} of a CIFAR-10 python release, and the images (n, 32, 32, 3)."""
    rng = np.random.default_rng(seed)
    files, train = {}, []
    for i in range(1, 6):
        x, y = fake_images(n_per_batch, rng, (32, 32, 3))
        files[f"data_batch_{i}"] = cifar_batch(x, y, f"training batch {i} of 5")
        train.append((x, y))
    x_test, y_test = fake_images(n_per_batch, rng, (32, 32, 3))
    files["test_batch"] = cifar_batch(x_test, y_test, "testing batch 1 of 1")
    files["batches.meta"] = py2_pickle({"label_names": list(catalog.SPECS["cifar10"].class_names),
                                        "num_cases_per_batch": n_per_batch, "num_vis": 3072})
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return files, (x_train, y_train, x_test, y_test)


def write_cifar_tar(path: Path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as archive:
        for name, payload in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))


def examples(x: np.ndarray, y: np.ndarray) -> list[bytes]:
    """The (features, label) pairs as a sorted list of digests: a multiset to compare."""
    return sorted(hashlib.sha1(row.tobytes() + int(label).to_bytes(2, "big")).digest()
                  for row, label in zip(x, y))


def train_and_val(ds) -> list[bytes]:
    """Training and validation examples together: the whole training file, if split right."""
    return sorted(examples(ds.x_train, ds.y_train) + examples(ds.x_val, ds.y_val))


def file_examples(pixels: np.ndarray, labels: np.ndarray, stats=((0.1307,), (0.3081,))
                  ) -> list[bytes]:
    return examples(formula(pixels.reshape(len(pixels), -1), stats), labels)


def moments(*parts: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation over all parts, accumulated in float64 block by block."""
    total = squares = count = 0.0
    for part in parts:
        for block in np.array_split(part, max(1, len(part) // 4096)):
            block = block.astype(np.float64)
            total += block.sum()
            squares += (block ** 2).sum()
            count += block.size
    mean = total / count
    return mean, float(np.sqrt(squares / count - mean ** 2))


# ---- real Fashion-MNIST from the Debian package -------------------------------------------

@pytest.fixture(scope="module")
def debian_files() -> dict[str, np.ndarray]:
    missing = [name for name in IDX if not (DEBIAN / f"{name}.gz").is_file()]
    if missing:
        pytest.fail(f"Fashion-MNIST is not installed ({', '.join(missing)} missing from "
                    f"{DEBIAN}); run: sudo apt-get install dataset-fashion-mnist")
    raw = {}
    for name in IDX:
        payload = gzip.decompress((DEBIAN / f"{name}.gz").read_bytes())
        raw[name] = np.frombuffer(payload, np.uint8, offset=16 if "images" in name else 8)
    return raw


@pytest.fixture(scope="module")
def fashion(debian_files):
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DENDRAX_DATA_DIR", raising=False)
        return load_dataset()  # every default: the system source has it


def test_fashion_comes_from_debian_with_the_documented_shapes(fashion):
    assert fashion.source == f"IDX files in {DEBIAN}" and not fashion.is_sample
    assert (fashion.name, fashion.n_classes, fashion.in_dim) == ("fashion-mnist", 10, 784)
    assert fashion.image_shape == (28, 28, 1) and fashion.class_names[0] == "T-shirt/top"
    for part, n in (("train", 54000), ("val", 6000), ("test", 10000)):
        x, y = getattr(fashion, f"x_{part}"), getattr(fashion, f"y_{part}")
        assert x.shape == (n, 784) and x.dtype == np.float32
        assert y.shape == (n,) and y.dtype == np.int32
        assert y.min() == 0 and y.max() == 9
        assert not x.flags.writeable and not y.flags.writeable
    lines = fashion.summary().splitlines()
    assert len(lines) == 2 and "54,000 train / 6,000 val / 10,000 test" in lines[0]


def test_fashion_normalisation_follows_the_formula(fashion, debian_files):
    raw_mean, raw_std = moments(debian_files["train-images-idx3-ubyte"] / np.float32(255))
    assert raw_mean == pytest.approx(0.2860, abs=5e-4)  # Fashion-MNIST's known mean
    mean, std = moments(fashion.x_train, fashion.x_val)
    assert mean == pytest.approx((raw_mean - 0.1307) / 0.3081, rel=1e-5)
    assert std == pytest.approx(raw_std / 0.3081, rel=1e-5)
    test_pixels = debian_files["t10k-images-idx3-ubyte"].reshape(10000, 784)
    np.testing.assert_array_equal(fashion.x_test, formula(test_pixels))  # file order kept
    np.testing.assert_array_equal(fashion.y_test, debian_files["t10k-labels-idx1-ubyte"])


def test_fashion_validation_split_is_stratified_and_a_partition(fashion, debian_files):
    assert np.bincount(fashion.y_val).tolist() == [600] * 10
    assert np.bincount(fashion.y_train).tolist() == [5400] * 10
    assert train_and_val(fashion) == file_examples(debian_files["train-images-idx3-ubyte"]
                                                   .reshape(60000, 784),
                                                   debian_files["train-labels-idx1-ubyte"])


def test_fashion_split_depends_on_the_seed_only(fashion):
    again = load_dataset(sources=("system",), seed=0)
    np.testing.assert_array_equal(again.x_val, fashion.x_val)
    np.testing.assert_array_equal(again.y_train, fashion.y_train)
    other = load_dataset(sources=("system",), seed=1)
    assert np.bincount(other.y_val).tolist() == [600] * 10
    assert not np.array_equal(other.x_val, fashion.x_val)
    np.testing.assert_array_equal(other.x_test, fashion.x_test)


# ---- IDX files in a folder ----------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("layout", ["flat", "subfolder"])
def test_idx_files_load_from_data_dir(tmp_path, gz, layout):
    folder = tmp_path / "mnist" if layout == "subfolder" else tmp_path
    x_train, y_train, x_test, y_test = write_idx_set(folder, gz=gz)
    ds = load_dataset("mnist", data_dir=tmp_path, sources=("dir",), validation_fraction=0.2)
    assert ds.source == f"IDX files in {folder}"
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (160, 40, 50)
    assert ds.class_names == tuple("0123456789") and ds.image_shape == (28, 28, 1)
    np.testing.assert_array_equal(ds.x_test, formula(x_test.reshape(50, 784)))
    np.testing.assert_array_equal(ds.y_test, y_test)
    assert train_and_val(ds) == file_examples(x_train, y_train)


def test_environment_variable_names_a_data_root(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "data" / "fashion-mnist", gz=True)
    monkeypatch.setenv("DENDRAX_DATA_DIR", str(tmp_path / "data"))
    ds = load_dataset("fashion_mnist", sources=("dir",))
    assert ds.source == f"IDX files in {tmp_path / 'data' / 'fashion-mnist'}"
    # A root without this dataset is no error: the next source is tried.
    write_idx_set(tmp_path / "system" / "mnist", gz=False)
    monkeypatch.setattr(sources, "SYSTEM_DIRS", (tmp_path / "system",))
    ds = load_dataset("mnist", sources=("dir", "system"))
    assert ds.source == f"IDX files in {tmp_path / 'system' / 'mnist'}"


def corrupt(kind: str, folder: Path) -> tuple[str, str]:
    """Damage a freshly written IDX set; returns (file to name, words in the message)."""
    if kind == "missing-file":
        (folder / "t10k-labels-idx1-ubyte.gz").unlink()
        return "t10k-labels-idx1-ubyte", "incomplete"
    target = ("train-labels-idx1-ubyte.gz" if kind.startswith("label")
              else "train-images-idx3-ubyte.gz")
    path = folder / target
    payload = gzip.decompress(path.read_bytes())
    rng = np.random.default_rng(1)
    if kind == "truncated-gzip":
        path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
        return target, "corrupt or truncated gzip"
    if kind == "truncated-raw":
        path.with_suffix("").write_bytes(payload[:-100])
        path.unlink()
        return target[:-3], "truncated: the header gives shape (200, 28, 28)"
    if kind == "trailing-bytes":
        path.write_bytes(gzip.compress(payload + b"\0" * 7))
        return target, "trailing bytes"
    if kind == "short-header":
        path.write_bytes(gzip.compress(payload[:6]))
        return target, "shorter than an IDX header"
    if kind == "wrong-magic":  # a labels file where the images belong
        path.write_bytes(gzip.compress(idx_bytes(np.zeros(200, np.uint8))))
        return target, "wrong IDX magic number 0x00000801"
    if kind == "not-idx":
        path.write_bytes(gzip.compress(b"\x12\x34\x56\x78" + payload[4:]))
        return target, "wrong IDX magic number 0x12345678 (not an IDX file"
    if kind == "labels-count":
        path.write_bytes(gzip.compress(idx_bytes(np.zeros(199, np.uint8))))
        return target, "199 labels, but"
    if kind == "label-range":
        labels = np.frombuffer(payload, np.uint8, offset=8).copy()
        labels[3] = 10
        path.write_bytes(gzip.compress(idx_bytes(labels)))
        return target, "labels range 0..10"
    if kind == "image-size":
        path.write_bytes(gzip.compress(idx_bytes(rng.integers(0, 256, (200, 32, 32)))))
        return target, "images are 32×32; mnist images are 28×28"
    raise AssertionError(kind)


BAD_IDX = ["missing-file", "truncated-gzip", "truncated-raw", "trailing-bytes", "short-header",
           "wrong-magic", "not-idx", "labels-count", "label-range", "image-size"]


@pytest.mark.parametrize("kind", BAD_IDX)
def test_bad_idx_files_in_data_dir_raise_naming_the_file(tmp_path, kind):
    write_idx_set(tmp_path, gz=True)
    name, words = corrupt(kind, tmp_path)
    with pytest.raises(DataError) as err:
        load_dataset("mnist", data_dir=tmp_path)  # every source allowed: still no fallback
    assert name in str(err.value) and words in str(err.value)


def test_bad_files_under_the_environment_variable_raise_too(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "fashion-mnist", gz=True)
    corrupt("wrong-magic", tmp_path / "fashion-mnist")
    monkeypatch.setenv("DENDRAX_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="wrong IDX magic"):
        load_dataset("fashion-mnist")


@pytest.mark.parametrize("make", ["absent", "empty"])
def test_data_dir_without_the_dataset_raises_listing_the_files(tmp_path, make):
    folder = tmp_path / "nowhere" if make == "absent" else tmp_path
    with pytest.raises(DataError) as err:
        load_dataset("mnist", data_dir=folder)
    message = str(err.value)
    assert str(folder) in message and "train-images-idx3-ubyte[.gz]" in message


def test_bad_files_in_automatic_sources_are_recorded_and_skipped(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "fashion-mnist", gz=True)
    corrupt("truncated-gzip", tmp_path / "fashion-mnist")
    monkeypatch.setattr(sources, "SYSTEM_DIRS", (tmp_path,))
    with pytest.warns(UserWarning, match="EMBEDDED SAMPLE"):
        ds = load_dataset("fashion-mnist", sources=("system", "sample"))
    assert ds.is_sample
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist", sources=("system",))
    assert "train-images-idx3-ubyte.gz: corrupt or truncated gzip" in str(err.value)


# ---- CIFAR-10 python batches --------------------------------------------------------------

def check_cifar(ds, arrays):
    x_train, y_train, x_test, y_test = arrays
    assert (ds.name, ds.image_shape, ds.in_dim, ds.n_classes) == ("cifar10", (32, 32, 3), 3072, 10)
    assert ds.class_names[0] == "airplane" and ds.class_names[-1] == "truck"
    # Flattened in (H, W, C) order: reshaping gives the images back.
    np.testing.assert_array_equal(ds.x_test, formula(x_test.reshape(len(x_test), -1),
                                                     CIFAR_STATS))
    np.testing.assert_array_equal(ds.y_test, y_test)
    assert train_and_val(ds) == file_examples(x_train, y_train, CIFAR_STATS)


def test_cifar_is_normalised_per_channel_with_its_own_statistics(tmp_path):
    """Each colour channel of the loaded arrays against NumPy on the file's own planes: the
    original's CIFAR-10 constants, applied to the right colour."""
    files, _ = cifar_files(n_per_batch=30, seed=4)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, payload in files.items():
        (folder / name).write_bytes(payload)
    ds = load_dataset("cifar10", data_dir=tmp_path, validation_fraction=0.1)
    import pickle
    planes = pickle.loads(files["test_batch"], encoding="bytes")[b"data"].reshape(-1, 3, 1024)
    loaded = ds.x_test.reshape(len(ds.x_test), 1024, 3)  # (H, W, C): channel = last axis
    for c, (mean, std) in enumerate(zip(*CIFAR_STATS)):
        expected = (planes[:, c].astype(np.float64) / 255 - mean) / std
        np.testing.assert_allclose(loaded[..., c], expected, rtol=1e-5, atol=1e-5)
        assert loaded[..., c].mean() == pytest.approx(expected.mean(), abs=1e-5)
        assert loaded[..., c].std() == pytest.approx(expected.std(), rel=1e-5)
    # Training and validation together hold the five training files' channels.
    train_planes = np.concatenate([pickle.loads(files[f"data_batch_{i}"], encoding="bytes")
                                   [b"data"] for i in range(1, 6)]).reshape(-1, 3, 1024)
    both = np.concatenate([ds.x_train, ds.x_val]).reshape(-1, 1024, 3)
    for c, (mean, std) in enumerate(zip(*CIFAR_STATS)):
        expected = (train_planes[:, c].astype(np.float64) / 255 - mean) / std
        assert both[..., c].mean() == pytest.approx(expected.mean(), abs=1e-5)
        assert both[..., c].std() == pytest.approx(expected.std(), rel=1e-5)
    # Uniform random pixels: MNIST's constants would put every channel's mean near 1.
    assert abs(ds.x_test.mean()) < 0.2


def test_cifar_batches_in_a_folder(tmp_path):
    files, arrays = cifar_files()
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, payload in files.items():
        (folder / name).write_bytes(payload)
    ds = load_dataset("cifar-10", data_dir=tmp_path, validation_fraction=0.1)
    assert ds.source == f"CIFAR-10 python batches in {folder}"
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (90, 10, 20)
    check_cifar(ds, arrays)


def test_cifar_archive(tmp_path):
    files, arrays = cifar_files()
    write_cifar_tar(tmp_path / "cifar-10-python.tar.gz", files)
    ds = load_dataset("cifar10", data_dir=tmp_path)
    assert ds.source == f"CIFAR-10 archive {tmp_path / 'cifar-10-python.tar.gz'}"
    check_cifar(ds, arrays)


def test_cifar_batches_refuse_anything_but_plain_data(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    files, _ = cifar_files()
    files["data_batch_3"] = pickle.dumps({b"data": Exploit(), b"labels": []}, protocol=2)
    for name, payload in files.items():
        (tmp_path / name).write_bytes(payload)
    with pytest.raises(DataError, match="data_batch_3: not a readable CIFAR-10 batch.*refusing"):
        load_dataset("cifar10", data_dir=tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("kind, words", [
    ("garbage", "not a readable CIFAR-10 batch"),
    ("not-a-dict", "expected a dict with b'data' and b'labels'"),
    ("wrong-width", "b'data' must be uint8 (n, 3072)"),
    ("label-count", "19 labels for 20 images"),
    ("label-range", "labels range 0..12"),
    ("missing", "incomplete cifar10 files"),
])
def test_bad_cifar_batches_raise_naming_the_file(tmp_path, kind, words):
    files, _ = cifar_files()
    rows = np.zeros((20, 3072), np.uint8)
    files["data_batch_2"] = {
        "garbage": b"\x80\x02}q\x00(U\x04data",
        "not-a-dict": py2_pickle([1, 2, 3]),
        "wrong-width": py2_pickle({"data": np.zeros((20, 1024), np.uint8), "labels": [0] * 20}),
        "label-count": py2_pickle({"data": rows, "labels": [0] * 19}),
        "label-range": py2_pickle({"data": rows, "labels": [0] * 19 + [12]}),
        "missing": None,
    }[kind]
    for name, payload in files.items():
        if payload is not None:
            (tmp_path / name).write_bytes(payload)
    with pytest.raises(DataError) as err:
        load_dataset("cifar10", data_dir=tmp_path)
    assert "data_batch_2" in str(err.value) and words in str(err.value)


@pytest.mark.parametrize("kind, words", [("truncated", "corrupt or truncated archive"),
                                         ("lacking", "archive lacks test_batch")])
def test_bad_cifar_archive_raises_naming_it(tmp_path, kind, words):
    files, _ = cifar_files()
    path = tmp_path / "cifar-10-python.tar.gz"
    if kind == "lacking":
        del files["test_batch"]
    write_cifar_tar(path, files)
    if kind == "truncated":
        path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataError) as err:
        load_dataset("cifar10", data_dir=tmp_path)
    assert "cifar-10-python.tar.gz" in str(err.value) and words in str(err.value)


# ---- tensorflow-datasets ------------------------------------------------------------------

def test_tfds_source_converts_a_prepared_dataset(tmp_path, monkeypatch):
    try:
        import tensorflow  # noqa: F401  (tfds reads its prepared data through tf.data)
        import tensorflow_datasets as tfds
        from tensorflow_datasets.image_classification import mnist as tfds_mnist
    except ImportError as err:
        pytest.fail(f"{err}: the tfds source needs `pip install tensorflow-datasets "
                    "tensorflow-cpu importlib_resources`")
    # Prepare fashion_mnist in a private TFDS data dir from small local IDX files: the
    # builder's download step is pointed at them, and its sizes shrunk to match.
    x_train, y_train, x_test, y_test = write_idx_set(tmp_path / "files", gz=False,
                                                     n_train=60, n_test=20)
    local = dict(zip(("train_data", "train_labels", "test_data", "test_labels"),
                     (str(tmp_path / "files" / name) for name in IDX)))
    monkeypatch.setattr(tfds_mnist, "_TRAIN_EXAMPLES", 60)
    monkeypatch.setattr(tfds_mnist, "_TEST_EXAMPLES", 20)
    monkeypatch.setattr(tfds.download.DownloadManager, "download_and_extract",
                        lambda self, urls: local)
    tfds.builder("fashion_mnist", data_dir=str(tmp_path / "tfds")).download_and_prepare()

    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    ds = load_dataset("fashion-mnist", sources=("tfds",), download=False,
                      validation_fraction=0.5)
    assert ds.source == f"tensorflow-datasets 'fashion_mnist' in {tmp_path / 'tfds'}"
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (30, 30, 20)
    assert np.bincount(ds.y_val).tolist() == [3] * 10
    # TFDS shuffles when it prepares a dataset: compare the examples as multisets.
    assert train_and_val(ds) == file_examples(x_train, y_train)
    assert examples(ds.x_test, ds.y_test) == file_examples(x_test, y_test)

    # Not prepared: recorded as this source's failure, without a slow TFDS download try
    # when the download host cannot be reached.
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(DataError, match=r"tfds +tensorflow-datasets 'mnist' in .*empty: "
                                        r"not prepared, and download=False"):
        load_dataset("mnist", sources=("tfds",), download=False)
    with pytest.raises(DataError, match="not prepared, and storage.googleapis.com is unreachable"):
        load_dataset("mnist", sources=("tfds",))


def test_tfds_missing_is_recorded_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import fails
    with pytest.raises(DataError, match=r"tensorflow-datasets is not installed \(pip install "
                                        r"'dendrax\[tfds\]'\)"):
        load_dataset("mnist", sources=("tfds",))


# ---- download -----------------------------------------------------------------------------

@pytest.fixture
def mnist_server(tmp_path, monkeypatch):
    """Serve generated MNIST .gz files at the spec's URLs, with their real checksums.

    Returns (served {url: bytes}, arrays); tests may replace served entries."""
    arrays = write_idx_set(tmp_path / "origin", gz=True)
    spec = catalog.SPECS["mnist"]
    served = {}
    downloads = []
    for item in spec.downloads:
        payload = (tmp_path / "origin" / item.filename).read_bytes()
        served[item.url] = payload
        downloads.append(dataclasses.replace(item, sha256=hashlib.sha256(payload).hexdigest()))
    monkeypatch.setitem(catalog.SPECS, "mnist", dataclasses.replace(spec, downloads=tuple(downloads)))
    fetched = []

    def serve(url, timeout=None):
        fetched.append(url)
        return io.BytesIO(served[url])

    monkeypatch.setattr(sources, "urlopen", serve)
    return served, fetched, arrays


def test_download_verifies_and_caches(tmp_path, mnist_server, monkeypatch):
    served, fetched, (_, _, x_test, _) = mnist_server
    ds = load_dataset("mnist", sources=("download",))
    cache = tmp_path / "cache" / "dendrax" / "mnist"
    assert ds.source == (f"IDX files in {cache} (downloaded from "
                         "https://storage.googleapis.com/cvdf-datasets/mnist)")
    np.testing.assert_array_equal(ds.x_test, formula(x_test.reshape(len(x_test), -1)))
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{n}.gz" for n in IDX)
    assert len(fetched) == 4
    # Cached and verified: the next load fetches nothing, even with download=False.
    again = load_dataset("mnist", sources=("download",), download=False)
    np.testing.assert_array_equal(again.x_val, ds.x_val)
    assert len(fetched) == 4


def test_download_checksum_mismatch_is_recorded_and_discarded(tmp_path, mnist_server):
    served, _, _ = mnist_server
    url = next(u for u in served if u.endswith("t10k-labels-idx1-ubyte.gz"))
    served[url] = served[url][:-1] + bytes([served[url][-1] ^ 1])
    with pytest.raises(DataError) as err:
        load_dataset("mnist", sources=("download",))
    assert f"{url}: checksum mismatch" in str(err.value)
    cache = tmp_path / "cache" / "dendrax" / "mnist"
    assert not (cache / "t10k-labels-idx1-ubyte.gz").exists()
    assert not list(cache.glob("*.part"))


def test_download_failures_fall_through_to_the_sample():
    with pytest.warns(UserWarning, match="EMBEDDED SAMPLE"):
        ds = load_dataset("fashion-mnist", sources=("download", "sample"))
    assert ds.is_sample


def test_download_false_uses_only_the_cache():
    with pytest.raises(DataError) as err:
        load_dataset("mnist", sources=("download",), download=False)
    assert "not cached, and download=False" in str(err.value)
    assert "load_dataset(..., download=True)" in str(err.value)


def test_reachable_means_a_tcp_connection_opens():
    with socket.create_server(("127.0.0.1", 0)) as server:
        url = f"http://127.0.0.1:{server.getsockname()[1]}/file.gz"
        assert REACHABLE(url, timeout=2)
    assert not REACHABLE(url, timeout=2)  # closed now: connection refused


def test_published_checksums_are_sha256_hex():
    for spec in catalog.SPECS.values():
        for item in spec.downloads:
            assert len(item.sha256) == 64 and int(item.sha256, 16) >= 0, item.url


# ---- the embedded sample ------------------------------------------------------------------

def test_sample_is_real_fashion_mnist(capsys):
    ds = load_dataset("fashion-mnist", sources=("sample",), verbose=True)
    assert ds.is_sample and ds.source.startswith("embedded sample (5,000 train + 1,000 test")
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (4500, 500, 1000)
    assert np.bincount(ds.y_val).tolist() == [50] * 10
    assert np.bincount(ds.y_test).tolist() == [100] * 10
    out = capsys.readouterr().out
    assert "EMBEDDED SAMPLE" in out and "sudo apt-get install dataset-fashion-mnist" in out
    # Real images: a nearest-class-mean classifier does far better than chance (0.1).
    means = np.stack([ds.x_train[ds.y_train == k].mean(0) for k in range(10)])
    distances = ((ds.x_test[:, None, :] - means[None]) ** 2).sum(-1)
    assert (distances.argmin(1) == ds.y_test).mean() > 0.6
    assert np.abs(means[1] - means[8]).mean() > 0.3  # trousers and bags look different


def test_sample_rebuilds_byte_for_byte_from_the_full_files(tmp_path, debian_files):
    written = data.make_sample(DEBIAN, tmp_path)
    for path in written:
        shipped = data.SAMPLE_DIR / path.name
        assert gzip.decompress(path.read_bytes()) == gzip.decompress(shipped.read_bytes())
    assert sum(p.stat().st_size for p in data.SAMPLE_DIR.iterdir()) < 5_000_000
    assert (data.SAMPLE_DIR / "LICENSE").read_text().count("Zalando") >= 1


def test_sample_is_fashion_only():
    with pytest.raises(DataError, match="sample +the embedded sample is Fashion-MNIST only"):
        load_dataset("mnist", sources="sample")  # one source may be given as a string
    assert load_dataset("FASHION_MNIST", sources="sample").is_sample


# ---- names, arguments and the final error -------------------------------------------------

@pytest.mark.parametrize("name, hint", [("fashon", "'fashion-mnist'"), ("cifar", "'cifar10'"),
                                        ("imagenet", "")])
def test_unknown_dataset_lists_valid_names(name, hint):
    with pytest.raises(DataError) as err:
        load_dataset(name)
    message = str(err.value)
    assert "valid names: mnist, fashion-mnist, cifar10" in message
    assert (f"did you mean {hint}?" in message) if hint else "did you mean" not in message


@pytest.mark.parametrize("kwargs, words", [
    ({"sources": ("systen",)}, "unknown source 'systen'; did you mean 'system'?"),
    ({"sources": ()}, "sources is empty"),
    ({"validation_fraction": 1.0}, "validation_fraction=1.0 must be a number in [0, 1)"),
    ({"validation_fraction": -0.1}, "validation_fraction=-0.1"),
    ({"subset_size": 0}, "subset_size=0 must be None or an integer >= 1"),
    ({"seed": -1}, "seed=-1 must be an integer >= 0"),
])
def test_bad_arguments_raise(kwargs, words):
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist", **kwargs)
    assert words in str(err.value)


def test_when_every_source_fails_the_error_lists_each_place_and_the_fixes(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "SYSTEM_DIRS", (tmp_path,))
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist", sources=("dir", "system", "tfds", "download"))
    message = str(err.value)
    for words in ("  dir       no data_dir given and $DENDRAX_DATA_DIR is not set",
                  f"  system    {tmp_path}: no fashion-mnist files",
                  "  tfds      tensorflow-datasets is not installed",
                  "  download  http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
                  "train-images-idx3-ubyte.gz: <urlopen error network disabled in tests>",
                  "sudo apt-get install dataset-fashion-mnist",
                  "pip install 'dendrax[tfds]'", "export DENDRAX_DATA_DIR="):
        assert words in message


# ---- from_arrays --------------------------------------------------------------------------

def test_from_arrays_infers_classes_and_features():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (100, 8, 8), dtype=np.uint8)
    y = np.arange(100) % 5
    ds = from_arrays(x, y, x[:10], y[:10], validation_fraction=0.2)
    assert (ds.n_classes, ds.in_dim, ds.image_shape) == (5, 64, (8, 8, 1))
    assert ds.class_names == ("0", "1", "2", "3", "4") and ds.name == "custom"
    assert np.bincount(ds.y_val).tolist() == [4] * 5
    np.testing.assert_array_equal(ds.x_test, formula(x[:10].reshape(10, 64)))
    # 0..255 floats and 0..1 floats mean the same pixels as uint8.
    for scaled in (x.astype(np.float64), x.astype(np.float32) / np.float32(255)):
        same = from_arrays(scaled, y, scaled[:10], y[:10], validation_fraction=0.2,
                           normalise="pixels")
        np.testing.assert_array_equal(same.x_train, ds.x_train)
        np.testing.assert_array_equal(same.x_test, ds.x_test)


def test_from_arrays_takes_channels_last_images_and_feature_rows():
    x = np.zeros((30, 4, 4, 3), np.uint8)
    y = np.arange(30)[:, None] % 3  # Keras-style column of labels
    ds = from_arrays(x, y, x, y, class_names=["a", "b", "c", "d"], name="tiny")
    assert (ds.image_shape, ds.n_classes, ds.class_names[-1]) == ((4, 4, 3), 4, "d")
    rows = np.linspace(-5, 5, 40, dtype=np.float64).reshape(20, 2)
    plain = from_arrays(rows, np.arange(20) % 2, rows, np.arange(20) % 2, normalise=False,
                        validation_fraction=None)
    assert plain.image_shape == (1, 2, 1)
    np.testing.assert_array_equal(plain.x_train, rows.astype(np.float32))
    assert from_arrays(rows.reshape(20, 2), np.arange(20) % 2, rows, np.arange(20) % 2,
                       image_shape=(2, 1, 1), normalise=False).image_shape == (2, 1, 1)


def test_auto_normalise_scales_pixels_and_standardises_other_features():
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (50, 6), dtype=np.uint8)
    y = np.arange(50) % 2
    assert "pixels" in from_arrays(pixels, y, pixels, y).source
    np.testing.assert_array_equal(from_arrays(pixels, y, pixels, y).x_test,
                                  from_arrays(pixels, y, pixels, y, normalise=True).x_test)
    # Tabular floats: each feature by the TRAINING split's statistics, nothing else's.
    x = rng.normal([5.0, -300.0, 0.0], [2.0, 50.0, 1e-3], size=(200, 3))
    x[:, 2] = 7.0  # a constant feature: centred only
    x_test = rng.normal(size=(30, 3)) * 10
    ds = from_arrays(x, np.arange(200) % 4, x_test, np.arange(30) % 4, seed=2,
                     subset_size=120)
    assert "standardise" in ds.source
    # Reference: rebuild the split's training rows, then plain NumPy statistics.
    raw = from_arrays(x, np.arange(200) % 4, x_test, np.arange(30) % 4, seed=2,
                      subset_size=120, normalise="none")
    mean, std = raw.x_train.astype(np.float64).mean(0), raw.x_train.astype(np.float64).std(0)
    std[std == 0] = 1.0
    np.testing.assert_allclose(ds.x_train, (raw.x_train - mean) / std, atol=1e-5)
    np.testing.assert_allclose(ds.x_val, (raw.x_val - mean) / std, atol=1e-5)
    np.testing.assert_allclose(ds.x_test, (raw.x_test - mean) / std, atol=1e-4)
    np.testing.assert_allclose(ds.x_train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train[:, :2].std(0), 1, atol=1e-5)
    assert np.all(ds.x_train[:, 2] == 0) and abs(ds.x_val[:, 0].mean()) > 1e-4
    # Integers beyond 0..255 are not pixels either.
    counts = rng.integers(0, 5000, (40, 2))
    assert "standardise" in from_arrays(counts, np.arange(40) % 2, counts,
                                        np.arange(40) % 2).source


def test_no_validation_split_gives_empty_arrays_of_the_right_shape():
    # validation_fraction=None asks for no split on purpose; 0 is refused (issue 29, cause 3:
    # a search would rank on NaN), see tests/test_reliability_data.py.
    x = np.zeros((20, 6), np.uint8)
    with pytest.raises(DataError, match="validation_fraction=0 holds out no validation"):
        from_arrays(x, np.arange(20) % 2, x, np.arange(20) % 2, validation_fraction=0)
    ds = from_arrays(x, np.arange(20) % 2, x, np.arange(20) % 2, validation_fraction=None)
    assert ds.x_val.shape == (0, 6) and ds.x_val.dtype == np.float32
    assert ds.y_val.shape == (0,) and ds.y_val.dtype == np.int32
    assert len(ds.x_train) == 20


def test_subset_is_stratified_seeded_and_leaves_validation_alone():
    x = np.arange(1000 * 4, dtype=np.float64).reshape(1000, 4) % 256
    y = np.repeat(np.arange(4), [100, 200, 300, 400])
    full = from_arrays(x, y, x[:5], y[:5], seed=3, normalise="pixels")
    small = from_arrays(x, y, x[:5], y[:5], seed=3, subset_size=90, normalise="pixels")
    np.testing.assert_array_equal(small.x_val, full.x_val)
    assert np.bincount(small.y_train).tolist() == [9, 18, 27, 36]
    assert np.bincount(full.y_val).tolist() == [10, 20, 30, 40]
    assert len(from_arrays(x, y, x[:5], y[:5], subset_size=10_000).x_train) == 900
    again = from_arrays(x, y, x[:5], y[:5], seed=3, subset_size=90, normalise="pixels")
    np.testing.assert_array_equal(again.x_train, small.x_train)


@pytest.mark.parametrize("change, words", [
    ({"y_train": np.arange(9)}, "y_train has shape (9,); expected (10,)"),
    ({"y_train": -np.ones(10, int)}, "negative labels"),
    ({"y_train": np.full(10, 0.5)}, "integer class indices"),
    ({"x_train": np.full((10, 4), 300.0), "normalise": True}, "pixel values range 0..300"),
    ({"normalise": "zscore"}, "normalise='zscore'; choose one of auto, pixels"),
    ({"x_train": np.full((10, 4), np.nan)}, "x_train holds NaN"),
    ({"x_test": np.zeros((10, 5))}, "x_test examples have (5,)"),
    ({"x_train": np.array(["a"] * 40).reshape(10, 4)}, "x_train must be a numeric array"),
    ({"image_shape": (3, 1, 1)}, "H*W*C = 4 features"),
    ({"class_names": ["a"]}, "1 class_names for labels up to 1"),
])
def test_from_arrays_rejects_bad_input(change, words):
    args = {"x_train": np.zeros((10, 4)), "y_train": np.arange(10) % 2,
            "x_test": np.zeros((10, 4)), "y_test": np.arange(10) % 2}
    args.update(change)
    kwargs = {k: args.pop(k) for k in ("image_shape", "class_names", "normalise")
              if k in args}
    with pytest.raises(DataError) as err:
        from_arrays(*args.values(), **kwargs)
    assert words in str(err.value)


# ---- the module's promises ----------------------------------------------------------------

def test_command_line_reports_where_data_comes_from(tmp_path, capsys):
    write_idx_set(tmp_path, gz=True)
    assert data_command.main(["mnist", "--data-dir", str(tmp_path)]) == 0
    assert f"source: IDX files in {tmp_path}" in capsys.readouterr().out
    assert data_command.main(["mnist", "--data-dir", str(tmp_path / "none")]) == 1
    assert "no such folder" in capsys.readouterr().err


def test_the_tabular_example_in_docs_runs(monkeypatch, capsys):
    """docs/data.md's tabular example as written, with the fake trainer standing in for
    JAX (the searcher imports dendrax.population.train_configs lazily)."""
    import dendrax.population
    from conftest import FakeTrainer

    pytest.importorskip("pandas")
    monkeypatch.setattr(dendrax.population, "train_configs", FakeTrainer())
    text = (Path(__file__).parent.parent / "docs" / "data.md").read_text()
    block = text.split("### A tabular dataset, searched end to end")[1]
    block = block.split("```python")[1].split("```")[0]
    scope = {}
    exec(compile(block, "docs/data.md", "exec"), scope)
    ds, searcher = scope["ds"], scope["searcher"]
    assert ds.n_classes == 3 and ds.in_dim == 13 and searcher.n_classes == 3
    assert "standardise" in ds.source
    assert len(searcher.results) >= 3
    out = capsys.readouterr().out
    assert "TOP 3 OF" in out and "val_mean" in out
