"""The `benchbench` command line. Subcommands import Keras lazily so `--help` and usage errors are instant."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

EXIT_RUNTIME, EXIT_USAGE = 1, 2


class UsageError(Exception):
    """A user mistake in the command line: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's default prints the whole usage block first
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _import_backend_quietly() -> None:
    """Imports Keras and its backend with native stderr muted.

    TensorFlow's C++ libraries log CUDA probing and CPU-feature notes before absl logging is initialised, so
    TF_CPP_MIN_LOG_LEVEL cannot silence them; for a CLI user they are noise. Python errors still surface.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras

            keras.ops.zeros(1)  # the backend's device probing also happens on first use
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def cmd_models(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from benchbench.models import MODELS, count_params

    names = MODELS.names(args.pattern)
    if not names:
        raise UsageError(MODELS.unknown_message(args.pattern).replace("unknown model", "no model matches"))
    rows = []
    for name in names:
        entry = MODELS.get(name)
        params = count_params(entry.build_reference())
        rows.append([name, entry.family, f"{params / 1e6:.2f}", f"{entry.num_classes} cls @ {entry.image_size} px",
                     entry.paper])
    print(tabulate(rows, headers=["model", "family", "params (M)", "reference config", "reference"],
                   tablefmt=args.format, disable_numparse=True))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="benchbench", description="Benchmark image classifiers: ViT, ShiftViT, MobileViT, CNNs.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    models = sub.add_parser("models", help="list registered models with their parameter counts")
    models.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'vit_*' (default: all)")
    models.add_argument("--format", default="simple", choices=["simple", "github", "plain"],
                        help="table format (github: markdown)")
    models.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        _import_backend_quietly()
        return args.func(args)
    except UsageError as error:
        print(f"benchbench: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("benchbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
