"""``qjaxiface bench``: finds benchmarks/bench_xla.py in a checkout and calls its run()."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from qjaxiface import _cli_bench
from qjaxiface.cli import main

REPO = Path(__file__).resolve().parents[2]

FAKE_BENCH = """
from pathlib import Path

CALLS = []


def run(quick, out_dir):
    CALLS.append((quick, Path(out_dir)))
    (Path(out_dir) / "result.txt").write_text(f"quick={quick}")
"""


@pytest.fixture
def clean_imports(monkeypatch):
    """Keep sys.path and the "benchmarks" modules as they were before the test."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    saved = {n: m for n, m in sys.modules.items() if n.split(".")[0] == "benchmarks"}
    for name in saved:
        monkeypatch.delitem(sys.modules, name)
    yield
    for name in [n for n in sys.modules if n.split(".")[0] == "benchmarks"]:
        del sys.modules[name]
    sys.modules.update(saved)


def _fake_checkout(root: Path, body: str = FAKE_BENCH) -> Path:
    (root / "benchmarks").mkdir(parents=True)
    (root / "benchmarks" / "bench_xla.py").write_text(body)
    return root


def test_bench_calls_run_with_quick_and_out(tmp_path, capsys, clean_imports):
    source = _fake_checkout(tmp_path / "checkout")
    out = tmp_path / "results"
    assert main(["bench", "--quick", "--out", str(out), "--source", str(source)]) == 0
    assert (out / "result.txt").read_text() == "quick=True"
    calls = sys.modules["benchmarks.bench_xla"].CALLS
    assert calls == [(True, out)]
    assert "benchmark results in" in capsys.readouterr().out


def test_bench_missing_is_a_clear_error(tmp_path, capsys, monkeypatch, clean_imports):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_cli_bench, "candidate_roots", lambda source=None: [tmp_path])
    assert main(["bench", "--quick", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "benchmarks/bench_xla.py was not found" in err
    assert "--source" in err


def test_bench_without_run_is_a_clear_error(tmp_path, capsys, clean_imports):
    source = _fake_checkout(tmp_path / "checkout", body="X = 1\n")
    assert main(["bench", "--source", str(source), "--out", str(tmp_path / "o")]) == 2
    assert "has no function run(quick, out_dir)" in capsys.readouterr().err


def test_bench_import_error_is_reported(tmp_path, capsys, clean_imports):
    source = _fake_checkout(tmp_path / "checkout", body="import not_a_module_qjx\n")
    assert main(["bench", "--source", str(source), "--out", str(tmp_path / "o")]) == 2
    assert "ModuleNotFoundError" in capsys.readouterr().err


def test_bench_prefers_source_then_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    roots = _cli_bench.candidate_roots(tmp_path / "elsewhere")
    assert roots[0] == (tmp_path / "elsewhere").resolve()
    assert roots[1] == tmp_path.resolve()


@pytest.mark.skipif(
    not (REPO / "benchmarks" / "bench_xla.py").is_file(), reason="no benchmarks/bench_xla.py yet"
)
def test_repository_benchmarks_are_found(tmp_path, monkeypatch, clean_imports):
    """The real benchmark module imports and has run(); the heavy run itself is replaced."""
    module = _cli_bench.load_bench([REPO])
    calls = []
    monkeypatch.setattr(module, "run", lambda quick, out_dir: calls.append((quick, out_dir)))
    monkeypatch.setattr(_cli_bench, "load_bench", lambda roots: module)
    assert main(["bench", "--quick", "--out", str(tmp_path)]) == 0
    assert calls == [(True, tmp_path)]


def test_real_benchmarks_run_at_toy_size(tmp_path, clean_imports):
    """The real benchmarks/bench_xla.py end to end on 2 qubits: rows, markdown, plots, docs page."""
    bench = _cli_bench.load_bench([REPO])
    rows = bench.bench_gradient((2,), 1, lambda line: None)
    assert {r["method"] for r in rows} == set(bench.METHODS)
    assert all(r["xla_route_ok"] and r["xla_steady"] > 0 and r["pl_steady"] > 0 for r in rows)
    depth = bench.bench_depth(2, (1, 2), lambda line: None)
    info = bench.machine()
    markdown = bench.to_markdown(rows, depth, info)
    assert "| 2 | parameter-shift |" in markdown and "| 2 | 12 |" in markdown
    assert bench.plot_qubits(rows, tmp_path / "q.png") and (tmp_path / "q.png").stat().st_size
    assert bench.plot_depth(depth, tmp_path / "d.png") and (tmp_path / "d.png").stat().st_size
    page = bench.docs_page(markdown, info, "img")
    assert page.startswith("# Benchmarks") and "img/qubits.png" in page


def test_run_ends_with_the_table_and_the_files_it_wrote(tmp_path, capsys, clean_imports):
    bench = _cli_bench.load_bench([REPO])
    tiny = {"ns": (2,), "repeats": 1, "depth_n": 2, "layers": (1,)}
    bench.QUICK.clear()
    bench.QUICK.update(tiny)  # the module is loaded afresh per test (clean_imports)
    assert bench.run(quick=True, out_dir=tmp_path) == 0
    out = capsys.readouterr().out
    table = out[out.index("| n | diff method |") :]
    assert "| 2 | adjoint |" in table and "| 1 | 6 |" in table
    assert "(" not in out.splitlines()[-1]  # no raw Python repr of the rows at the end
    written = out[out.index("wrote:") :].split()[1:]
    assert {Path(p).name for p in written} == {
        "results.json",
        "results.md",
        "qubits.png",
        "depth_sweep.png",
    }
    assert all(Path(p).is_file() and Path(p).is_absolute() for p in written)
