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
``x.reshape(-1, *image_shape)`` gives the images back), scaled by 1/255 and normalised.
MNIST and Fashion-MNIST use MNIST's statistics, (x − 0.1307) / 0.3081 (like the original,
we apply them to Fashion-MNIST too, so its inputs are not quite zero-mean). CIFAR-10 is
normalised per channel with its own statistics, mean (0.4914, 0.4822, 0.4465) and std
(0.2470, 0.2435, 0.2616), as the original's loader does. Your own arrays
(:func:`from_arrays`) get MNIST's statistics.

The training file is split into train and validation sets, stratified by class and seeded.
Validation is carved out first, from the whole training file; ``subset_size`` then draws
a stratified, seeded subset of what is left. So the validation set does not depend on
``subset_size``, and scores across subset sizes are comparable. The test set is untouched.

This package needs numpy only. It never imports JAX, so the searcher stays JAX-free.

Modules: ``dataset`` (the value), ``catalog`` (what each built-in dataset is), ``formats``
(IDX, CIFAR-10), ``sources`` (where data comes from; :func:`load_dataset`), ``split``
(validation split, subset, normalisation), ``arrays`` (:func:`from_arrays`), ``sample``
(the embedded sample); ``python -m dendrax.data`` shows where a dataset loads from.
"""

from dendrax.data.arrays import from_arrays
from dendrax.data.catalog import DATASETS, SAMPLE_DIR
from dendrax.data.dataset import DataError, Dataset
from dendrax.data.sample import make_sample
from dendrax.data.sources import SOURCES, load_dataset

__all__ = ["DATASETS", "SOURCES", "SAMPLE_DIR", "DataError", "Dataset", "from_arrays",
           "load_dataset", "make_sample"]
