"""CUDA correctness check: CPU float32 vs CUDA float32 vs CUDA bf16, and device metrics vs scikit-learn.

1. One configuration (ResNet-18, ce+mcc, oversample) from identical weights and identical batches:
   the first steps' losses on CPU (float32), CUDA (float32) and CUDA (bf16 autocast) must agree
   within tolerance, and so must the weights after those steps.
2. imbal's on-device metrics (torchmetrics confusion matrix + AUROC) on the trained CUDA model equal
   scikit-learn's on the same predictions, copied to the host.
3. `imbal train` on CUDA (fast path, bf16-mixed) and on CPU (float32) for the same seed and a few
   epochs reach validation balanced accuracies within a stated tolerance.
Prints PASS/FAIL lines and exits non-zero on any failure. Usage: python bench/gpu_check.py [--steps 20]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score, f1_score, matthews_corrcoef, roc_auc_score

from imbal.data import load_dataset
from imbal.engine import run_dir as rd
from imbal.engine.config import load_config
from imbal.engine.trainer import train
from imbal.evaluator import Evaluator
from imbal.losses import LossSettings, build_loss
from imbal.models import build_model
from imbal.samplers import build_sampler

FAILED: list[str] = []


def check(name: str, ok: bool, detail: str) -> None:
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
    if not ok:
        FAILED.append(name)


def dataset():
    try:
        return load_dataset("retinamnist"), "retinamnist"
    except (FileNotFoundError, ValueError):
        return load_dataset(
            {"kind": "synthetic", "spatial_dims": 2, "n": 1500, "size": 28, "channels": 3}
        ), "synthetic"


def steps(model, data, device, n_steps, bf16):
    model = copy.deepcopy(model).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = build_loss("ce+mcc", LossSettings(validate=False))
    sampler = build_sampler("oversample", data.labels, 50, seed=0)
    images, labels = data.images.to(device), data.labels.to(device)
    losses = []
    for idx in sampler.epoch_batches()[:n_steps].to(device):
        x = images[idx].float() / 255
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = loss_fn(logits, labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    return torch.stack(losses).cpu(), model.cpu()


def host_syncs_in_one_epoch(name: str) -> list[str]:
    """Run imbal's train_epoch under CUDA sync-debug mode and return the warnings it raised."""
    import warnings

    from imbal.engine.build import make_fabric
    from imbal.engine.trainer import build_run, train_epoch

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(
            None,
            dict(
                dataset=name if name != "synthetic" else "synthetic",
                widen_factor=0.25,
                epochs=2,
                loss="ce+mcc",
                sampler="oversample",
                quiet=True,
                out=tmp,
            ),
        )
        fabric = make_fabric(cfg)
        run = build_run(fabric, cfg, resume=False)
        train_epoch(run, 0, run.fmodel)  # warm-up: cuDNN autotuning and allocator growth
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                train_epoch(run, 1, run.fmodel)
            finally:
                torch.cuda.set_sync_debug_mode("default")
    return [str(w.message).splitlines()[0] for w in caught if "synchroniz" in str(w.message).lower()]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument(
        "--device", default="cuda", help="'cpu' runs the script's plumbing on the CPU twice (smoke test)"
    )
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 2
    cuda = torch.device(args.device)
    print(
        f"device: {torch.cuda.get_device_name() if cuda.type == 'cuda' else 'cpu (smoke test)'} torch {torch.__version__}"
    )
    splits, name = dataset()
    torch.manual_seed(0)
    model = build_model("resnet18", 2, splits.train.in_channels, splits.train.num_classes)
    # TF32 would make "float32 on CUDA" a 10-bit-mantissa product; switch it off for the fp32 comparison
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cpu_loss, cpu_model = steps(model, splits.train, torch.device("cpu"), args.steps, False)
    f32_loss, f32_model = steps(model, splits.train, cuda, args.steps, False)
    bf_loss, _ = steps(model, splits.train, cuda, args.steps, True)
    rel = lambda a, b: float(((a - b).abs() / b.abs().clamp_min(1e-6)).max())  # noqa: E731
    check(
        "first step CPU fp32 vs CUDA fp32",
        rel(cpu_loss[:1], f32_loss[:1]) < 1e-4,
        f"rel diff {rel(cpu_loss[:1], f32_loss[:1]):.2e}",
    )
    check(
        f"{args.steps} steps CPU fp32 vs CUDA fp32",
        rel(cpu_loss, f32_loss) < 2e-2,
        f"max rel diff {rel(cpu_loss, f32_loss):.2e}",
    )
    check(
        "first step CUDA fp32 vs CUDA bf16",
        rel(f32_loss[:1], bf_loss[:1]) < 2e-2,
        f"rel diff {rel(f32_loss[:1], bf_loss[:1]):.2e}",
    )
    check(
        f"{args.steps} steps CUDA fp32 vs CUDA bf16",
        rel(f32_loss, bf_loss) < 1e-1,
        f"max rel diff {rel(f32_loss, bf_loss):.2e}",
    )
    w_diff = max(
        float((a - b).detach().abs().max()) for a, b in zip(cpu_model.parameters(), f32_model.parameters())
    )
    check("weights after the steps, CPU vs CUDA fp32", w_diff < 5e-3, f"max abs diff {w_diff:.2e}")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True

    # device metrics vs scikit-learn on the same predictions
    model = f32_model.to(cuda).eval()
    test = splits.test.to(cuda)
    ev = Evaluator(test.num_classes, cuda)
    probs = []
    with torch.no_grad():
        for i in range(0, len(test), 100):
            x, y = test.batch(torch.arange(i, min(i + 100, len(test)), device=cuda))
            logits = model(x)
            ev.update(logits, y)
            probs.append(logits.float().softmax(-1).cpu())
    m = ev.compute()
    p = torch.cat(probs).numpy()
    y = splits.test.labels.numpy()
    pred = p.argmax(1)
    k = p.shape[1]
    ref = {
        "balanced_accuracy": balanced_accuracy_score(y, pred),
        "macro_f1": f1_score(y, pred, average="macro", labels=list(range(k)), zero_division=0),
        "mcc": matthews_corrcoef(y, pred),
        "auroc": roc_auc_score(y, p[:, 1]) if k == 2 else roc_auc_score(y, p, multi_class="ovr"),
    }
    for key, v in ref.items():
        check(f"device {key} vs sklearn", abs(m[key] - v) < 1e-4, f"{m[key]:.5f} vs {v:.5f}")

    # the claim "no host sync inside an epoch": count synchronising calls in one training epoch
    if cuda.type == "cuda":
        syncs = host_syncs_in_one_epoch(name)
        # one read per epoch is by design: the epoch's mean loss (all_reduce + float)
        check("host syncs in one training epoch", len(syncs) <= 1, f"{len(syncs)}: {syncs[:3]}")

    # the fast path (imbal train on CUDA, bf16-mixed) against the CPU float32 path, same seed
    with tempfile.TemporaryDirectory() as tmp:
        common = dict(
            dataset=name
            if name != "synthetic"
            else {"kind": "synthetic", "spatial_dims": 2, "n": 1500, "size": 28, "channels": 3},
            widen_factor=0.25,
            epochs=args.epochs,
            loss="ce+mcc",
            sampler="oversample",
            quiet=True,
        )
        fast = train(load_config(None, dict(common, out=f"{tmp}/fast", accelerator=cuda.type)))
        plain = train(load_config(None, dict(common, out=f"{tmp}/plain", accelerator="cpu")))
        mf = json.loads((fast / rd.METRICS_FILE).read_text())
        mp = json.loads((plain / rd.METRICS_FILE).read_text())
        d = abs(mf["val"]["balanced_accuracy"] - mp["val"]["balanced_accuracy"])
        check(
            f"{args.epochs}-epoch val balanced accuracy, CUDA bf16 fast path vs CPU fp32",
            d < 0.1,
            f"{mf['val']['balanced_accuracy']:.4f} vs {mp['val']['balanced_accuracy']:.4f} (|diff| {d:.4f} < 0.1)",
        )
    print(f"{len(FAILED)} check(s) failed" if FAILED else "all checks passed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    sys.exit(main())
