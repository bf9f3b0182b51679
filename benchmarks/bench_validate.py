"""Benchmark: validating a paper-scale dataset with Great Expectations, verifier columns included.

Generates the dataset once (default: 119,345 train + 1,042 eval instructions with SFT rows, DPO
pairs and IOPO groups; reused from --data when it exists), then times `validate_dataset` over it
with every core, without Data Docs (the HTML is written on request by the CLI) and with them.
Prints rows per second and rule verifications per second; asserts nothing.

Usage: .venv/bin/python benchmarks/bench_validate.py [--n-train N] [--n-eval M] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from tracealign.synthesis import build_dataset
from tracealign.validation import validate_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=119_345)
    parser.add_argument("--n-eval", type=int, default=1_042)
    parser.add_argument("--n-eval-ood", type=int, default=0)
    parser.add_argument("--data", type=Path, help="dataset directory (generated if absent)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="bench-validate-")) / "data"
    if not (data / "manifest.json").is_file():
        started = time.perf_counter()
        build_dataset(
            data,
            seed=1,
            n_train=args.n_train,
            n_eval=args.n_eval,
            n_eval_ood=args.n_eval_ood,
            n_cgpo=60,
            workers=args.workers,
        )
        print(f"generated {data} in {time.perf_counter() - started:.1f}s")
    report_dir = data.parent / "bench.validation"
    timings = []
    report = None
    for _ in range(args.repeats):
        started = time.perf_counter()
        report = validate_dataset(data, report_dir, workers=args.workers, data_docs=False)
        timings.append(time.perf_counter() - started)
        assert report.success, [f.line() for f in report.failures] + report.file_errors
    started = time.perf_counter()
    validate_dataset(data, report_dir, workers=args.workers, data_docs=True)
    with_docs = time.perf_counter() - started
    assert report is not None
    rows = sum(report.rows.values())
    median = statistics.median(timings)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"rows: {rows:,} over {len(report.rows)} files; expectations: {report.expectations}; "
        f"responses checked against their constraints: {report.verifications:,} "
        f"({report.verifier_calls:,} single-constraint verifier calls); workers: {args.workers}"
    )
    print(
        f"validate (no Data Docs): median {median:.1f}s of {args.repeats} "
        f"({', '.join(f'{t:.1f}' for t in timings)}) -> {rows / median:,.0f} rows/s, "
        f"{report.verifications / median:,.0f} checked responses/s"
    )
    print(f"validate with Data Docs: {with_docs:.1f}s; peak RSS of the driver {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
