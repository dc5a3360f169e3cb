"""The training loop: Lightning Fabric for devices, precision and DDP; our own thin loop, no Trainer.

Data sets live on the training device for the whole run and batches are gathered by index
(:meth:`ImageDataset.batch`), augmentation runs batched on the device, and the loop never reads a
value back to the host inside an epoch: losses are summed on the device and read once per epoch.
"""

from __future__ import annotations

import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from lightning_fabric import Fabric
from tqdm.auto import tqdm

from imbal.data import Augmentation, ImageDataset, Splits, load_dataset, stratified_split
from imbal.engine import run_dir as rd
from imbal.engine.config import TrainConfig
from imbal.engine.scoring import evaluate_split, write_predictions
from imbal.losses import build_loss, inverse_frequency_weights
from imbal.models import Classifier, build_model
from imbal.samplers import build_sampler


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss; the run folder keeps the last good checkpoint."""


def resolve_precision(cfg: TrainConfig, accelerator: str) -> str:
    if cfg.precision != "auto":
        return cfg.precision
    return "bf16-mixed" if accelerator == "cuda" else "32-true"


def make_fabric(cfg: TrainConfig) -> Fabric:
    accelerator = cfg.accelerator
    if accelerator == "auto":
        accelerator = "cuda" if torch.cuda.is_available() else "cpu"
    strategy = cfg.strategy
    if strategy == "auto" and cfg.devices > 1:
        strategy = "ddp"
    return Fabric(
        accelerator=accelerator,
        devices=cfg.devices,
        strategy=strategy,
        precision=resolve_precision(cfg, accelerator),
    )


def prepare_data(cfg: TrainConfig) -> Splits:
    splits = load_dataset(cfg.dataset, size=cfg.size)
    if cfg.train_subset and cfg.train_subset < len(splits.train):
        frac = cfg.train_subset / len(splits.train)
        keep, _ = stratified_split(splits.train.labels, (frac, 1 - frac), seed=cfg.seed)
        splits = Splits(splits.train.subset(keep), splits.val, splits.test, splits.source)
    return splits


def model_for(cfg: TrainConfig, data: ImageDataset) -> Classifier:
    return build_model(
        cfg.arch,
        data.spatial_dims,
        data.in_channels,
        data.num_classes,
        small_input=cfg.small_input,
        widen_factor=cfg.widen_factor,
        norm=cfg.norm,
    )


def augmentation_for(cfg: TrainConfig, data: ImageDataset) -> Augmentation:
    return Augmentation(data.spatial_dims, enabled=cfg.augment, crop_size=cfg.crop_size or None)


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    best_epoch: int = -1
    best_score: float = -math.inf
    stale: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


def _score(metrics: dict[str, Any], key: str) -> float:
    v = metrics.get(key)
    return -math.inf if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def versions() -> dict[str, str]:
    import lightning_fabric
    import monai
    import torchmetrics

    import imbal

    return {
        "imbal": imbal.__version__,
        "torch": torch.__version__,
        "monai": monai.__version__,
        "lightning_fabric": lightning_fabric.__version__,
        "torchmetrics": torchmetrics.__version__,
        "python": platform.python_version(),
    }


def train(cfg: TrainConfig, *, resume: bool = False) -> Path:
    """Train one configuration end to end and return its run folder (see README for its files)."""
    fabric = make_fabric(cfg)
    fabric.launch()
    return _train(fabric, cfg, resume=resume)


@dataclass
class Run:
    """Everything one training run holds while it trains."""

    cfg: TrainConfig
    fabric: Fabric
    splits: Splits
    train_set: ImageDataset
    val_set: ImageDataset
    test_set: ImageDataset
    model: Classifier  # the bare module: its state_dict is what checkpoints hold
    fmodel: torch.nn.Module  # Fabric's wrapper (DDP, precision) used for training
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    loss_fn: torch.nn.Module
    sampler: object
    aug: Augmentation
    memory_format: torch.memory_format
    state: TrainState
    pending_best: dict[str, Any] | None = None  # best weights not yet on disk (see save_checkpoints)
    saved_epoch: int = 0  # the epoch last.ckpt holds

    @property
    def out(self) -> Path:
        return Path(self.cfg.out)


def build_run(fabric: Fabric, cfg: TrainConfig, *, resume: bool) -> Run:
    fabric.seed_everything(cfg.seed, verbose=False)
    splits = prepare_data(cfg)
    train_set = splits.train.to(fabric.device)
    on_cuda = fabric.device.type == "cuda"
    if on_cuda:
        torch.backends.cudnn.benchmark = True
    model = model_for(cfg, train_set)
    if on_cuda and fabric.world_size > 1:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    memory_format = torch.channels_last if train_set.spatial_dims == 2 else torch.channels_last_3d
    # on the device before the optimiser exists, so that fused Adam sees CUDA parameters
    model = model.to(fabric.device, memory_format=memory_format) if on_cuda else model
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=cfg.lr,
        betas=tuple(cfg.betas),
        weight_decay=cfg.weight_decay,
        fused=on_cuda or None,
    )
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
        if cfg.schedule == "cosine"
        else torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    )
    counts = train_set.class_counts
    weights = inverse_frequency_weights(counts) if cfg.sampler == "weights" else None
    # labels were range-checked when the data set was built; the loss is checked once per epoch
    loss_fn = build_loss(
        cfg.loss, class_counts=counts, class_weights=weights, focal_gamma=cfg.focal_gamma, validate=False
    ).to(fabric.device)
    sampler = build_sampler(
        cfg.sampler,
        train_set.labels.cpu(),
        cfg.batch_size,
        seed=cfg.seed,
        num_replicas=fabric.world_size,
        rank=fabric.global_rank,
    )
    state = TrainState()
    last = Path(cfg.out) / rd.LAST
    if resume and last.is_file():
        ckpt = rd.load_torch(last)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        state = TrainState(**ckpt["state"])
    fmodel, optimizer = fabric.setup(model, optimizer)
    return Run(
        cfg,
        fabric,
        splits,
        train_set,
        splits.val.to(fabric.device),
        splits.test.to(fabric.device),
        model,
        fmodel,
        optimizer,
        scheduler,
        loss_fn,
        sampler,
        augmentation_for(cfg, train_set),
        memory_format,
        state,
    )


def train_epoch(run: Run, epoch: int, step_fn) -> tuple[float, int]:
    """One pass over the sampler's batches; returns the mean loss over ranks (read once) and the steps."""
    fabric, cfg = run.fabric, run.cfg
    run.fmodel.train()
    run.sampler.set_epoch(epoch)
    # augmentation draws depend on (seed, epoch, rank) only, so a resumed run replays them exactly
    gen = torch.Generator(device=fabric.device).manual_seed(
        cfg.seed * 1_000_003 + epoch * 101 + fabric.global_rank
    )
    loss_sum = torch.zeros((), device=fabric.device)
    steps = 0
    on_cuda = fabric.device.type == "cuda"
    for idx in run.sampler.epoch_batches().to(fabric.device, non_blocking=True):
        x, y = run.train_set.batch(idx)
        x = run.aug(x, gen)
        if on_cuda:
            x = x.contiguous(memory_format=run.memory_format)
        run.optimizer.zero_grad(set_to_none=True)
        loss = run.loss_fn(step_fn(x), y)
        fabric.backward(loss)
        run.optimizer.step()
        loss_sum += loss.detach()
        steps += 1
    run.scheduler.step()
    return float(fabric.all_reduce(loss_sum / max(steps, 1), reduce_op="mean")), steps


def remember_best(run: Run, val: dict[str, Any]) -> None:
    """Keep a device copy of the new best weights; they reach disk with the next checkpoint write."""
    if run.fabric.is_global_zero:
        run.pending_best = {
            "model": {k: v.detach().clone() for k, v in run.model.state_dict().items()},
            "epoch": run.state.epoch,
            "val": {k: v for k, v in val.items() if isinstance(v, float)},
        }


def save_checkpoints(run: Run, *, last: bool = True) -> None:
    """Write the pending best.ckpt and (``last``) last.ckpt + history.csv, on rank 0.

    Called every ``checkpoint_every`` epochs and at the end: serialising a full-width ResNet-18 with
    its Adam state (134 MB) takes about 330 ms, which per epoch would cost more than a GPU epoch of
    the study's sets. A kill loses at most ``checkpoint_every - 1`` epochs, which a resume replays
    exactly (batches and augmentation depend on seed and epoch only).
    """
    if not run.fabric.is_global_zero:
        return
    if run.pending_best is not None:
        best = run.pending_best
        rd.save_torch(
            run.out / rd.BEST,
            {
                "model": {k: v.cpu() for k, v in best["model"].items()},
                "model_config": dict(run.model.config),
                "config": run.cfg.to_dict(),
                "epoch": best["epoch"],
                "val": best["val"],
                "class_names": run.train_set.class_names,
            },
        )
        run.pending_best = None
    if not last:
        return
    rd.save_torch(
        run.out / rd.LAST,
        {
            "model": {k: v.detach().cpu() for k, v in run.model.state_dict().items()},
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "state": vars(run.state),
        },
    )
    rd.write_csv(run.out / rd.HISTORY, pd.DataFrame(run.state.history))
    run.saved_epoch = run.state.epoch


def finish(run: Run, started: float) -> None:
    """Score val and test with the best checkpoint; write predictions, features and metrics.json (last)."""
    fabric, cfg = run.fabric, run.cfg
    run.model.load_state_dict(rd.load_torch(run.out / rd.BEST)["model"])
    val, _ = evaluate_split(fabric, run.fmodel, run.val_set, run.aug, cfg.eval_batch_size)
    test, outputs = evaluate_split(
        fabric, run.fmodel, run.test_set, run.aug, cfg.eval_batch_size, collect=True
    )
    if not fabric.is_global_zero:
        return
    write_predictions(run.out, "test", run.test_set, outputs)
    sizes = {"train": len(run.train_set), "val": len(run.val_set), "test": len(run.test_set)}
    rd.write_json(
        run.out / rd.METRICS,
        {
            "val": val,
            "test": test,
            "best_epoch": run.state.best_epoch,
            "epochs_run": run.state.epoch,
            "select_metric": cfg.select_metric,
            "dataset": {
                "name": run.train_set.name,
                "source": run.splits.source,
                "synthetic": run.splits.synthetic,
                "class_names": run.train_set.class_names,
                "train_counts": run.train_set.class_counts.tolist(),
                "n": sizes,
            },
            "config": {"loss": cfg.loss, "sampler": cfg.sampler, "seed": cfg.seed},
            "timing": {
                "wall_seconds": time.perf_counter() - started,
                "device": str(fabric.device),
                "world_size": fabric.world_size,
                "versions": versions(),
            },
        },
    )


def _train(fabric: Fabric, cfg: TrainConfig, *, resume: bool) -> Path:
    started = time.perf_counter()
    run = build_run(fabric, cfg, resume=resume)
    state = run.state
    step_fn = torch.compile(run.fmodel) if cfg.compile else run.fmodel
    if fabric.is_global_zero:
        rd.write_yaml(run.out / rd.CONFIG, cfg.to_dict())
    bar = tqdm(
        range(state.epoch, cfg.epochs),
        initial=state.epoch,
        total=cfg.epochs,
        desc=run.out.name,
        disable=cfg.quiet or not fabric.is_global_zero,
        leave=False,
    )
    for epoch in bar:
        t = time.perf_counter()
        train_loss, steps = train_epoch(run, epoch, step_fn)
        train_seconds = time.perf_counter() - t
        if not math.isfinite(train_loss):
            bar.close()
            save_checkpoints(run, last=False)  # the best weights so far are good; the current ones are not
            raise NonFiniteLossError(
                f"non-finite training loss ({train_loss}) in epoch {epoch + 1}; stopped. The last good checkpoint "
                f"(epoch {run.saved_epoch}) is in {run.out}"
            )
        val, _ = evaluate_split(fabric, run.fmodel, run.val_set, run.aug, cfg.eval_batch_size)
        score = _score(val, cfg.select_metric)
        row = {"epoch": epoch + 1, "train_loss": train_loss, "lr": run.optimizer.param_groups[0]["lr"]}
        row.update({f"val_{k}": v for k, v in val.items() if isinstance(v, float)})
        row.update(
            train_seconds=train_seconds,
            train_samples=steps * cfg.batch_size,
            epoch_seconds=time.perf_counter() - t,
        )
        state.history.append(row)
        state.epoch = epoch + 1
        if score > state.best_score:
            state.best_score, state.best_epoch, state.stale = score, epoch + 1, 0
            remember_best(run, val)
        else:
            state.stale += 1
        stop = bool(cfg.early_stopping) and state.stale >= cfg.early_stopping
        if stop or state.epoch % cfg.checkpoint_every == 0 or state.epoch == cfg.epochs:
            save_checkpoints(run)
        bar.set_postfix(loss=f"{train_loss:.4f}", **{cfg.select_metric[:8]: f"{score:.4f}"})
        if stop:
            break
    bar.close()
    fabric.barrier()
    finish(run, started)
    fabric.barrier()
    return run.out
