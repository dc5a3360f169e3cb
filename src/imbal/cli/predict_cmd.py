"""``imbal predict RUN_DIR INPUT... --out predictions.csv``."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """\
Score new, unlabelled images with a finished run's best checkpoint and write one CSV row per input:
`input` (the file, `file.npz[i]` or `cases.csv line n`), `prob_<class>` for every class, and
`prediction` (the most probable class).

INPUT is any mix of image files (.png .jpg .jpeg .tif .tiff .bmp; converted to the run's gray or RGB
and resized to its size, as the training folder loader does), folders of image or NIfTI files (not
recursive; every other entry, subfolders and broken links included, is listed as skipped), NIfTI volumes (.nii, .nii.gz; one channel each), a
CSV of cases with one column per sequence (like the training CSV; paths relative to the CSV), or an
npz with an `images` array (labels ignored; used as they are, never resized). Preprocessing is the
run's (intensity scaling, centre crop when it trained with crops; no augmentation), so the same images
give the same probabilities as `imbal evaluate`. Inputs are decoded and scored in batches, so a folder
larger than memory works (an npz is read whole). An input of another dimensionality, channel count or
shape, or an unreadable file, stops with one line naming it (exit 2) and writes nothing.

With --config SAMPLER/LOSS, RUN_DIR is a cross-validated study folder and the probabilities are the
mean of that configuration's fold models' probabilities (every finished fold of every repeat: the
ensemble nnU-Net ships); `prediction` is its most probable class. --posthoc needs a single run.

--posthoc applies the two post-hoc options the run fit on its validation split (posthoc.json):
the probabilities become softmax(logits / T) with the fitted temperature T (calibration; the most
probable class does not change), and a column `prediction_posthoc` holds
argmax(logits - tau * log(training prior)) with the fitted logit-adjustment tau (the decision rule
for balanced accuracy, or the run's selection metric).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="probabilities and predicted classes of new images",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        help="a finished run folder (best.ckpt, metrics.json), or with --config a cross-validated study folder",
    )
    p.add_argument("inputs", metavar="INPUT", nargs="+", help="image / NIfTI / npz / CSV files or folders")
    p.add_argument(
        "--out",
        default="predictions.csv",
        help="the CSV to write (default predictions.csv; - for standard output). Never an input, a file "
        "inside a run folder, a folder or a device; a link is followed",
    )
    p.add_argument(
        "--posthoc",
        action="store_true",
        help="temperature-scaled probabilities and a logit-adjusted prediction_posthoc column (see above)",
    )
    p.add_argument(
        "--accelerator",
        "--device",
        dest="accelerator",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="as `imbal train --accelerator` (auto: cuda when available)",
    )
    p.add_argument("--batch-size", type=int, help="inputs per batch (default: the run's eval_batch_size)")
    p.add_argument(
        "--config",
        metavar="SAMPLER/LOSS",
        help="RUN_DIR is a cross-validated study: average the probabilities of this configuration's fold models",
    )
    p.add_argument(
        "--sequence-columns",
        help="comma-separated CSV columns naming each case's volumes (default: the run's own)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from imbal.engine.predict import predict_run

    columns = [c.strip() for c in args.sequence_columns.split(",")] if args.sequence_columns else None
    result = predict_run(
        args.run_dir,
        args.inputs,
        args.out,
        posthoc=args.posthoc,
        accelerator=args.accelerator,
        batch_size=args.batch_size,
        sequence_columns=columns,
        config=args.config,
    )
    # with --out - the CSV is standard output: what is said about it goes to standard error
    say = sys.stderr if result["out"] is None else sys.stdout
    if result["skipped"]:
        n = len(result["skipped"])
        print(f"skipped {n} {'entry' if n == 1 else 'entries'} of the input folders:", file=say)
        for entry in result["skipped"]:
            print(f"  {entry.path.name}: {entry.reason}", file=say)
    line = f"{result['rows']} input(s) -> {result['out'] or 'standard output'}"
    if len(result["models"]) > 1:
        line += f" (probabilities: the mean of {len(result['models'])} fold models of {args.config})"
    if result["posthoc"]:
        r = result["posthoc"]
        source = "fit now from outputs_val.npz" if result["refit"] else "from posthoc.json"
        line += f" (post hoc {source}: temperature {r['temperature']:.3f}, tau {r['tau']:.1f} for {r['tau_metric']})"
    print(line, file=say)
    return 0
