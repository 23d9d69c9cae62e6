"""One training job, from a data location to a PAIS snapshot directory.

`train(data, output_dir, hyperparameters)` is all a caller needs: the CLI calls it, and
so can a SageMaker training container (data = /opt/ml/input/data/<channel>, output_dir =
/opt/ml/model, hyperparameters = the parsed hyperparameters.json, run_dir =
/opt/ml/checkpoints so a restarted spot job resumes). Steps:

1. list the labelled files, read their headers, skip what is not an image, check classes;
2. decode every image once at the training size, split off a stratified validation set;
3. frozen features of every image (cached on disk: computed once per data and base);
4. the frozen-feature linear baseline (for head mode, this *is* the model);
5. finetune / full: train the network from the baseline's head (linear probe, then
   fine-tune: the new head does not wreck the pretrained features while it is random);
6. validate the best epoch's weights through the serving runtime, write the snapshot.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..classification import ImageClassifier
from ..classification import loaders as classification
from ..classification.heads import replace_head
from ..classification.loaders import LoadedClassifier
from ..device import choose_placement
from ..info import ModelInfo
from ..sources import cache_root
from . import checkpoint, data, images, metrics, network, trainer
from .batches import FeatureBatches, PixelBatches, Split
from .config import Hyperparameters
from .split import stratified_split

SHOWN_SKIPPED = 20  # skipped files listed in the log; all of them go to skipped-files.txt
FEATURE_CHUNK = 64


class RunExists(ValueError):
    """A run directory with a checkpoint, and no --resume: continuing or discarding it is
    the user's choice, never made silently."""


@dataclass
class TrainedClassifier:
    classifier: ImageClassifier  # the trained network in this process, as the runtime serves it
    info: ModelInfo
    snapshot: Path
    validation_paths: list[Path]
    validation_top1: list[int]  # label index the in-process model predicts per validation image


def default_run_dir(name: str) -> Path:
    """Where a run of `name` keeps its checkpoints and cached features unless told."""
    return cache_root() / "finetune" / "runs" / name


def train(
    data_location: str | Path,
    output_dir: str | Path,
    hyperparameters: Mapping[str, Any] | Hyperparameters,
    *,
    run_dir: str | Path | None = None,
    resume: bool = False,
    device: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainedClassifier:
    """Train a classifier on labelled images and write its snapshot to `output_dir`."""
    started = time.perf_counter()
    hp = (
        hyperparameters
        if isinstance(hyperparameters, Hyperparameters)
        else Hyperparameters.from_mapping(hyperparameters)
    )
    run = Path(run_dir) if run_dir else default_run_dir(hp.name)
    _check_run(run, resume, log)
    # Denormal floats are slow on x86 CPUs; in one measurement on a quiet machine a
    # channels-last EfficientNet-Lite0 forward at 64 px ran 14 images/s without this and
    # 742 with it. Values that small change no prediction.
    torch.set_flush_denormal(True)
    placement = choose_placement(device, "fp32", channels_last=True, accelerated=False)

    listing, scanned = _scan_data(str(data_location), hp, run, log)  # bad data fails here, before any model
    base = network.load_base(hp.base)
    prepared = _prepare_data(listing, scanned, hp, base, log)
    spec = network.training_preprocess(base.preprocess, prepared.images.pixels.shape[-1])
    labels, targets = prepared.labels, prepared.targets
    val_idx = prepared.split[1]
    run_key = {
        "data_fingerprint": prepared.fingerprint,
        **{k: v for k, v in hp.to_dict().items() if k != "epochs"},
    }

    extractor = ImageClassifier(
        LoadedClassifier(base.network, base.labels, spec, base.info, base.arch), placement
    )
    t0 = time.perf_counter()
    features = _features(extractor, prepared.images, spec, base.info.version, log)
    feature_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    probe, probe_outcome, baseline = _linear_head(hp, features, prepared, run, run_key, progress, log)
    baseline_seconds = time.perf_counter() - t0

    model = base.network  # placed on the device by the extractor
    head = replace_head(model, len(labels)).to(placement.device)
    head.load_state_dict(network.fold_standardisation(probe[1], probe[0].mean, probe[0].std).state_dict())
    outcome = probe_outcome
    if hp.mode != "head":
        outcome = _train_pixels(model, hp, prepared, spec, placement.device, run, run_key, progress, log)
        model.load_state_dict(outcome.best_state)

    trained_network = network_for_serving(model)
    # Validated through the serving runtime itself: the numbers on the card are the
    # served model's.
    provisional = ImageClassifier(
        LoadedClassifier(trained_network, labels, spec, base.info, base.arch), placement
    )
    val_pixels = [prepared.images.pixels[i] for i in val_idx.tolist()]
    top1 = [result.predictions[0].index for result in provisional.classify_many(val_pixels, top_k=1)]
    validation = metrics.evaluate(targets[val_idx], torch.tensor(top1), labels)

    info = _model_card(
        hp,
        base,
        str(data_location),
        prepared,
        validation,
        baseline,
        {
            "epochs_run": len(outcome.history),
            "resumed_after_epoch": outcome.resumed_from,
            "best_epoch": outcome.best_epoch,
            "stopped_early": outcome.stopped_early,
            "history": [{k: round(v, 4) for k, v in record.items()} for record in outcome.history],
            "seconds": {
                "features": round(feature_seconds, 1),
                "baseline": round(baseline_seconds, 1),
                "total": round(time.perf_counter() - started, 1),
            },
        },
    )
    trained = LoadedClassifier(trained_network, labels, spec, info, base.arch)
    snapshot = Path(output_dir)
    if snapshot.exists():
        shutil.rmtree(snapshot)
    classification.save(trained, snapshot)
    log(_final_report(hp, validation, baseline, labels, info))
    log(f"snapshot written to {snapshot}")
    return TrainedClassifier(
        ImageClassifier(trained, placement),
        info,
        snapshot,
        [prepared.images.paths[i] for i in val_idx.tolist()],
        top1,
    )


def _linear_head(
    hp: Hyperparameters,
    features: torch.Tensor,
    prepared: _Prepared,
    run: Path,
    run_key: dict[str, Any],
    progress: bool,
    log: Callable[[str], None],
) -> tuple[nn.Sequential, trainer.Outcome, dict[str, Any]]:
    """The linear head on frozen features (its best epoch loaded) and its validation
    metrics. Head mode trains it with the user's settings; the other modes train it as
    their baseline and starting head, with head mode's defaults."""
    torch.manual_seed(hp.seed)
    source = FeatureBatches(Split.of(features, prepared.targets, prepared.split), hp.batch_size, hp.seed)
    probe = _standardised_head(source.train, len(prepared.labels))
    head_hp = hp if hp.mode == "head" else Hyperparameters(mode="head", weight_decay=hp.weight_decay)
    outcome = trainer.train(
        probe,
        [list(probe.parameters())],
        source,
        trainer.Schedule(head_hp.total_epochs, head_hp.total_patience, [head_hp.head_lr], hp.weight_decay),
        run / ("checkpoint.pt" if hp.mode == "head" else "baseline.pt"),
        {**run_key, "phase": "linear head"},
        probe.train,
        label="" if hp.mode == "head" else "baseline: ",
        progress=progress and hp.mode == "head",
        log=log,
    )
    probe.load_state_dict(outcome.best_state)
    predictions = source.validation_logits(probe.eval()).argmax(1)
    return probe, outcome, metrics.evaluate(source.val_y, predictions, prepared.labels)


def network_for_serving(model: nn.Module) -> nn.Module:
    """The trained network on the CPU in fp32 with every parameter trainable again (a
    snapshot is a plain network; which layers were frozen is training history)."""
    model = model.eval().float().cpu().to(memory_format=torch.contiguous_format)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


@dataclass
class _Prepared:
    images: images.ImageSet
    labels: list[str]
    targets: torch.Tensor
    split: tuple[torch.Tensor, torch.Tensor]
    fingerprint: str
    ignored: list[str]


def _check_run(run: Path, resume: bool, log: Callable[[str], None]) -> None:
    has_checkpoint = (run / "checkpoint.pt").is_file() or (run / "baseline.pt").is_file()
    if has_checkpoint and not resume:
        raise RunExists(
            f"{run} holds the checkpoints of an earlier run of this name; continue it with --resume, "
            "or discard it with --restart"
        )
    if resume and not has_checkpoint:
        log(f"no checkpoint in {run}: starting from the first epoch")
    run.mkdir(parents=True, exist_ok=True)


def _scan_data(
    location: str, hp: Hyperparameters, run: Path, log: Callable[[str], None]
) -> tuple[data.Listing, images.Scan]:
    """List and header-check every file; list the skipped ones; check the classes."""
    listing = data.list_examples(location)
    log(f"{location}: {len(listing.examples)} files in {len(listing.labels)} classes")
    scanned = images.scan(listing.examples)
    _report_skipped(
        scanned.skipped + [(name, "not inside a label folder") for name in listing.ignored], run, log
    )
    data.check_classes(Counter(e.label for e in scanned.examples), listing.labels, hp.min_per_class)
    return listing, scanned


def _prepare_data(
    listing: data.Listing,
    scanned: images.Scan,
    hp: Hyperparameters,
    base: LoadedClassifier,
    log: Callable[[str], None],
) -> _Prepared:
    """Decode at the training size; files whose header passed but whose data does not
    decode are skipped too, and the classes checked again."""
    size = hp.image_size or images.choose_image_size(scanned.short_sides, base.preprocess.output_size[0])
    decoded = images.decode_resized(scanned, size, base.preprocess.interpolation)
    undecodable = decoded.skipped[len(scanned.skipped) :]
    if undecodable:
        log(
            "skipped files whose image data does not decode:\n"
            + "\n".join(f"  {n}: {why}" for n, why in undecodable)
        )
    counts = Counter(decoded.labels)
    data.check_classes(counts, listing.labels, hp.min_per_class)
    labels = sorted(counts)
    index = {label: i for i, label in enumerate(labels)}
    targets = torch.tensor([index[label] for label in decoded.labels])
    split = stratified_split(targets, hp.val_fraction, hp.seed)
    fingerprint = data.fingerprint(list(zip(decoded.names, decoded.labels, decoded.digests, strict=True)))
    log(
        f"{len(decoded.labels)} images of {len(labels)} classes at {size}x{size} px: "
        f"{len(split[0])} to train, {len(split[1])} to validate (stratified); data {fingerprint[:19]}"
    )
    return _Prepared(decoded, labels, targets, split, fingerprint, listing.ignored)


def _report_skipped(skipped: list[tuple[str, str]], run: Path, log: Callable[[str], None]) -> None:
    if not skipped:
        return
    listed = "\n".join(f"  {name}: {why}" for name, why in skipped[:SHOWN_SKIPPED])
    more = f"\n  ... and {len(skipped) - SHOWN_SKIPPED} more" if len(skipped) > SHOWN_SKIPPED else ""
    (run / "skipped-files.txt").write_text("".join(f"{name}\t{why}\n" for name, why in skipped))
    log(
        f"skipped {len(skipped)} files that are not usable images "
        f"(all in {run / 'skipped-files.txt'}):\n{listed}{more}"
    )


def _features(
    extractor: ImageClassifier,
    decoded: images.ImageSet,
    spec: Any,
    base_version: str,
    log: Callable[[str], None],
) -> torch.Tensor:
    """Every image's frozen features, from the on-disk cache when this data has been seen
    with this base and preprocessing (a head run after a finetune run, a resumed run)."""
    key = hashlib.sha256(
        "\n".join([base_version, repr(sorted(spec.to_dict().items())), *decoded.digests]).encode()
    ).hexdigest()[:24]
    path = cache_root() / "finetune" / "features" / f"{key}.pt"
    cached = checkpoint.load(path)
    if cached is not None and cached["features"].shape[0] == len(decoded.digests):
        log(f"frozen features from the cache ({path})")
        return cached["features"]
    started = time.perf_counter()
    chunks = []
    for start in range(0, len(decoded.pixels), FEATURE_CHUNK):
        chunks.append(extractor.embeddings(list(decoded.pixels[start : start + FEATURE_CHUNK])))
    features = torch.cat(chunks)
    checkpoint.save_atomic({"features": features}, path)
    seconds = time.perf_counter() - started
    log(
        f"frozen features of {len(features)} images in {seconds:.1f} s "
        f"({len(features) / seconds:.0f} images/s), cached"
    )
    return features


def _standardised_head(train_features: torch.Tensor, classes: int) -> nn.Sequential:
    """Standardise (fixed buffers) then a linear layer: pooled features differ in scale by
    orders of magnitude, which a linear probe trained with Adam converges on slowly. The
    scale is shrunk towards the mean spread: a feature (nearly) constant on the training
    images would otherwise blow up on a validation image where it is not (measured: val
    loss 110 with a plain 1e-6 floor, 0.64 this way)."""
    std = train_features.std(0)
    return nn.Sequential(
        _Standardise(train_features.mean(0), std + std.mean()),
        nn.Linear(train_features.shape[1], classes),
    )


class _Standardise(nn.Module):
    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _train_pixels(
    model: nn.Module,
    hp: Hyperparameters,
    prepared: _Prepared,
    spec: Any,
    device: torch.device,
    run: Path,
    run_key: dict[str, Any],
    progress: bool,
    log: Callable[[str], None],
) -> trainer.Outcome:
    backbone, head = network.split_parameters(model, hp.mode, hp.finetune_blocks)
    groups, rates = [head], [hp.head_lr]
    if backbone:
        groups.append(backbone)
        rates.append(hp.head_lr * hp.backbone_lr_ratio)
    trained = sum(p.numel() for group in groups for p in group)
    log(f"{hp.mode}: training {trained:,} of {sum(p.numel() for p in model.parameters()):,} parameters")
    data = Split.of(prepared.images.pixels, prepared.targets, prepared.split)
    source = PixelBatches(data, hp.batch_size, hp.seed, spec, device)
    return trainer.train(
        model,
        groups,
        source,
        trainer.Schedule(hp.total_epochs, hp.total_patience, rates, hp.weight_decay),
        run / "checkpoint.pt",
        {**run_key, "phase": hp.mode},
        lambda: network.train_mode(model),
        progress=progress,
        log=log,
    )


def _model_card(
    hp: Hyperparameters,
    base: LoadedClassifier,
    location: str,
    prepared: _Prepared,
    validation: dict[str, Any],
    baseline: dict[str, Any],
    training: dict[str, Any],
) -> ModelInfo:
    version = hashlib.sha256(
        f"{prepared.fingerprint}/{hp.digest()}/{base.info.version}".encode()
    ).hexdigest()[:12]
    return ModelInfo(
        task=classification.TASK,
        name=hp.name,
        source=location,
        version=f"{hp.mode}.{version}",
        licence=(
            f"trained on your data ({location}): its terms apply; "
            f"base model {base.info.name}: {base.info.licence}"
        ),
        origin=(
            f"{base.info.name} ({hp.base}) with a new {len(prepared.labels)}-class head, trained with "
            f"`python -m models.finetune --mode {hp.mode}` on {location}"
        ),
        details={
            "labels": prepared.labels,
            "base_model": {
                "source": hp.base,
                "name": base.info.name,
                "version": base.info.version,
                "licence": base.info.licence,
            },
            "data_fingerprint": prepared.fingerprint,
            "evaluation": {
                "validation": validation,
                "baseline": {"method": "linear head on frozen base features", **baseline},
                "split": {
                    "train": len(prepared.split[0]),
                    "validation": len(prepared.split[1]),
                    "val_fraction": hp.val_fraction,
                    "seed": hp.seed,
                },
                "skipped_files": len(prepared.images.skipped) + len(prepared.ignored),
            },
            "training": {"mode": hp.mode, "hyperparameters": hp.to_dict(), **training},
        },
    )


def _final_report(
    hp: Hyperparameters,
    validation: dict[str, Any],
    baseline: dict[str, Any],
    labels: list[str],
    info: ModelInfo,
) -> str:
    training = info.details["training"]
    lines = [
        "",
        f"validation ({validation['images']} images), "
        f"best epoch {training['best_epoch']} of {training['epochs_run']}"
        + (" (stopped early)" if training["stopped_early"] else ""),
        metrics.format_report(validation, labels),
        "",
        f"accuracy: {validation['accuracy']:.4f} ({hp.mode})  vs  {baseline['accuracy']:.4f} "
        f"(frozen-feature linear baseline)  vs  {1 / len(labels):.4f} (chance)",
        f"trained in {training['seconds']['total']:.1f} s",
    ]
    return "\n".join(lines)
