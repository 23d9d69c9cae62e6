"""Fashion-MNIST from Debian's `dataset-fashion-mnist` (Zalando, MIT/Expat) as a user's
labelled image folder: a stratified subset of the *training* split written as
`<label>/<index>.png` (the test split is never read: it is not ours to tune on).

    python -m tests.fashion_mnist OUT_DIR --per-class 300
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

import numpy as np
from PIL import Image

DATASET_DIR = Path("/usr/share/datasets/fashion-mnist")
# Index order of the dataset's labels (its README), as folder names.
LABELS = (
    "t-shirt-top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
)


def available() -> bool:
    return (DATASET_DIR / "train-images-idx3-ubyte.gz").is_file()


def training_split() -> tuple[np.ndarray, np.ndarray]:
    """(60000, 28, 28) uint8 images and (60000,) labels of the training split (IDX format)."""
    with gzip.open(DATASET_DIR / "train-labels-idx1-ubyte.gz") as handle:
        labels = np.frombuffer(handle.read(), dtype=np.uint8, offset=8)
    with gzip.open(DATASET_DIR / "train-images-idx3-ubyte.gz") as handle:
        images = np.frombuffer(handle.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    return images, labels


def write_subset(
    directory: Path, per_class: int, classes: int = len(LABELS), seed: int = 0, offset: int = 0
) -> Path:
    """`per_class` images of each of the first `classes` labels, picked at random (fixed
    seed) from the training split; `offset` skips that many per class first, so two calls
    can give disjoint subsets."""
    images, labels = training_split()
    rng = np.random.default_rng(seed)
    for label in range(classes):
        indices = rng.permutation(np.flatnonzero(labels == label))[offset : offset + per_class]
        folder = directory / LABELS[label]
        folder.mkdir(parents=True, exist_ok=True)
        for index in indices:
            Image.fromarray(images[index]).save(folder / f"{index:05d}.png")
    return directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--classes", type=int, default=len(LABELS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write_subset(args.directory, args.per_class, args.classes, args.seed)
    print(f"wrote {args.per_class} x {args.classes} images to {args.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
