"""The training loop: Lightning Fabric for devices, precision and DDP; our own thin loop, no Trainer.

Data sets live on the training device when they fit (else batches stream from disk), batches are
gathered by index, augmentation runs batched on the device, and the loop never reads a value back
to the host inside an epoch: losses are summed on the device and read once per epoch.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from lightning_fabric import Fabric
from tqdm.auto import tqdm

from imbal.data import Augmentation, Splits
from imbal.data.stream import AnyDataset, iterate_batches, place_splits
from imbal.engine import run_dir as rd
from imbal.engine.build import (
    augmentation_for,
    check_validation_split,
    data_checksum,
    fingerprint,
    loss_for,
    make_fabric,
    model_for,
    optimizer_for,
    prepare_data,
    sampler_for,
)
from imbal.engine.config import NEUTRAL_KEYS, TrainConfig
from imbal.engine.run_folder import check_folder, take_folder
from imbal.engine.scoring import evaluate_split, posthoc_record, write_outputs
from imbal.errors import ConfigError, NonFiniteLossError, RunFolderError, UserError
from imbal.models import Classifier
from imbal.processes import die_with_parent
from imbal.samplers import BatchSampler, stream_seed

# set by a process that launches DDP ranks itself (Fabric's subprocess launcher), read by the ranks
LAUNCHER_PID = "IMBAL_DDP_LAUNCHER_PID"


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    best_epoch: int = -1
    best_score: float = -math.inf
    stale: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class Run:
    """Everything one training run holds while it trains."""

    cfg: TrainConfig
    fabric: Fabric
    splits: Splits
    train_set: AnyDataset
    val_set: AnyDataset
    test_set: AnyDataset
    model: Classifier  # the bare module: its state_dict is what checkpoints hold
    fmodel: torch.nn.Module  # Fabric's wrapper (DDP, precision) used for training
    optimizer: torch.optim.Optimizer  # Fabric's wrapper subclasses the optimizer's class
    scheduler: torch.optim.lr_scheduler.LRScheduler
    loss_fn: torch.nn.Module
    sampler: BatchSampler
    aug: Augmentation
    memory_format: torch.memory_format
    minority: int  # the rarest training class (minority_f1, binary F1's default positive class)
    data_checksum: str  # the identity of the data (see imbal.engine.build.data_checksum)
    state: TrainState
    pending_best: dict[str, Any] | None = None  # best weights not yet on disk (see save_checkpoints)
    saved_epoch: int = 0  # the epoch last.ckpt holds

    @property
    def out(self) -> Path:
        return Path(self.cfg.out)


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


def train(cfg: TrainConfig, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Train one configuration end to end and return its run folder (see README for its files).

    ``resume`` continues the run in ``cfg.out`` and refuses settings that differ from the stored
    ones; a fresh run refuses a non-empty ``cfg.out`` unless ``overwrite`` (which clears it first).
    The thread count is resolved here and recorded, so that a resume computes with the same one.
    """
    previous_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    else:
        cfg = dataclasses.replace(cfg, threads=previous_threads)
    fabric: Fabric | None = None
    try:
        fabric = make_fabric(cfg)
        launch(fabric)
        return _train(fabric, cfg, resume=resume, overwrite=overwrite)
    except (UserError, KeyboardInterrupt):
        raise
    except Exception:
        out = Path(cfg.out)
        if (fabric is None or fabric.is_global_zero) and (out / rd.CONFIG).is_file():
            rd.atomic_write_text(out / rd.ERROR, traceback.format_exc())
        raise
    finally:
        for logger in fabric.loggers if fabric is not None else []:
            logger.finalize("success")  # flush and close the event files, whatever happened
        torch.set_num_threads(previous_threads)  # a library call leaves the process as it found it


def launch(fabric: Fabric) -> None:
    """``fabric.launch()``; ranks this process starts die with it (a killed parent leaves no orphan).

    Fabric's launcher starts ranks 1.. as copies of this command with this environment, so the
    ranks learn our PID from it and ask the kernel for SIGKILL when we die (a rank waiting in a
    collective ignores nothing less). Ranks of torchrun or SLURM are their launcher's business.
    """
    if os.environ.get(LAUNCHER_PID) and os.environ.get("LOCAL_RANK", "0") != "0":
        die_with_parent(int(os.environ[LAUNCHER_PID]), signal.SIGKILL)
        fabric.launch()
        return
    launches = fabric.world_size > 1 and "LOCAL_RANK" not in os.environ
    if launches:
        os.environ[LAUNCHER_PID] = str(os.getpid())
    try:
        fabric.launch()
    finally:
        if launches:
            os.environ.pop(LAUNCHER_PID, None)  # the ranks have their copy; leave the process as found


def resume_state(cfg: TrainConfig, run_parts: dict[str, Any], checksum: str) -> TrainState:
    """Load ``last.ckpt`` into the model, optimiser, scheduler and loss; one line if it is another run's."""
    last = Path(cfg.out) / rd.LAST
    ckpt = rd.load_torch(last)
    stored = ckpt.get("data_checksum")
    if stored is not None and stored != checksum:
        raise RunFolderError(
            f"{last} was trained on data with checksum {stored}; {cfg.dataset} now holds data with checksum "
            f"{checksum} (rebuilt or changed since). Resuming would mix two data sets: restore the data or "
            "train into another --out"
        )
    try:
        for key in ("model", "optimizer", "scheduler", "loss"):
            run_parts[key].load_state_dict(ckpt[key])
    except (RuntimeError, KeyError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunFolderError(
            f"{last} does not fit this run's model and optimiser (arch {cfg.arch}, widen_factor {cfg.widen_factor}, "
            f"norm {cfg.norm}; {first}): it belongs to another run. Train into another --out"
        ) from None
    return TrainState(**ckpt["state"])


def build_run(fabric: Fabric, cfg: TrainConfig, *, resume: bool) -> Run:
    fabric.seed_everything(cfg.seed, verbose=False)
    splits = prepare_data(cfg)
    check_validation_split(splits)
    checksum = data_checksum(splits)
    device = fabric.device
    on_cuda = device.type == "cuda"
    if on_cuda:
        torch.backends.cudnn.benchmark = True
    # before the model is on the device: the default budget is half of the memory left free
    placed = place_splits(splits, device, cfg.data_memory_mb << 20 if cfg.data_memory_mb else None)
    train_set = placed.train
    if cfg.select_metric == "qwk" and not splits.ordinal:
        raise ConfigError(
            f"select_metric qwk needs ordered classes; {train_set.name} is not marked ordinal "
            "(add 'ordinal: true' to its dataset mapping if its classes are grades)"
        )
    model = model_for(cfg, train_set)
    if on_cuda and fabric.world_size > 1:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    memory_format = torch.channels_last if train_set.spatial_dims == 2 else torch.channels_last_3d
    # on the device before the optimiser exists, so that fused Adam sees CUDA parameters
    model = model.to(device, memory_format=memory_format) if on_cuda else model  # type: ignore[call-overload]
    optimizer, scheduler = optimizer_for(cfg, model, on_cuda)
    loss_fn = loss_for(cfg, train_set).to(device)
    state = TrainState()
    if resume and (Path(cfg.out) / rd.LAST).is_file():
        parts = {"model": model, "optimizer": optimizer, "scheduler": scheduler, "loss": loss_fn}
        state = resume_state(cfg, parts, checksum)
    sampler = sampler_for(cfg, train_set, fabric)
    fmodel, optimizer = fabric.setup(model, optimizer)
    return Run(
        cfg=cfg,
        fabric=fabric,
        splits=splits,
        train_set=train_set,
        val_set=placed.val,
        test_set=placed.test,
        model=model,
        fmodel=fmodel,
        optimizer=optimizer,
        scheduler=scheduler,
        loss_fn=loss_fn,
        sampler=sampler,
        aug=augmentation_for(cfg, train_set),
        memory_format=memory_format,
        minority=train_set.minority_class,
        data_checksum=checksum,
        state=state,
    )


@dataclass(frozen=True)
class EpochResult:
    loss: float  # mean training loss over ranks
    samples: int  # samples trained on, all ranks
    lr: float  # the learning rate the epoch trained at (the scheduler steps after it)


def train_epoch(run: Run, epoch: int, step_fn: Callable[[torch.Tensor], torch.Tensor]) -> EpochResult:
    """One pass over the sampler's batches; the mean loss over ranks and the samples of all ranks (read once)."""
    fabric, cfg = run.fabric, run.cfg
    lr = float(run.optimizer.param_groups[0]["lr"])
    run.fmodel.train()
    run.loss_fn.train()  # metric losses with a soft-count memory update it in training mode only
    run.sampler.set_epoch(epoch)
    # augmentation draws depend on (seed, epoch, rank) only, so a resumed run replays them exactly
    gen = torch.Generator(device=fabric.device).manual_seed(stream_seed(cfg.seed, epoch, fabric.global_rank))
    loss_sum = torch.zeros((), device=fabric.device)
    steps = samples = 0
    on_cuda = fabric.device.type == "cuda"
    # in memory: a gather on the device; streamed: batches read ahead from disk in a background thread
    for x, y in iterate_batches(run.train_set, run.sampler.epoch_batches(), fabric.device):
        x = run.aug(x, gen)
        if on_cuda:
            x = x.contiguous(memory_format=run.memory_format)
        run.optimizer.zero_grad(set_to_none=True)
        loss = run.loss_fn(step_fn(x), y)
        fabric.backward(loss)
        run.optimizer.step()
        loss_sum += loss.detach()
        steps += 1
        samples += len(y)  # a shape, known on the host: no sync
    run.scheduler.step()
    # one collective for both: every rank runs the same number of steps, so the mean of the per-rank
    # means is the mean loss; the samples are what was trained on (an undersampled epoch's pool can
    # be smaller than one batch)
    local = torch.stack(
        [
            (loss_sum / max(steps, 1)).double(),
            torch.tensor(float(samples), dtype=torch.float64, device=fabric.device),
        ]
    )
    total = torch.as_tensor(fabric.all_reduce(local, reduce_op="sum")).cpu()
    return EpochResult(float(total[0]) / fabric.world_size, int(total[1]), lr)


def remember_best(run: Run, val: dict[str, Any]) -> None:
    """Keep a device copy of the new best weights; they reach disk with the next checkpoint write."""
    if run.fabric.is_global_zero:
        run.pending_best = {
            "model": {k: v.detach().clone() for k, v in run.model.state_dict().items()},
            "epoch": run.state.epoch,
            "val": {k: v for k, v in val.items() if isinstance(v, float)},
        }


def save_checkpoints(run: Run, *, last: bool = True) -> None:
    """Write the pending best.ckpt and (``last``) last.ckpt, on rank 0.

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
                "data_checksum": run.data_checksum,
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
            "loss": {k: v.cpu() for k, v in run.loss_fn.state_dict().items()},
            "state": vars(run.state),
            "data_checksum": run.data_checksum,
        },
    )
    run.saved_epoch = run.state.epoch


def dataset_summary(run: Run, test_fingerprint: str) -> dict[str, Any]:
    """What a report needs to know about the data: identity, names, counts, sizes."""
    return {
        "name": run.train_set.name,
        "source": run.splits.source,
        "synthetic": run.splits.synthetic,
        "ordinal": run.splits.ordinal,
        "class_names": run.train_set.class_names,
        "minority_class": run.minority,
        "train_counts": run.train_set.class_counts.tolist(),
        "test_counts": run.test_set.class_counts.tolist(),
        "n": {"train": len(run.train_set), "val": len(run.val_set), "test": len(run.test_set)},
        "spatial_size": list(run.train_set.spatial_size),
        "in_channels": run.train_set.in_channels,
        "test_fingerprint": test_fingerprint,
        "data_checksum": run.data_checksum,
        # patient (group) ids were read: the splits and any cross-validation folds kept each group whole
        "grouped": run.train_set.groups is not None,
    }


def evaluate(
    run: Run, data: AnyDataset, collect: bool = False
) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None]:
    """A split scored with the run's model, evaluation batch size, rarest class and ordinal flag."""
    kw: dict[str, Any] = {"minority": run.minority, "collect": collect, "ordinal": run.splits.ordinal}
    return evaluate_split(run.fabric, run.fmodel, data, run.aug, run.cfg.eval_batch_size, **kw)


def finish(run: Run, started: float) -> None:
    """Score val and test with the best checkpoint; write outputs, posthoc.json and metrics.json (last)."""
    fabric, cfg = run.fabric, run.cfg
    run.model.load_state_dict(rd.load_torch(run.out / rd.BEST)["model"])
    results = {}
    for split, data in (("val", run.val_set), ("test", run.test_set)):
        metrics, outputs = evaluate(run, data, collect=True)
        results[split] = metrics
        if fabric.is_global_zero and outputs is not None:
            write_outputs(run.out, split, data, outputs)
            if split == "val":
                record = posthoc_record(
                    outputs["logits"], data.labels, run.train_set.class_counts, cfg.select_metric
                )
                rd.write_json(run.out / rd.POSTHOC, record)
    if not fabric.is_global_zero:
        return
    rd.write_json(
        run.out / rd.METRICS_FILE,
        {
            **results,
            "best_epoch": run.state.best_epoch,
            "epochs_run": run.state.epoch,
            "select_metric": cfg.select_metric,
            "dataset": dataset_summary(run, fingerprint(run.splits.test)),
            # what the numbers depend on; where they were written is not part of it
            "config": {k: v for k, v in cfg.to_dict().items() if k not in NEUTRAL_KEYS},
            "timing": {
                "wall_seconds": time.perf_counter() - started,
                "device": str(fabric.device),
                "world_size": fabric.world_size,
                "versions": versions(),
            },
        },
    )
    if not cfg.keep_last:
        # best.ckpt holds what a finished run needs; last.ckpt (optimiser state) only served resume
        (run.out / rd.LAST).unlink(missing_ok=True)


def validate_and_record(run: Run, epoch: int, result: EpochResult, t0: float, t1: float) -> dict[str, Any]:
    """After an epoch's training: score validation, keep the best epoch, record the epoch; its history row."""
    val, _ = evaluate(run, run.val_set)
    row = {"epoch": epoch + 1, "train_loss": result.loss, "lr": result.lr}
    row.update({f"val_{k}": v for k, v in val.items() if isinstance(v, float)})
    row.update(train_seconds=t1 - t0, train_samples=result.samples, epoch_seconds=time.perf_counter() - t0)
    curves = {"train/loss": result.loss, "train/lr": result.lr}
    run.fabric.log_dict(
        curves | {f"val/{k}": v for k, v in val.items() if isinstance(v, float)}, step=epoch + 1
    )
    run.state.history.append(row)
    run.state.epoch = epoch + 1
    score = track_best(run, epoch, val)
    if run.fabric.is_global_zero:
        write_epoch(run, row, score)
    return row


def track_best(run: Run, epoch: int, val: dict[str, Any]) -> float:
    """The epoch's selection score; a better one than so far becomes the best epoch (its weights kept)."""
    state = run.state
    score = _score(val, run.cfg.select_metric)
    if score > state.best_score:
        state.best_score, state.best_epoch, state.stale = score, epoch + 1, 0
        remember_best(run, val)
    else:
        state.stale += 1
    return score


def write_epoch(run: Run, row: dict[str, Any], score: float) -> None:
    """The history file (rewritten) and a line of the log (appended), on rank 0."""
    cfg, state = run.cfg, run.state
    rd.write_csv(run.out / rd.HISTORY, pd.DataFrame(state.history))
    rd.append_line(
        run.out / rd.LOG,
        f"epoch {row['epoch']}/{cfg.epochs} loss {row['train_loss']:.4f} val {cfg.select_metric} {score:.4f} "
        f"(best {state.best_score:.4f} at epoch {state.best_epoch}) {row['epoch_seconds']:.1f}s",
    )


def _train(fabric: Fabric, cfg: TrainConfig, *, resume: bool, overwrite: bool) -> Path:
    started = time.perf_counter()
    out = Path(cfg.out)
    check_folder(cfg, resume=resume, overwrite=overwrite)
    if resume and rd.is_finished(out):
        return out  # a finished run has nothing left to do (and may no longer hold last.ckpt)
    run = build_run(fabric, cfg, resume=resume)
    take_folder(fabric, cfg, resume=resume, overwrite=overwrite)
    state = run.state
    step_fn = torch.compile(run.fmodel) if cfg.compile else run.fmodel
    if not hasattr(tqdm, "_lock"):
        # tqdm's default lock holds a multiprocessing semaphore, which a killed run leaks (the resource
        # tracker then warns); one process draws one bar, so a thread lock is all it needs
        tqdm.set_lock(threading.RLock())
    bar = tqdm(
        range(state.epoch, cfg.epochs),
        initial=state.epoch,
        total=cfg.epochs,
        desc=out.name,
        disable=cfg.quiet or not fabric.is_global_zero,
        leave=False,
    )
    for epoch in bar:
        t0 = time.perf_counter()
        result = train_epoch(run, epoch, step_fn)
        train_loss = result.loss
        if not math.isfinite(train_loss):
            bar.close()
            save_checkpoints(run, last=False)  # the best weights so far are good; the current ones are not
            raise NonFiniteLossError(
                f"non-finite training loss ({train_loss}) in epoch {epoch + 1}; stopped. The last good checkpoint "
                f"(epoch {run.saved_epoch}) is in {out}"
            )
        validate_and_record(run, epoch, result, t0, time.perf_counter())
        stop = bool(cfg.early_stopping) and state.stale >= cfg.early_stopping
        if stop or state.epoch % cfg.checkpoint_every == 0 or state.epoch == cfg.epochs:
            save_checkpoints(run)
        bar.set_postfix(loss=f"{train_loss:.4f}", **{cfg.select_metric[:8]: f"{state.best_score:.4f}"})
        if stop:
            break
    bar.close()
    fabric.barrier()
    finish(run, started)
    fabric.barrier()
    return out
