"""Validation metrics of a classifier: accuracy, per-label precision / recall / F1, the
confusion matrix, and their text form for the end-of-training report."""

from __future__ import annotations

from typing import Any

import torch


def evaluate(targets: torch.Tensor, predictions: torch.Tensor, labels: list[str]) -> dict[str, Any]:
    """JSON-able metrics; confusion[i][j] counts images of label i predicted as label j."""
    n = len(labels)
    confusion = torch.bincount(targets * n + predictions, minlength=n * n).view(n, n)
    correct = confusion.diag().double()
    predicted, actual = confusion.sum(0).double(), confusion.sum(1).double()
    precision = torch.where(predicted > 0, correct / predicted.clamp_min(1), 0.0)
    recall = torch.where(actual > 0, correct / actual.clamp_min(1), 0.0)
    f1 = torch.where(
        precision + recall > 0, 2 * precision * recall / (precision + recall).clamp_min(1e-12), 0.0
    )
    per_label = {
        label: {
            "precision": round(precision[i].item(), 4),
            "recall": round(recall[i].item(), 4),
            "f1": round(f1[i].item(), 4),
            "support": int(actual[i].item()),
        }
        for i, label in enumerate(labels)
    }
    return {
        "accuracy": round(correct.sum().item() / max(1, len(targets)), 4),
        "macro_f1": round(f1.mean().item(), 4),
        "images": len(targets),
        "per_label": per_label,
        "confusion": confusion.tolist(),
    }


def format_report(metrics: dict[str, Any], labels: list[str]) -> str:
    width = max(12, *(len(label) for label in labels)) + 2
    lines = [f"{'label':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"]
    for label in labels:
        row = metrics["per_label"][label]
        lines.append(
            f"{label:<{width}}{row['precision']:>10.3f}{row['recall']:>10.3f}{row['f1']:>10.3f}{row['support']:>9}"
        )
    lines.append(f"{'macro avg':<{width}}{'':>10}{'':>10}{metrics['macro_f1']:>10.3f}{metrics['images']:>9}")
    lines.append("")
    lines.append("confusion matrix (rows: true label, columns: predicted, in the order above):")
    cell = max(5, len(str(max(max(row) for row in metrics["confusion"]))) + 1)
    for label, row in zip(labels, metrics["confusion"], strict=True):
        lines.append(f"{label:<{width}}" + "".join(f"{count:>{cell}}" for count in row))
    return "\n".join(lines)
