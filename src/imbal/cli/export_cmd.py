"""``imbal export RUN_DIR --format onnx|torchscript --out DIR`` and ``imbal card RUN_DIR``."""

from __future__ import annotations

import argparse
import sys

from imbal.naming import EXPORT_FORMATS

EXPORT_DESCRIPTION = """\
Export a finished run's best model for pipelines that do not run imbal (ONNX Runtime, Triton, MONAI
Deploy, a C++ viewer): --out gets the model (model.onnx or model.pt, dynamic batch size),
preprocessing.json and MODEL_CARD.md.

The model takes float32 images (batch, channels, *size) in [0, 1] at the run's size (a training crop
is inside the model) and outputs `logits` and `probabilities` (plain softmax, what `imbal predict`
writes without --posthoc). preprocessing.json says how to get there from a PNG, a NIfTI volume or an
array (conversion, resizing, intensity scaling, channel order), names the classes, and gives the
run's temperature and logit-adjustment tau with their formulas: the caller applies them; the model
does not.

Before anything is written the exported file is run (ONNX Runtime on the CPU, or the loaded
TorchScript module) on the first --check-images test images of the run's data set (or on
--check-inputs) at batch size 1 and all at once; its probabilities must equal `imbal predict`'s
within 1e-5 (its logits within 1e-4 x max(1, |logit|)), else the export stops naming the largest
difference. --format onnx needs `pip install 'imbal[export]'` (onnx, onnxruntime).
"""

CARD_DESCRIPTION = """\
Write the model card of a finished run (Markdown): data set and checksum, class names and counts,
training configuration, the run's test metrics, calibration (ECE before and after the validation
temperature), the rarest class's F1 with its interval, the study's verdict for this configuration
when the run is a cell of a study folder, what the evidence does not cover, and the command that
reproduces it. Generated from the run folder; no machine paths.
"""


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="the model as ONNX or TorchScript, checked against predict, with a model card",
        description=EXPORT_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder (best.ckpt, metrics.json)")
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS, help="the model file's format")
    p.add_argument("--out", required=True, help="a new or empty folder (not inside a run folder)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export in --out")
    p.add_argument(
        "--check-images",
        type=int,
        default=8,
        help="test images of the run's data set for the parity check (default 8)",
    )
    p.add_argument(
        "--check-inputs",
        nargs="+",
        metavar="INPUT",
        help="check on these inputs instead (anything `imbal predict` reads): for a run whose data is not here",
    )
    p.set_defaults(func=run_export)

    c = sub.add_parser("card", help="the model card of a finished run", description=CARD_DESCRIPTION)
    c.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder (metrics.json)")
    c.add_argument(
        "--out",
        default="MODEL_CARD.md",
        help="the Markdown file to write (default MODEL_CARD.md; - for standard output); never inside a run folder",
    )
    c.set_defaults(func=run_card)


def run_export(args: argparse.Namespace) -> int:
    from imbal.export.bundle import export_run

    result = export_run(
        args.run_dir,
        args.format,
        args.out,
        overwrite=args.overwrite,
        check_inputs=args.check_inputs,
        check_count=args.check_images,
    )
    p = result["parity"]
    print(
        f"{args.run_dir} -> {result['out']}: {', '.join(result['files'])} (parity on {p.images} image(s), "
        f"largest probability difference {p.max_abs_difference:.1e})"
    )
    return 0


def run_card(args: argparse.Namespace) -> int:
    from imbal.engine.user_output import output_target, write_output
    from imbal.export.card import model_card

    target = output_target(args.out)
    write_output(target, model_card(args.run_dir))
    if target is not None:
        print(f"{args.run_dir} -> {target}", file=sys.stdout)
    return 0
