"""The `tracealign` command line. Thin: parse, call the library, print a summary.

Errors a user can fix (bad arguments, unreadable files, invalid data) end with one line on
stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tracealign import __version__
from tracealign.errors import UserFacingError


class UserError(UserFacingError):
    """A bad command-line argument the parser cannot see (an unwritable path)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tracealign", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"tracealign {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    gen = commands.add_parser(
        "generate",
        help="generate a TRACE-style dataset (programmatic backend, deterministic for a seed)",
        description="Write <out>/<split>/{instructions,sft,dpo,iopo,cgpo}.jsonl for the splits "
        "train, eval and eval_ood, and <out>/manifest.json, atomically. Defaults come from the "
        "`data:` section of --params; flags override them. The same seed gives byte-identical "
        "files.",
    )
    gen.add_argument("--out", type=Path, required=True, help="output directory (replaced whole)")
    gen.add_argument(
        "--params",
        type=Path,
        default=Path("params.yaml"),
        help="parameters file (default: params.yaml; absent = built-in defaults)",
    )
    gen.add_argument("--seed", type=int, help="random seed")
    gen.add_argument("--n-train", type=_positive, help="training instructions")
    gen.add_argument("--n-eval", type=_positive, help="in-domain evaluation instructions")
    gen.add_argument(
        "--n-eval-ood",
        type=_non_negative,
        help="out-of-domain evaluation instructions (held-out constraint kinds)",
    )
    gen.add_argument("--n-cgpo", type=_non_negative, help="CGPO task prompts per task (train)")
    gen.add_argument("--workers", type=_positive, help="processes (default: all cores)")
    gen.add_argument(
        "--dvc",
        action="store_true",
        help="version the output with DVC: if <out>.dvc records the same settings, "
        "check the regenerated data hashes to that version (fail otherwise); "
        "else `dvc add` it as a new version",
    )
    gen.set_defaults(handler=_generate)

    val = commands.add_parser(
        "validate",
        help="validate a dataset directory with Great Expectations",
        description="Run the expectation suites over every artifact of DIR. Exit 0 when all "
        "pass; otherwise print which expectation failed, on how many rows, with example row ids "
        "and the field, and exit 1. Data Docs HTML and the JSON results are written to "
        "--report (default: DIR.validation beside the data).",
    )
    val.add_argument("data_dir", type=Path, metavar="DIR", help="dataset directory")
    val.add_argument("--report", type=Path, help="where to write Data Docs and results.json")
    val.add_argument("--workers", type=_positive, help="processes that read and verify the files")
    val.add_argument(
        "--share-tolerance",
        type=float,
        default=0.02,
        help="allowed absolute difference of per-type shares from the manifest",
    )
    val.add_argument("--no-docs", action="store_true", help="skip the Data Docs HTML")
    val.set_defaults(handler=_validate)
    return parser


def _generate(args: argparse.Namespace) -> int:
    from tracealign.config import DataSettings, load_params, load_section
    from tracealign.synthesis import build_from_settings

    params = load_params(args.params) if args.params.exists() else {}
    settings = load_section(
        params,
        "data",
        DataSettings,
        source=args.params,
        seed=args.seed,
        n_train=args.n_train,
        n_eval=args.n_eval,
        n_eval_ood=args.n_eval_ood,
        n_cgpo=args.n_cgpo,
        workers=args.workers,
    )
    _check_writable(args.out)
    manifest = build_from_settings(args.out, settings)
    print(f"wrote {args.out}: {manifest_summary(manifest)}")
    if args.dvc:
        from tracealign.versioning import reconcile

        outcome = reconcile(args.out, manifest.version_meta())
        if outcome.new:
            print(
                f"recorded dataset version {outcome.version.short} in "
                f"{args.out.name}.dvc: commit it (git add {args.out.name}.dvc) and `dvc push`"
            )
        else:
            print(
                f"dataset matches the version {args.out.name}.dvc names ({outcome.version.short})"
            )
    return 0


def _validate(args: argparse.Namespace) -> int:
    from tracealign.validation import print_report, validate_dataset

    report = validate_dataset(
        args.data_dir,
        args.report,
        workers=args.workers,
        share_tolerance=args.share_tolerance,
        data_docs=not args.no_docs,
    )
    print_report(report)
    return 0 if report.success else 1


def manifest_summary(manifest) -> str:
    return ", ".join(
        f"{split}: " + " ".join(f"{count} {artifact}" for artifact, count in artifacts.items())
        for split, artifacts in manifest.counts.items()
    )


def _check_writable(out: Path) -> None:
    ancestor = out.resolve().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"cannot write to {out}: {ancestor} is a file, not a directory")
    if not os.access(ancestor, os.W_OK):
        raise UserError(f"cannot write to {out}: {ancestor} is not writable")
    if out.exists() and not out.is_dir():
        raise UserError(f"cannot write to {out}: it exists and is not a directory")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except UserFacingError as exc:
        print(f"tracealign {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # permission denied, disk full, ...: the reason and the path
        print(
            f"tracealign {args.command}: error: {exc.strerror or exc}: {exc.filename}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print(
            f"tracealign {args.command}: interrupted; no partial output was kept", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
