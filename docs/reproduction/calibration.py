"""ECE and Brier of a finished study's configurations before and after temperature scaling (see docs/reproduction.md).

    python docs/reproduction/calibration.py runs/reproduction [--configs uniform/ce oversample/ce ...]

Reads each run's stored validation and test logits (outputs_{val,test}.npz), fits the temperature
on validation (imbal.calibration.fit_temperature) and prints one Markdown row per configuration:
mean ± sd over seeds of the temperature and of the test ECE (15 equal-width bins) and Brier score,
plain and scaled. Reads only; never writes into the study folder.
"""

from __future__ import annotations

import argparse

from imbal.study.report.collect import collect_runs, loss_order, sampler_order
from imbal.study.report.sections.reliability import COLUMNS, calibration_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study", help="a study folder (its runs/ hold finished cells)")
    ap.add_argument("--configs", nargs="*", help="sampler/loss pairs to show (default: all)")
    args = ap.parse_args()
    runs = collect_runs(args.study)
    if args.configs:
        wanted = {tuple(c.split("/", 1)) for c in args.configs}
        runs = runs[[(s, l) in wanted for s, l in zip(runs.sampler, runs.loss)]]
    table = calibration_table(runs)
    print("| configuration | seeds | temperature | test ECE | ECE scaled | test Brier | Brier scaled |")
    print("|---|---|---|---|---|---|---|")
    for sampler in sampler_order(table.sampler):
        for loss in loss_order(table.loss):
            grp = table[(table.sampler == sampler) & (table.loss == loss)]
            if grp.empty:
                continue
            cells = [f"{grp[c].mean():.3f} ± {grp[c].std(ddof=1):.3f}" for c in COLUMNS]
            print(f"| {sampler} / {loss} | {len(grp)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
