"""The ``qjaxiface`` command line: ``doctor``, ``demo`` and ``bench``.

Run ``qjaxiface --help`` (or ``python -m qjaxiface --help``) for the list of subcommands. Every
subcommand is implemented in a private helper module that is imported only when the subcommand
runs, and the package imports JAX and PennyLane only on first use, so ``qjaxiface --help`` and
argument errors take a fraction of a second (``tests/cli/test_cli.py`` checks that neither is
imported).

Examples:
    >>> from qjaxiface.cli import build_parser
    >>> args = build_parser().parse_args(["demo", "--steps", "5"])
    >>> args.command, args.steps
    ('demo', 5)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]

DEFAULT_DEMO_STEPS = 120


def _cmd_doctor(args: argparse.Namespace) -> int:
    from ._cli_doctor import run_doctor

    return run_doctor(run_self_test=not args.no_self_test)


def _cmd_demo(args: argparse.Namespace) -> int:
    from ._cli_demo import run_demo

    result = run_demo(
        steps=args.steps,
        out_dir=Path(args.out),
        seed=args.seed,
        n_samples=args.samples,
        n_layers=args.layers,
        progress=not args.no_progress,
    )
    return 0 if result.loss_decreased else 1


def _cmd_bench(args: argparse.Namespace) -> int:
    from ._cli_bench import run_bench

    return run_bench(quick=args.quick, out_dir=Path(args.out), source=args.source)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``qjaxiface`` command.

    Returns:
        argparse.ArgumentParser: the parser; each subcommand stores its handler in ``func``.

    Examples:
        >>> parser = build_parser()
        >>> parser.parse_args(["bench", "--quick"]).quick
        True
    """
    parser = argparse.ArgumentParser(
        prog="qjaxiface",
        description="The JAX interface boundary for PennyLane: diagnostics, a demo, benchmarks.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    doctor = sub.add_parser(
        "doctor",
        help="report versions, JAX devices, PennyLane devices and run a self-test",
        description=(
            "Print the versions of Python, JAX, PennyLane and qjaxiface, the JAX backend and "
            "devices, the x64 setting, the installed PennyLane devices, whether the qjaxiface "
            "hook is installed, and run a short self-test (a jitted gradient through qjaxiface). "
            "Exits with status 1 if the self-test fails."
        ),
    )
    doctor.add_argument(
        "--no-self-test", action="store_true", help="only print the environment report"
    )
    doctor.set_defaults(func=_cmd_doctor)

    demo = sub.add_parser(
        "demo",
        help="train a small hybrid quantum classifier through qjaxiface",
        description=(
            "Train a data re-uploading classifier (2 qubits, default.qubit) on a two-moons "
            "dataset with optax under jax.jit, routed through qjaxiface. Saves loss.png and "
            "decision_boundary.png in --out."
        ),
    )
    demo.add_argument(
        "--steps",
        type=_positive_int,
        default=DEFAULT_DEMO_STEPS,
        help=f"optimisation steps (default: {DEFAULT_DEMO_STEPS})",
    )
    demo.add_argument(
        "--out", default="qjaxiface-demo", help="output folder (default: ./qjaxiface-demo)"
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument(
        "--samples", type=_positive_int, default=200, help="training points (default: 200)"
    )
    demo.add_argument(
        "--layers", type=_positive_int, default=3, help="re-uploading layers (default: 3)"
    )
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    demo.set_defaults(func=_cmd_demo)

    bench = sub.add_parser(
        "bench",
        help="run the XLA executor benchmarks (needs a source checkout)",
        description=(
            "Run benchmarks/bench_xla.py from a source checkout of qjaxiface. The benchmarks "
            "are not shipped in the wheel; run this from the repository."
        ),
    )
    bench.add_argument(
        "--quick",
        action="store_true",
        help="n = 4, 6 and a short depth sweep: about a minute on 2 CPU cores",
    )
    bench.add_argument(
        "--out", default="bench-results", help="output folder (default: ./bench-results)"
    )
    bench.add_argument(
        "--source",
        default=None,
        metavar="DIR",
        help="repository checkout that holds benchmarks/ (default: the current directory, then "
        "the checkout of the imported qjaxiface)",
    )
    bench.set_defaults(func=_cmd_bench)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qjaxiface")
    except PackageNotFoundError:
        return "unknown (not installed as a distribution)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``qjaxiface`` console script.

    Args:
        argv: the arguments without the program name; ``None`` reads ``sys.argv[1:]``.

    Returns:
        int: the exit status (0 on success).

    Examples:
        >>> main([])  # doctest: +ELLIPSIS
        usage: qjaxiface ...
        2
    """
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.version:
        print(f"qjaxiface {_version()}")
        return 0
    if args.command is None:
        parser.print_usage(sys.stdout)
        return 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
