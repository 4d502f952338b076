"""``qjaxiface bench``: run ``benchmarks/bench_xla.py`` from a source checkout.

The benchmarks live next to the package in the repository (``benchmarks/``), not inside it, so
they are not part of an installed wheel. This module finds the repository -- the folder given
with ``--source``, the current working directory, or the folder that contains the imported
``qjaxiface`` package -- and imports ``benchmarks.bench_xla`` from there. The module must
provide ``run(quick: bool, out_dir)``.

Examples:
    >>> from pathlib import Path
    >>> from qjaxiface._cli_bench import find_benchmarks
    >>> find_benchmarks([Path("/nonexistent")]) is None
    True
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType

__all__ = ["BenchmarksUnavailable", "candidate_roots", "find_benchmarks", "load_bench", "run_bench"]

BENCH_FILE = Path("benchmarks") / "bench_xla.py"
MODULE_NAME = "benchmarks.bench_xla"


class BenchmarksUnavailable(RuntimeError):
    """``benchmarks/bench_xla.py`` cannot be found or imported, or has no ``run``."""


def candidate_roots(source: str | Path | None = None) -> list[Path]:
    """The folders searched for ``benchmarks/bench_xla.py``, in order.

    Args:
        source: a folder given by the user; searched first.

    Returns:
        list[Path]: ``source`` (if given), the current directory, the checkout containing the
        imported ``qjaxiface`` package; duplicates removed.
    """
    import qjaxiface

    roots = [Path(source)] if source is not None else []
    roots.append(Path.cwd())
    roots.append(Path(qjaxiface.__file__).resolve().parent.parent)
    unique: list[Path] = []
    for root in roots:
        resolved = root.resolve()
        if resolved not in unique:
            unique.append(resolved)
    return unique


def find_benchmarks(roots: Iterable[Path]) -> Path | None:
    """The first root that contains ``benchmarks/bench_xla.py``, or ``None``."""
    for root in roots:
        if (root / BENCH_FILE).is_file():
            return root
    return None


def load_bench(roots: Sequence[Path]) -> ModuleType:
    """Import ``benchmarks.bench_xla`` from the first root that has it.

    The root is put at the front of ``sys.path`` for the import (and left there, so that the
    benchmark's own imports of sibling modules keep working while it runs).

    Args:
        roots: folders to search, see ``candidate_roots``.

    Returns:
        ModuleType: the imported module.

    Raises:
        BenchmarksUnavailable: if no root has the file, the import fails, or ``run`` is missing.
    """
    root = find_benchmarks(roots)
    if root is None:
        searched = ", ".join(str(r) for r in roots)
        raise BenchmarksUnavailable(
            f"{BENCH_FILE} was not found (searched: {searched}). The benchmarks ship with the "
            "source repository, not with the installed package: run `qjaxiface bench` from a "
            "clone of the qjaxiface repository, or pass --source PATH/TO/CLONE."
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    # Loaded from its path, not imported by name: benchmarks/ has no __init__.py, and a
    # regular "benchmarks" package elsewhere on sys.path (xdsl, which Catalyst installs, ships
    # one) would win over a namespace package whatever the order of sys.path.
    for name in [n for n in sys.modules if n == "benchmarks" or n.startswith("benchmarks.")]:
        del sys.modules[name]
    spec = importlib.util.spec_from_file_location(MODULE_NAME, root / BENCH_FILE)
    assert spec is not None and spec.loader is not None  # a .py path always has a loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[MODULE_NAME]
        raise BenchmarksUnavailable(
            f"importing {root / BENCH_FILE} failed: {type(exc).__name__}: {exc}"
        ) from exc
    if not callable(getattr(module, "run", None)):
        raise BenchmarksUnavailable(f"{root / BENCH_FILE} has no function run(quick, out_dir)")
    return module


def run_bench(quick: bool = False, out_dir: str | Path = "bench-results", source=None) -> int:
    """Run the XLA executor benchmarks and report where the results went.

    Args:
        quick: small problem sizes (seconds instead of minutes).
        out_dir: folder for the benchmark output (created if missing).
        source: a repository checkout to take ``benchmarks/`` from.

    Returns:
        int: 0 on success, 2 if the benchmarks are unavailable, or the integer the benchmark's
        ``run`` returned.
    """
    try:
        module = load_bench(candidate_roots(source))
    except BenchmarksUnavailable as exc:
        print(f"qjaxiface bench: {exc}", file=sys.stderr)
        return 2
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    print(f"running {inspect.getsourcefile(module)} (quick={quick}) -> {out}")
    result = module.run(quick, out)
    if isinstance(result, bool) or not isinstance(result, int):
        if result is not None:
            print(result)
        print(f"benchmark results in {out}")
        return 0
    return result
