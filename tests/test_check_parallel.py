"""`archdsl check -j N`: files checked in worker processes give the output of
a sequential run (`-j 1`) byte for byte, in every format, with the same exit
code, the same first usage error and the same deduplication of a shared
block file's diagnostics; a worker that dies is exit 3 with a message, and
Ctrl-C stops the workers instead of hanging.  Imported files are parsed once
per process (archdsl/elaborate.py's `_parse_import`), keyed by their text."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import MODELS, ROOT

import archdsl
from archdsl import cli, elaborate, syntax

INVALID = ROOT / "tests" / "invalid"
FORMATS = ("text", "json", "sarif", "github", "gitlab", "junit")

BLOCKS = textwrap.dedent("""\
    block unit(c) {
        return in -> conv2d(c, 3, padding=1, bias=false) -> batchnorm2d -> relu
    }
    block broken(c) {
        return in -> conv2d(c, 3, padding=1, bias=true) -> batchnorm2d
    }
    """)


def model_text(index: int) -> str:
    # Every model uses `broken` (W-level lint on the shared block file: reported
    # once, for the first file) and odd ones add a shape error of their own.
    tail = "-> linear(10, in_features=10)" if index % 2 else "-> flatten -> linear(10)"
    return textwrap.dedent(f"""\
        import "lib/blocks.cnn"
        model M{index} {{
            input x: [3, 16, 16]
            x -> unit({8 + index}) -> broken(8) -> adaptive_avgpool2d(1) {tail}
        }}
        """)


@pytest.fixture
def project(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "blocks.cnn").write_text(BLOCKS)
    for index in range(12):
        (tmp_path / f"m{index:02}.cnn").write_text(model_text(index))
    return tmp_path


def run_check(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["check", *args, "--color", "never"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("fmt", FORMATS)
def test_parallel_output_is_the_sequential_output(capsys, fmt):
    """The zoo and the invalid corpus (140 files, errors of every stage)."""
    args = [str(MODELS), str(INVALID), "--infos", "--format", fmt]
    sequential = run_check(capsys, *args, "-j", "1")
    parallel = run_check(capsys, *args, "-j", "2")
    assert sequential[0] == 1  # the invalid corpus has errors
    assert len(sequential[1]) > 10_000
    assert parallel == sequential


@pytest.mark.parametrize("extra", [["--statistics"], ["--strict", "-q"], ["--select", "W"]])
def test_parallel_options_and_a_shared_block_file(capsys, project, extra):
    sequential = run_check(capsys, str(project), *extra, "-j", "1")
    parallel = run_check(capsys, str(project), *extra, "-j", "3")
    assert parallel == sequential
    if extra == ["--select", "W"]:
        # The shared block's warning is reported once, not once per model.
        assert sequential[1].count("blocks.cnn:5:") == 1


def test_parallel_reports_the_first_usage_error_in_file_order(capsys, project):
    """A broken configuration under one folder is a usage error for its
    files; with two such folders, the first one in file order is named."""
    for name in ("b_bad", "z_bad"):
        folder = project / name
        folder.mkdir()
        (folder / "pyproject.toml").write_text("[tool.archdsl]\nnot_a_key = 1\n")
        (folder / "x.cnn").write_text(model_text(0).replace("lib/", "../lib/"))
    sequential = run_check(capsys, str(project), "-j", "1")
    parallel = run_check(capsys, str(project), "-j", "2")
    assert sequential[0] == 2 and "b_bad" in sequential[2] and "z_bad" not in sequential[2]
    assert parallel == sequential


def test_a_worker_that_dies_is_exit_3_with_a_message(capsys, project, monkeypatch):
    real = archdsl.checking.check_program

    def dies_on_one_file(program, path=None, **options):
        if path is not None and path.name == "m05.cnn":
            os._exit(9)  # as a worker killed by the kernel would end
        return real(program, path, **options)

    monkeypatch.setattr(archdsl.checking, "check_program", dies_on_one_file)
    code, out, err = run_check(capsys, str(project), "-j", "2")
    assert code == 3
    assert "worker process" in err and "-j 1" in err
    assert out == ""


def test_one_file_or_one_job_starts_no_worker(capsys, project, monkeypatch):
    def no_pool(*args, **kwargs):
        raise AssertionError("a worker pool was started")

    import concurrent.futures

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", no_pool)
    assert run_check(capsys, str(project / "m00.cnn"), "-j", "4")[0] == 0
    assert run_check(capsys, str(project), "-j", "1")[0] == 1


def test_jobs_must_be_a_positive_integer(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["check", str(MODELS), "-j", "0"])
    assert exit_.value.code == 2
    assert "positive integer" in capsys.readouterr().err


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads worker pids from Linux's /proc")
def test_ctrl_c_stops_the_workers_and_exits_130(tmp_path):
    # Enough work for the interrupt to land while the workers are busy.
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from analysis_scale import chain

    for index in range(40):
        (tmp_path / f"big{index:02}.cnn").write_text(chain(3000))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "archdsl", "check", str(tmp_path), "-j", "2"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True,
                               start_new_session=True)  # its own process group, as a terminal's job
    workers: list[int] = []
    deadline = time.monotonic() + 60
    while len(workers) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
        workers = _children(process.pid)
    assert len(workers) == 2, "the workers did not start"
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError("archdsl check -j 2 hung after Ctrl-C") from None
    assert process.returncode == 130, err
    assert "Traceback" not in err
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_workers_are_forked_with_ctrl_c_held_back(capsys, project, monkeypatch, tmp_path):
    """A Ctrl-C between a worker's fork and its initializer (which ignores
    it) raised inside the interpreter's after-fork hooks and printed a
    traceback (seen once in CI).  The window is closed: each worker starts
    with SIGINT blocked, which its initializer finds still so."""
    record = tmp_path / "masks"
    real = cli._ignore_interrupts

    def recording():
        with record.open("a") as handle:
            handle.write(f"{int(signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))}\n")
        real()

    monkeypatch.setattr(cli, "_ignore_interrupts", recording)
    assert run_check(capsys, str(project), "-j", "2") == run_check(capsys, str(project), "-j", "1")
    assert record.read_text().split() == ["1", "1"]  # both workers, SIGINT blocked from the fork on
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # and unblocked here again


# ------------------------------------------------------------ import cache


def test_an_imported_file_is_parsed_once_per_process(project, monkeypatch):
    elaborate._parse_import.cache_clear()
    parsed: list[str] = []
    real = syntax.parse

    def counting(source, *args, **kwargs):
        parsed.append(Path(source.name).name)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(syntax, "parse", counting)
    programs = [archdsl.load(project / f"m{index:02}.cnn") for index in range(4)]
    assert parsed.count("blocks.cnn") == 1
    assert parsed.count("m00.cnn") == 1
    # Each program still has the imported file as a source, and its models.
    for program in programs:
        assert any(name.endswith("blocks.cnn") for name in program.sources)
        assert program.models


def test_an_edited_import_is_parsed_again(project):
    elaborate._parse_import.cache_clear()
    before = archdsl.analyze(archdsl.load(project / "m00.cnn").models[0]).totals.params
    blocks = project / "lib" / "blocks.cnn"
    edited = BLOCKS.replace("conv2d(c, 3, padding=1, bias=false)", "conv2d(c, 5, padding=2, bias=false)")
    assert edited != BLOCKS
    blocks.write_text(edited)
    after = archdsl.analyze(archdsl.load(project / "m00.cnn").models[0]).totals.params
    # unit(8): conv2d(3 -> 8), a 5x5 kernel instead of 3x3: 8 * 3 * (25 - 9) more weights.
    assert after - before == 8 * 3 * (25 - 9)


def test_a_parse_error_in_a_shared_import_is_reported_for_every_program(project):
    elaborate._parse_import.cache_clear()
    (project / "lib" / "blocks.cnn").write_text(BLOCKS + "block oops( {\n")
    for index in range(2):
        program = archdsl.load(project / f"m{index:02}.cnn")
        assert [d.code for d in program.diagnostics if d.span and d.span.file.endswith("blocks.cnn")][:1] == ["E101"]
