"""``python -m dendrax.data``: where a dataset loads from, or rebuild the sample."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from dendrax.data.catalog import DEBIAN_FASHION_MNIST, SAMPLE_DIR
from dendrax.data.dataset import DataError
from dendrax.data.sample import make_sample
from dendrax.data.sources import load_dataset


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
