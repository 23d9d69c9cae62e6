"""Custom image classifiers trained on a user's labelled images (transfer learning from a
pretrained classifier), stored as PAIS classification snapshots.

    python -m models.finetune --data DIR_OR_S3_OR_CSV --name NAME [--mode head|finetune|full]

`train(data, output_dir, hyperparameters)` is the same job as a function (for a SageMaker
training container). Torch is imported on first use, so `--help` and bad arguments answer
at once.
"""

from typing import Any

__all__ = ["train"]


def __getattr__(name: str) -> Any:
    if name == "train":
        from .job import train

        return train
    raise AttributeError(name)
