"""The epoch loop: train, validate, keep the best weights, stop early, checkpoint every
epoch, and pick up from the last checkpoint after a kill.

The checkpoint holds everything the next epoch depends on (weights, optimizer moments,
the best weights so far, the history); the learning rate is a function of the epoch
number and the data order a function of (seed, epoch), so a resumed run trains the same
epochs an uninterrupted one would.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from . import checkpoint

FORMAT = 1


class EpochSource(Protocol):
    def __len__(self) -> int: ...
    def epoch(self, epoch: int) -> Any: ...
    def validation_logits(self, model: nn.Module) -> torch.Tensor: ...

    val_y: torch.Tensor


@dataclass(frozen=True)
class Schedule:
    epochs: int
    patience: int
    learning_rates: list[float]  # per parameter group, at epoch 0 (cosine decay to 0)
    weight_decay: float


@dataclass
class Outcome:
    best_state: dict[str, torch.Tensor]
    best_epoch: int
    history: list[dict[str, float]]  # one entry per epoch run, in order
    stopped_early: bool
    resumed_from: int  # epochs that were already done when this process started


class CheckpointMismatch(ValueError):
    """A checkpoint that belongs to another run (other data or settings)."""


def train(
    model: nn.Module,
    groups: list[list[nn.Parameter]],
    source: EpochSource,
    schedule: Schedule,
    path: Path,
    run_key: dict[str, Any],
    set_train_mode: Callable[[], None],
    label: str = "",
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Outcome:
    """Run (or finish) the epochs; `run_key` identifies the run: a checkpoint at `path`
    made with another key is refused rather than continued."""
    optimizer = torch.optim.AdamW(
        [{"params": params, "lr": lr} for params, lr in zip(groups, schedule.learning_rates, strict=True)],
        weight_decay=schedule.weight_decay,
    )
    state = checkpoint.load(path)
    if state is not None:
        if state["run_key"] != run_key:
            raise CheckpointMismatch(_differences(state["run_key"], run_key, path))
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        log(f"{label}resuming after epoch {state['epoch']} of {schedule.epochs} from {path}")
    else:
        state = {
            "format": FORMAT,
            "run_key": run_key,
            "epoch": 0,
            "best": {"epoch": 0, "accuracy": -1.0, "loss": math.inf, "state": _copy_state(model)},
            "stale": 0,
            "history": [],
            "stopped_early": False,
        }
    resumed_from = state["epoch"]
    # A run that stopped early stays stopped; one that ran out of epochs continues when
    # resumed with more (the cosine schedule then stretches from that epoch on).
    while not state["stopped_early"] and state["epoch"] < schedule.epochs:
        epoch = state["epoch"]
        for group, base_lr in zip(optimizer.param_groups, schedule.learning_rates, strict=True):
            group["lr"] = base_lr * 0.5 * (1 + math.cos(math.pi * epoch / schedule.epochs))
        record = _run_epoch(
            model, optimizer, source, epoch, schedule.epochs, state, set_train_mode, label, progress
        )
        state["history"].append(record)
        best = state["best"]
        improved = record["val_accuracy"] > best["accuracy"] or (
            record["val_accuracy"] == best["accuracy"] and record["val_loss"] < best["loss"]
        )
        if improved:
            state["best"] = {
                "epoch": epoch + 1,
                "accuracy": record["val_accuracy"],
                "loss": record["val_loss"],
                "state": _copy_state(model),
            }
        state["stale"] = 0 if improved else state["stale"] + 1
        state["epoch"] = epoch + 1
        state["stopped_early"] = state["stale"] >= schedule.patience and state["epoch"] < schedule.epochs
        state["model"], state["optimizer"] = model.state_dict(), optimizer.state_dict()
        checkpoint.save_atomic(state, path)
        log(
            f"{label}epoch {epoch + 1}/{schedule.epochs}: train loss {record['train_loss']:.4f}, "
            f"val loss {record['val_loss']:.4f}, val accuracy {record['val_accuracy']:.4f}"
            + (" (best)" if improved else "")
            + f", {record['seconds']:.1f} s; checkpoint saved"
            + (
                f"; no better score for {schedule.patience} epochs: stopping early"
                if state["stopped_early"]
                else ""
            )
        )
    return Outcome(
        best_state=state["best"]["state"],
        best_epoch=state["best"]["epoch"],
        history=state["history"],
        stopped_early=state["stopped_early"],
        resumed_from=resumed_from,
    )


def _run_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    source: EpochSource,
    epoch: int,
    epochs: int,
    state: dict[str, Any],
    set_train_mode: Callable[[], None],
    label: str,
    progress: bool,
) -> dict[str, float]:
    started = time.perf_counter()
    set_train_mode()
    last = state["history"][-1]["val_accuracy"] if state["history"] else None
    bar = tqdm(
        total=len(source),
        desc=f"{label}epoch {epoch + 1}/{epochs}",
        file=sys.stderr,
        disable=not progress,
        mininterval=0.5,
    )
    total, seen = 0.0, 0
    for inputs, targets in source.epoch(epoch):
        logits = model(inputs)
        loss = F.cross_entropy(logits.float(), targets.to(logits.device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(targets)
        seen += len(targets)
        bar.set_postfix(
            loss=f"{total / seen:.4f}", val_acc="-" if last is None else f"{last:.4f}", refresh=False
        )
        bar.update(1)
    model.eval()
    logits = source.validation_logits(model)
    val_loss = F.cross_entropy(logits, source.val_y).item()
    accuracy = (logits.argmax(1) == source.val_y).float().mean().item()
    bar.set_postfix(loss=f"{total / seen:.4f}", val_acc=f"{accuracy:.4f}")
    bar.close()
    return {
        "epoch": epoch + 1,
        "train_loss": total / seen,
        "val_loss": val_loss,
        "val_accuracy": accuracy,
        "seconds": time.perf_counter() - started,
    }


def _copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _differences(stored: dict[str, Any], current: dict[str, Any], path: Path) -> str:
    changed = sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k))
    details = ", ".join(f"{k}: {stored.get(k)!r} then, {current.get(k)!r} now" for k in changed)
    return f"the checkpoint in {path} is from another run ({details}); start again with --restart"
