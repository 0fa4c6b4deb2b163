"""Where a dataset comes from: a folder, a system install, TFDS, a download, the sample.

:func:`load_dataset` tries the sources in order (see the package docstring).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import os
import socket
import urllib.parse
import warnings
from pathlib import Path
from typing import Callable, Sequence
from urllib.request import urlopen

from dendrax.data.catalog import (CIFAR_ARCHIVE, CIFAR_FILES, IDX_FILES, SAMPLE_DIR, SYSTEM_DIRS,
                                  TFDS_HINT, Download, Raw, Spec, dataset_spec)
from dendrax.data.dataset import DataError, Dataset
from dendrax.data.formats import Unavailable, checked_labels, read_folder
from dendrax.data.split import assemble, check_split_args

SOURCES = ("dir", "system", "tfds", "download", "sample")


@dataclasses.dataclass(frozen=True)
class _Request:
    data_dir: str | os.PathLike | None
    download: bool
    log: Callable[[str], None]


def _from_dir(spec: Spec, request: _Request) -> Raw:
    """``data_dir`` (must hold the dataset), else ``$DENDRAX_DATA_DIR`` (may lack it)."""
    if request.data_dir is not None:
        try:
            return read_folder(spec, Path(request.data_dir).expanduser())
        except Unavailable as miss:
            raise DataError(f"data_dir {miss}; it should hold {file_list(spec)}") from None
    env = os.environ.get("DENDRAX_DATA_DIR")
    if not env:
        raise Unavailable("no data_dir given and $DENDRAX_DATA_DIR is not set")
    return read_folder(spec, Path(env).expanduser())


def _from_system(spec: Spec, request: _Request) -> Raw:
    misses = []
    for root in SYSTEM_DIRS:
        try:
            return read_folder(spec, root)
        except Unavailable as miss:
            misses.append(str(miss))
    raise Unavailable("; ".join(misses) or "no system folders configured (SYSTEM_DIRS)")


def _from_tfds(spec: Spec, request: _Request) -> Raw:
    """tensorflow-datasets' copy, prepared first if needed; converted from its numpy output.

    Reading needs tensorflow (the ``dendrax[tfds]`` extra brings tensorflow-cpu).
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise Unavailable(f"tensorflow-datasets is not installed ({TFDS_HINT})") from None
    data_dir = os.environ.get("TFDS_DATA_DIR") or None
    where = f"tensorflow-datasets {spec.tfds_name!r} in {data_dir or 'its default data dir'}"
    try:
        builder = tfds.builder(spec.tfds_name, data_dir=data_dir)
        if not builder.is_prepared():
            if not request.download:
                raise Unavailable(f"{where}: not prepared, and download=False")
            host = urllib.parse.urlsplit(spec.downloads[0].url).hostname
            # TFDS retries a dead network for minutes; offline, give up at once instead.
            if not _reachable(spec.downloads[0].url):
                raise Unavailable(f"{where}: not prepared, and {host} is unreachable")
            builder.download_and_prepare()
        splits = builder.as_dataset(split=["train", "test"], batch_size=-1, as_supervised=True)
        (x_train, y_train), (x_test, y_test) = tfds.as_numpy(splits)
    except ImportError as err:  # tensorflow itself is missing
        raise Unavailable(f"{where}: {err} ({TFDS_HINT})") from None
    except Unavailable:
        raise
    except Exception as err:  # TFDS raises many types: download failed, bad files, ...
        reason = (str(err).strip().splitlines() or [""])[0]
        raise Unavailable(f"{where}: {type(err).__name__}: {reason}") from None
    for x, split in ((x_train, "train"), (x_test, "test")):
        if x.shape[1:] != spec.image_shape:
            raise DataError(f"{where}: {split} images have shape {x.shape[1:]}, "
                            f"expected {spec.image_shape}")
    return Raw(x_train.reshape(len(x_train), -1), checked_labels(y_train, spec, where),
                x_test.reshape(len(x_test), -1), checked_labels(y_test, spec, where), where)


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


def _fetch(item: Download, dest: Path, log: Callable[[str], None]) -> None:
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


def _from_download(spec: Spec, request: _Request) -> Raw:
    """The publishers' files, verified and cached; with download=False only the cache."""
    folder = _cache_dir() / spec.name
    missing = [item for item in spec.downloads
               if not ((folder / item.filename).is_file()
                       and _sha256(folder / item.filename) == item.sha256)]
    if missing and not request.download:
        raise Unavailable(f"{folder}: not cached, and download=False")
    for item in missing:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            _fetch(item, folder / item.filename, request.log)
        except (OSError, DataError) as err:  # URLError and timeouts are OSErrors
            # Stop at the first failure: every file is needed, and when the network is
            # down each further try would only wait out its own timeout.
            raise Unavailable(f"{item.url}: {err}") from None
    raw = read_folder(spec, folder)
    return dataclasses.replace(raw, source=f"{raw.source} (downloaded from "
                                           f"{spec.downloads[0].url.rsplit('/', 1)[0]})")


def _from_sample(spec: Spec, request: _Request) -> Raw:
    if spec.name != "fashion-mnist":
        raise Unavailable("the embedded sample is Fashion-MNIST only")
    raw = read_folder(spec, SAMPLE_DIR)
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
      validation_fraction: share of the training file held out, stratified; it must hold
        out at least one example (0, or a fraction that rounds to 0 examples, is a
        DataError: a search would rank on NaN). None: no validation split at all (empty
        validation arrays), for training outside a search.
      seed: fixes the validation split and the subset.
      sources: the sources to try, in order; default SOURCES.
      download: allow the "tfds" and "download" sources to fetch from the internet.
      verbose: print where the data came from (and, before falling back to the embedded
        sample, each place tried and why it failed).

    Raises:
      DataError: bad arguments, unreadable files in a folder you named, or no source has
        the data (the message lists every place tried and why, and how to fix it).
    """
    spec = dataset_spec(name)
    order = _check_sources(sources)
    check_split_args(validation_fraction, subset_size, seed)
    log = (lambda message: print(f"dendrax.data: {message}", flush=True)) if verbose \
        else (lambda message: None)
    request = _Request(data_dir, bool(download), log)
    tried = []
    for source in order:
        try:
            raw = _SOURCE_FUNCTIONS[source](spec, request)
        except Unavailable as miss:
            reason = str(miss)
        except DataError as err:
            if source == "dir":  # files the user named are bad: never fall back silently
                raise
            reason = str(err)
        else:
            if source == "sample":
                for missed, why in tried:  # why the full dataset was not found
                    log(f"{missed}: {why}")
                _announce_sample(spec, raw, fallback=bool(tried), verbose=verbose, log=log)
            dataset = assemble(spec.name, raw.x_train, raw.y_train, raw.x_test, raw.y_test,
                                image_shape=spec.image_shape, class_names=spec.class_names,
                                validation_fraction=validation_fraction,
                                subset_size=subset_size, seed=seed, source=raw.source,
                                is_sample=source == "sample", mean=spec.mean, std=spec.std)
            log(dataset.summary())
            return dataset
        # Misses are said only when they matter: before a fallback to the sample, or in
        # the error when nothing is found (a found dataset's summary names its source).
        tried.append((source, reason))
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


def file_list(spec: Spec) -> str:
    if spec.format == "cifar":
        return f"{', '.join(CIFAR_FILES)} or {CIFAR_ARCHIVE}"
    return ", ".join(f"{name}[.gz]" for name in IDX_FILES)


def _fixes(spec: Spec, download: bool) -> list[tuple[str, str]]:
    """(command, what it does) pairs that would put the full dataset within reach."""
    fixes = [(f"sudo apt-get install {package}", f"installs /usr/share/datasets/{spec.name}")
             for package in spec.install]
    fixes.append((TFDS_HINT, f"tensorflow-datasets then downloads {spec.tfds_name} once"))
    fixes.append(("export DENDRAX_DATA_DIR=/path/to/data",
                  f"a folder whose {spec.name}/ holds {file_list(spec)}"))
    if not download:
        fixes.append(("load_dataset(..., download=True)", "on a machine with internet access"))
    return fixes


def _not_found_message(spec: Spec, tried: list[tuple[str, str]], download: bool) -> str:
    lines = [f"could not load {spec.name}; looked in:"]
    lines += [f"  {source:<9} {why}" for source, why in tried]
    lines.append("any one of these fixes it:")
    lines += [f"  {command}   # {note}" for command, note in _fixes(spec, download)]
    return "\n".join(lines)


def _announce_sample(spec: Spec, raw: Raw, *, fallback: bool, verbose: bool, log) -> None:
    """Make it obvious that the small sample, not the full dataset, is in use."""
    message = (f"using the EMBEDDED SAMPLE of {spec.name} ({len(raw.x_train):,} train + "
               f"{len(raw.x_test):,} test images), not the full dataset. For the full set: "
               + " or ".join(f"`{command}`" for command, _ in _fixes(spec, True)))
    log(message)
    if fallback and not verbose:  # asked for the full set, got the sample: say so anyway
        warnings.warn(f"dendrax.data: {message}", stacklevel=3)
