"""The training loop: Lightning Fabric for devices, precision and DDP; our own thin loop, no Trainer.

Data sets live on the training device for the whole run and batches are gathered by index
(:meth:`ImageDataset.batch`), augmentation runs batched on the device, and the loop never reads a
value back to the host inside an epoch: losses are summed on the device and read once per epoch.
"""

from __future__ import annotations

import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from lightning_fabric import Fabric
from tqdm.auto import tqdm

from imbal.data import Augmentation, ImageDataset, Splits, load_dataset, stratified_split
from imbal.engine import run_dir as rd
from imbal.engine.config import TrainConfig
from imbal.losses import build_loss, inverse_frequency_weights
from imbal.metrics import Evaluator
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


def shard(n: int, fabric: Fabric) -> torch.Tensor:
    return torch.arange(fabric.global_rank, n, fabric.world_size)


@torch.no_grad()
def evaluate_split(
    fabric: Fabric,
    model: torch.nn.Module,
    data: ImageDataset,
    aug: Augmentation,
    batch_size: int,
    *,
    collect: bool = False,
) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None]:
    """Metrics over a split sharded across ranks (synced); optionally gather per-sample outputs."""
    model.eval()
    evaluator = Evaluator(data.num_classes, fabric.device)
    index = shard(len(data), fabric)
    outputs: dict[str, list[torch.Tensor]] = {"index": [], "probs": [], "features": []}
    inner = getattr(model, "module", model)
    for start in range(0, len(index), batch_size):
        idx = index[start : start + batch_size]
        x, y = data.batch(idx)
        x = aug.eval(x)
        with fabric.autocast():
            feats = inner.features(x)
            logits = inner.head(feats)
        evaluator.update(logits, y)
        if collect:
            outputs["index"].append(idx.to(fabric.device))
            outputs["probs"].append(logits.float().softmax(-1))
            outputs["features"].append(feats.float())
    metrics = evaluator.compute()
    if not collect:
        return metrics, None
    local = {k: torch.cat(v) for k, v in outputs.items()}
    if fabric.world_size > 1:
        # pad to a common length, gather, then put samples back in their original order
        per_rank = math.ceil(len(data) / fabric.world_size)
        pad = per_rank - len(local["index"])
        local["index"] = torch.cat([local["index"], local["index"].new_full((pad,), -1)])
        for k in ("probs", "features"):
            local[k] = torch.cat([local[k], local[k].new_zeros((pad, local[k].shape[1]))])
        gathered = {k: fabric.all_gather(v).flatten(0, 1) for k, v in local.items()}
        keep = gathered["index"] >= 0
        local = {k: v[keep] for k, v in gathered.items()}
    order = torch.argsort(local["index"])
    return metrics, {k: v[order].cpu() for k, v in local.items()}


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    best_epoch: int = -1
    best_score: float = -math.inf
    stale: int = 0
    history: list | None = None


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


def _train(fabric: Fabric, cfg: TrainConfig, *, resume: bool) -> Path:
    out = Path(cfg.out)
    t0 = time.perf_counter()
    fabric.seed_everything(cfg.seed, verbose=False)
    splits = prepare_data(cfg)
    train_set = splits.train.to(fabric.device)
    val_set, test_set = splits.val.to(fabric.device), splits.test.to(fabric.device)
    on_cuda = fabric.device.type == "cuda"
    if on_cuda:
        torch.backends.cudnn.benchmark = True

    model = model_for(cfg, train_set)
    if on_cuda and fabric.world_size > 1:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    memory_format = torch.channels_last if train_set.spatial_dims == 2 else torch.channels_last_3d
    if on_cuda:
        model = model.to(memory_format=memory_format)
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
    # labels were range-checked when the data set was built; the loss is checked once per epoch below
    loss_fn = build_loss(
        cfg.loss, class_counts=counts, class_weights=weights, focal_gamma=cfg.focal_gamma, validate=False
    )
    loss_fn = loss_fn.to(fabric.device)
    sampler = build_sampler(
        cfg.sampler,
        train_set.labels.cpu(),
        cfg.batch_size,
        seed=cfg.seed,
        num_replicas=fabric.world_size,
        rank=fabric.global_rank,
    )
    aug = augmentation_for(cfg, train_set)

    state = TrainState(history=[])
    if resume and (out / rd.LAST).is_file():
        ckpt = rd.load_torch(out / rd.LAST)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        state = TrainState(**ckpt["state"])
    model_config = dict(model.config) if hasattr(model, "config") else None
    fmodel, optimizer = fabric.setup(model, optimizer)
    step = torch.compile(fmodel) if cfg.compile else fmodel

    if fabric.is_global_zero:
        rd.write_yaml(out / rd.CONFIG, cfg.to_dict())
    bar = tqdm(
        range(state.epoch, cfg.epochs),
        initial=state.epoch,
        total=cfg.epochs,
        desc=out.name,
        disable=cfg.quiet or not fabric.is_global_zero,
        leave=False,
    )
    for epoch in bar:
        fmodel.train()
        sampler.set_epoch(epoch)
        gen = torch.Generator(device=fabric.device).manual_seed(
            cfg.seed * 1_000_003 + epoch * 101 + fabric.global_rank
        )
        loss_sum = torch.zeros((), device=fabric.device)
        steps = 0
        te = time.perf_counter()
        for idx in sampler.epoch_batches().to(fabric.device, non_blocking=True):
            x, y = train_set.batch(idx)
            x = aug(x, gen)
            if on_cuda:
                x = x.contiguous(memory_format=memory_format)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(step(x), y)
            fabric.backward(loss)
            optimizer.step()
            loss_sum += loss.detach()
            steps += 1
        scheduler.step()
        train_loss = float(fabric.all_reduce(loss_sum / max(steps, 1), reduce_op="mean"))
        train_seconds = time.perf_counter() - te
        if not math.isfinite(train_loss):
            bar.close()
            raise NonFiniteLossError(
                f"non-finite training loss ({train_loss}) in epoch {epoch + 1}; stopped. The last good checkpoint "
                f"(epoch {state.epoch}) is in {out}"
            )
        val, _ = evaluate_split(fabric, fmodel, val_set, aug, cfg.eval_batch_size)
        score = _score(val, cfg.select_metric)
        row = {"epoch": epoch + 1, "train_loss": train_loss, "lr": optimizer.param_groups[0]["lr"]}
        row.update({f"val_{k}": v for k, v in val.items() if isinstance(v, float)})
        row["train_seconds"] = train_seconds
        row["train_samples"] = steps * cfg.batch_size
        row["epoch_seconds"] = time.perf_counter() - te
        state.history.append(row)
        state.epoch = epoch + 1
        improved = score > state.best_score
        if improved:
            state.best_score, state.best_epoch, state.stale = score, epoch + 1, 0
        else:
            state.stale += 1
        if fabric.is_global_zero:
            weights_now = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            if improved:
                rd.save_torch(
                    out / rd.BEST,
                    {
                        "model": weights_now,
                        "model_config": model_config,
                        "config": cfg.to_dict(),
                        "epoch": epoch + 1,
                        "val": {k: v for k, v in val.items() if isinstance(v, float)},
                        "class_names": train_set.class_names,
                    },
                )
            rd.save_torch(
                out / rd.LAST,
                {
                    "model": weights_now,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "state": vars(state),
                },
            )
            rd.write_csv(out / rd.HISTORY, pd.DataFrame(state.history))
        bar.set_postfix(loss=f"{train_loss:.4f}", **{cfg.select_metric[:8]: f"{score:.4f}"})
        if cfg.early_stopping and state.stale >= cfg.early_stopping:
            break
    bar.close()
    fabric.barrier()

    best = rd.load_torch(out / rd.BEST)
    model.load_state_dict(best["model"])
    val, _ = evaluate_split(fabric, fmodel, val_set, aug, cfg.eval_batch_size)
    test, outputs = evaluate_split(fabric, fmodel, test_set, aug, cfg.eval_batch_size, collect=True)
    if fabric.is_global_zero:
        write_predictions(out, "test", test_set, outputs)
        rd.write_json(
            out / rd.METRICS,
            {
                "val": val,
                "test": test,
                "best_epoch": state.best_epoch,
                "epochs_run": state.epoch,
                "select_metric": cfg.select_metric,
                "dataset": {
                    "name": train_set.name,
                    "source": splits.source,
                    "synthetic": splits.synthetic,
                    "class_names": train_set.class_names,
                    "train_counts": counts.tolist(),
                    "n": {"train": len(train_set), "val": len(val_set), "test": len(test_set)},
                },
                "config": {"loss": cfg.loss, "sampler": cfg.sampler, "seed": cfg.seed},
                "timing": {
                    "wall_seconds": time.perf_counter() - t0,
                    "device": str(fabric.device),
                    "world_size": fabric.world_size,
                    "versions": versions(),
                },
            },
        )
    fabric.barrier()
    return out


def write_predictions(out: Path, split: str, data: ImageDataset, outputs: dict[str, torch.Tensor]) -> None:
    probs = outputs["probs"].numpy()
    frame = pd.DataFrame({"index": outputs["index"].numpy(), "label": data.labels.cpu().numpy()})
    for k in range(probs.shape[1]):
        frame[f"prob_{k}"] = probs[:, k]
    frame["prediction"] = probs.argmax(1)
    rd.write_csv(out / f"predictions_{split}.csv", frame)
    rd.save_npz(
        out / f"features_{split}.npz", features=outputs["features"].numpy(), labels=data.labels.cpu().numpy()
    )
