"""Builders: a config in, the pieces of a run out (Fabric, data, model, loss, sampler, augmentation).

Training (:mod:`imbal.engine.trainer`) and evaluation (:mod:`imbal.engine.evaluate`) both build
through these functions, so a setting means the same thing in both.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os

import torch
from lightning_fabric import Fabric
from lightning_fabric.plugins.environments import LightningEnvironment

from imbal.data import Augmentation, Splits, load_dataset, stratified_split
from imbal.data.cache import cache_folder, check_cache, content_checksum, read_manifest
from imbal.data.folds import cv_splits
from imbal.data.stream import AnyDataset
from imbal.engine import run_dir as rd
from imbal.engine.config import TrainConfig
from imbal.errors import ConfigError, DataError
from imbal.losses import CombinedLoss, LossSettings, build_loss, inverse_frequency_weights
from imbal.models import Classifier, build_model
from imbal.naming import SPLITS
from imbal.samplers import SAMPLERS, BatchSampler, build_sampler


def resolve_accelerator(cfg: TrainConfig) -> str:
    if cfg.accelerator in ("cuda", "gpu") and not torch.cuda.is_available():
        raise ConfigError(
            f"accelerator {cfg.accelerator!r} asked for, but this torch ({torch.__version__}) sees no CUDA "
            "device; use --accelerator cpu or auto"
        )
    if cfg.accelerator not in ("auto", "cpu", "cuda", "gpu"):
        raise ConfigError(f"accelerator must be auto, cpu or cuda, got {cfg.accelerator!r}")
    if cfg.accelerator == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if cfg.accelerator == "gpu" else cfg.accelerator


def resolve_precision(cfg: TrainConfig, accelerator: str) -> str:
    if cfg.precision != "auto":
        return cfg.precision
    return "bf16-mixed" if accelerator == "cuda" else "32-true"


def make_fabric(cfg: TrainConfig) -> Fabric:
    """Fabric for the config's devices, nodes and precision; torchrun/SLURM fill in the cluster."""
    accelerator = resolve_accelerator(cfg)
    strategy = cfg.strategy
    if strategy == "auto" and cfg.devices * cfg.num_nodes > 1:
        strategy = "ddp"
    fabric = Fabric(
        accelerator=accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=strategy,
        precision=resolve_precision(cfg, accelerator),  # type: ignore[arg-type]
        loggers=loggers_for(cfg),
    )
    check_launcher(cfg, fabric)
    return fabric


def check_launcher(cfg: TrainConfig, fabric: Fabric) -> None:
    """Several nodes need a process per node from a launcher; without one, rank 0 waits forever.

    Fabric falls back to its plain environment when it detects no launcher (torchrun, SLURM's srun,
    LSF, MPI, Kubeflow); that environment can span nodes only when each was started by hand with
    ``NODE_RANK`` (and ``MASTER_ADDR``) set, so without ``NODE_RANK`` the run is refused at once.
    """
    if cfg.num_nodes <= 1:
        return
    env = getattr(fabric.strategy, "cluster_environment", None)
    if isinstance(env, LightningEnvironment) and "NODE_RANK" not in os.environ:
        n = cfg.num_nodes
        raise ConfigError(
            f"num_nodes={n} needs one process per node started by a launcher, and none was found (no torchrun, "
            f"SLURM or NODE_RANK environment); on each node run `torchrun --nnodes {n} --nproc-per-node "
            f"{cfg.devices} --node-rank <0..{n - 1}> --master-addr <first node> --master-port 29500 -m "
            "imbal.cli.main train ...`, or under SLURM `srun imbal train ...`"
        )


def loggers_for(cfg: TrainConfig) -> list:
    """``logger: tensorboard``: Fabric's TensorBoard logger writing into ``<out>/tensorboard``.

    The writer is created on the first logged epoch (after the run folder is claimed), logs on rank 0
    only, and flushes every few seconds so that a live ``tensorboard`` shows the epoch just finished.
    A grid's cells are run folders under one study folder, so ``tensorboard --logdir STUDY`` names
    each curve by its cell path.
    """
    if cfg.logger != "tensorboard":
        return []
    from lightning_fabric.loggers import TensorBoardLogger

    return [
        TensorBoardLogger(cfg.out, name=rd.TENSORBOARD, version="", default_hp_metric=False, flush_secs=5)
    ]


def prepare_data(cfg: TrainConfig) -> Splits:
    """The config's data set: its own splits or one cross-validation fold, with the optional training subset."""
    splits = load_dataset(cfg.dataset, size=cfg.size)
    if cfg.cv_folds:
        splits = cv_splits(splits, cfg.cv_folds, cfg.cv_fold, cfg.cv_repeat, tuple(cfg.cv_over))
    if cfg.train_subset and cfg.train_subset < len(splits.train):
        frac = cfg.train_subset / len(splits.train)
        keep, _ = stratified_split(splits.train.labels, (frac, 1 - frac), seed=cfg.seed)
        # a small subset can lose a class: the cross-split checks run again
        splits = dataclasses.replace(splits, train=splits.train.subset(keep)).check()
    if cfg.crop_size and any(cfg.crop_size > s for s in splits.train.spatial_size):
        raise ConfigError(
            f"crop_size={cfg.crop_size} exceeds the images' size {tuple(splits.train.spatial_size)}"
        )
    return splits


def check_validation_split(splits: Splits) -> None:
    """Best-epoch selection compares validation scores: a split with one class cannot rank epochs."""
    counts = splits.val.class_counts
    present = [k for k, c in enumerate(counts.tolist()) if c]
    if len(present) < 2:
        name = splits.val.class_names[present[0]] if present else "none"
        raise DataError(
            f"the validation split of {splits.train.name} holds one class only ({name!r}, {len(splits.val)} "
            "samples): its scores cannot pick the best epoch (AUROC is undefined, the others reward "
            "predicting that class). Give the validation split samples of at least two classes"
        )


def _hash_split(h: hashlib._Hash, data: AnyDataset) -> None:
    h.update(str(tuple(data.images.shape)).encode())
    h.update(data.labels.cpu().numpy().tobytes())
    images = data.images
    # chunks of about 64 MiB, so a large (or disk-backed) split is never copied whole
    step = max(1, (64 << 20) // max(1, math.prod(images.shape[1:])))
    for start in range(0, len(data), step):
        h.update(images[start : start + step].cpu().contiguous().numpy().tobytes())


def data_checksum(splits: Splits) -> str:
    """The identity of the data a run trains on, recorded in its checkpoints and metrics.json.

    A prepared cache: every file is checked against the manifest's sha256 (the one full read of
    the images), and the identity is the manifest's checksum of those files. Anything else (held in
    memory): a sha256 of the three splits' images and labels and the class names. A resume compares
    it with the one in ``last.ckpt``, so a cache rebuilt with other data between a kill and
    ``--resume`` is refused. It costs one read of the data (sha256 at about 1.5 GB/s).
    """
    folder = cache_folder(splits)
    if folder is not None:
        manifest = read_manifest(folder)
        check_cache(folder, manifest, verify=True)
        return content_checksum(manifest)[:16]
    h = hashlib.sha256()
    h.update(repr(list(splits.train.class_names)).encode())
    for split in SPLITS:
        _hash_split(h, splits[split])
    return h.hexdigest()[:16]


def fingerprint(data: AnyDataset) -> str:
    """A short hash of a split's images and labels: runs are only compared on the same test set."""
    h = hashlib.sha256()
    _hash_split(h, data)
    return h.hexdigest()[:16]


def model_for(cfg: TrainConfig, data: AnyDataset) -> Classifier:
    return build_model(
        cfg.arch,
        data.spatial_dims,
        data.in_channels,
        data.num_classes,
        small_input=cfg.small_input,
        widen_factor=cfg.widen_factor,
        norm=cfg.norm,
    )


def augmentation_for(cfg: TrainConfig, data: AnyDataset) -> Augmentation:
    return Augmentation(data.spatial_dims, enabled=cfg.augment, crop_size=cfg.crop_size or None)


def loss_for(cfg: TrainConfig, data: AnyDataset) -> CombinedLoss:
    """The training loss: the config's loss settings with the training counts, as one LossSettings.

    Its value checks are off (labels were checked when the data was loaded). A setting the data
    cannot take (binary F1 on three classes) is a ConfigError naming the data set.
    """
    counts = data.class_counts
    weights = inverse_frequency_weights(counts) if SAMPLERS[cfg.sampler].class_weights else None
    settings = LossSettings.of(cfg, class_counts=counts, validate=False)
    try:
        return build_loss(cfg.loss, settings, class_weights=weights)
    except ValueError as exc:
        raise ConfigError(f"loss {cfg.loss!r} on {data.name}: {exc}") from None


def sampler_for(cfg: TrainConfig, data: AnyDataset, fabric: Fabric) -> BatchSampler:
    if cfg.batch_size < fabric.world_size:
        raise ConfigError(f"batch_size={cfg.batch_size} is smaller than the {fabric.world_size} processes")
    if cfg.batch_size > len(data):
        # a batch larger than the data would silently become one batch of everything
        raise ConfigError(
            f"batch_size={cfg.batch_size} is larger than the {len(data)} training samples of {data.name}; "
            f"use --batch-size {len(data)} or less"
        )
    return build_sampler(
        cfg.sampler,
        data.labels.cpu(),
        cfg.batch_size,
        seed=cfg.seed,
        num_replicas=fabric.world_size,
        rank=fabric.global_rank,
    )


def optimizer_for(
    cfg: TrainConfig, model: torch.nn.Module, on_cuda: bool
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=cfg.lr,
        betas=(cfg.betas[0], cfg.betas[1]),
        weight_decay=cfg.weight_decay,
        fused=on_cuda or None,
    )
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
        if cfg.schedule == "cosine"
        else torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    )
    return optimizer, scheduler
