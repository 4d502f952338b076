"""run_reference.py's report: outcomes from JUnit XML and the comparison of two runs."""

from __future__ import annotations

import run_reference

XML = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">{cases}</testsuite></testsuites>"""


def _case(name, child=""):
    cls = "workflow.interfaces.qnode.test_jax_qnode.TestJIT"
    return f'<testcase classname="{cls}" name="{name}">{child}</testcase>'


def _write(path, cases):
    path.write_text(XML.format(cases="".join(cases)))


def test_outcomes_and_node_ids(tmp_path):
    _write(
        tmp_path / "a.xml",
        [
            _case("test_ok"),
            _case("test_bad", '<failure message="boom">tb</failure>'),
            _case("test_skip", '<skipped type="pytest.skip" message="no"/>'),
            _case("test_xf", '<skipped type="pytest.xfail" message="known"/>'),
        ],
    )
    got = run_reference.outcomes(tmp_path / "a.xml")
    prefix = "workflow/interfaces/qnode/test_jax_qnode.py::TestJIT::"
    assert got == {
        prefix + "test_ok": "passed",
        prefix + "test_bad": "failed",
        prefix + "test_skip": "skipped",
        prefix + "test_xf": "xfailed",
    }


def test_compare_fails_only_when_a_passing_test_breaks(tmp_path, capsys):
    _write(tmp_path / "baseline.xml", [_case("test_a"), _case("test_b", "<skipped/>")])
    _write(tmp_path / "qjaxiface.xml", [_case("test_a"), _case("test_b")])
    assert run_reference.compare(tmp_path) == 0  # skipped -> passed is not a regression
    _write(tmp_path / "qjaxiface.xml", [_case("test_a", '<error message="x"/>'), _case("test_b")])
    assert run_reference.compare(tmp_path) == 1
    assert "passed -> error" in capsys.readouterr().out


def test_the_wider_suite_selects_jax_marked_tests_outside_the_interface_suites(tmp_path):
    suite = run_reference.SUITES["wider"]
    cmd, plugin = run_reference.pytest_command(["templates"], suite, "baseline", tmp_path)
    opts = cmd[3:]  # after "python -m pytest"
    assert opts[opts.index("-m") + 1] == "jax"
    assert "--ignore=workflow/interfaces/qnode" in opts
    assert "--ignore=workflow/interfaces/execute" in opts
    assert plugin is None and "qjaxiface_pl_plugin" not in opts
    cmd, plugin = run_reference.pytest_command(["templates"], suite, "qjaxiface", tmp_path)
    assert "qjaxiface_pl_plugin" in cmd
    assert plugin == tmp_path / "plugin" and cmd[-1] == "templates"


def test_the_interface_suite_runs_every_test_of_its_files(tmp_path):
    suite = run_reference.SUITES["interfaces"]
    cmd, _ = run_reference.pytest_command(list(suite.files), suite, "baseline", tmp_path, workers=1)
    opts = cmd[3:]
    assert "-m" not in opts and "-n" not in opts
    assert not any(arg.startswith("--ignore") for arg in opts)


LOG = """\
gradients/core/test_a.py::test_x[0]
[gw0] [  0%] PASSED gradients/core/test_a.py::test_x[0]
[gw1] [  1%] FAILED gradients/core/test_a.py::test_y[a b]
[gw1] [  1%] ERROR gradients/core/test_a.py::test_x[0]
[gw0] [  2%] XFAIL gradients/core/test_a.py::test_z
[gw0] [  2%] SKIPPED gradients/core/test_a.py::test_s
"""


def test_a_run_cut_short_is_read_from_its_log(tmp_path):
    (tmp_path / "baseline.log").write_text(LOG)
    got = run_reference.outcomes_from_log(tmp_path / "baseline.log")
    prefix = "gradients/core/test_a.py::"
    assert got == {
        prefix + "test_x[0]": "error",  # a teardown error after a pass is kept
        prefix + "test_y[a b]": "failed",
        prefix + "test_z": "xfailed",
        prefix + "test_s": "skipped",
    }
    assert run_reference.load("baseline", [tmp_path]) == (got, False)


def test_a_partial_comparison_counts_only_tests_both_runs_finished(tmp_path, capsys):
    part = tmp_path / "part"
    part.mkdir()
    (tmp_path / "baseline.log").write_text(LOG)
    _write(part / "qjaxiface.xml", [_case("test_a")])
    (tmp_path / "qjaxiface.log").write_text(
        "[gw0] [  0%] PASSED gradients/core/test_a.py::test_y[a b] \n"
    )
    assert run_reference.compare(tmp_path, (part,)) == 0  # failed -> passed is no regression
    out = capsys.readouterr().out
    assert "comparing the 1 tests both finished" in out
    assert "failed -> passed" in out
