"""Untrusted files and paths (docs/security.md): every reproducer of the
issue "Untrusted files and paths: the promises that still break", as the
stranger's pull request would give it.  The promise each test checks: a
located diagnostic and exit 1, or a usage error and exit 2; never exit 3,
a hang or unbounded memory.  Special files are made in a temporary folder;
memory-bound runs are subprocesses under ``resource.setrlimit``."""

from __future__ import annotations

import os
import resource
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import archdsl
from archdsl.checking import check_program
from archdsl.diagnostics.render import MAX_PER_CODE, render_text
from archdsl.files import UnsafePath, read_capped, write_atomic

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"

#: The address space a memory-bound run may use: far below what the
#: unbounded versions allocated (GBs), enough for Python and NumPy.
MEMORY_LIMIT = 1536 * 2**20


def limited_cli(*args: str, cwd: Path, memory: int = MEMORY_LIMIT, env: dict | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m archdsl ARGS`` with its address space capped at ``memory``."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        os.umask(0o022)

    return subprocess.run([sys.executable, "-m", "archdsl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=cap,
                          env={**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT), **(env or {})})


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    """A project folder (with pyproject.toml, so it is its own import root)."""
    root = tmp_path / "proj"
    root.mkdir(exist_ok=True)
    (root / "pyproject.toml").write_text(files.pop("pyproject.toml", ""), encoding="utf-8")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return root


NET = """
model Net {
    input x: [3, 8, 8]
    x -> conv2d(4, 3, padding=1) -> relu -> global_avgpool -> flatten -> linear(2)
}
"""


def codes(program) -> list[str]:
    return [d.code for d in program.diagnostics]


# ------------------------------------------------------- 1. values that grow


def doubling_blocks(argument: str) -> str:
    """40 non-recursive blocks, each passing ``s + s`` to the next: 2**40 items unbounded."""
    blocks = "\n".join(f"block B{i}(s) {{ return in -> B{i + 1}(s + s) }}" for i in range(40))
    return blocks + "\nblock B40(s) { return in -> relu }\n" + \
        f"model A {{\n  input x: [3, 8, 8]\n  x -> B0({argument})\n}}\n"


@pytest.mark.parametrize("argument, what, unit", [('"ab"', "string", "characters"), ("(1, 2)", "list", "items")])
def test_doubling_string_or_tuple_is_e901_at_the_join(tmp_path, argument, what, unit):
    (tmp_path / "grow.cnn").write_text(doubling_blocks(argument), encoding="utf-8")
    result = limited_cli("check", "grow.cnn", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    # 2**17 is the first length past the default limit of 100,000 (block B15 makes it).
    assert f"grow.cnn:16:33: error[E901]: a {what} of 131,072 {unit} is longer than the limit of 100,000" \
        in result.stdout


def test_the_length_limit_is_a_limits_field():
    program = archdsl.loads(doubling_blocks('"ab"'), limits=archdsl.Limits(max_list_length=64))
    assert [d.message for d in program.diagnostics if d.code == "E901"] == [
        "a string of 128 characters is longer than the limit of 64"]


# ------------------------------------------------- 2. output that grows quadratically


def test_a_10000_step_line_prints_bounded_output():
    program = archdsl.loads("model A {\n  input x: [3, 8, 8]\n  x" + " -> relu" * 10_000 + "\n}\n")
    diagnostics = check_program(program).diagnostics
    assert sum(d.code == "W204" for d in diagnostics) == 9_999  # relu after relu, each step but the first
    text = render_text(diagnostics, program.sources)
    assert f"... and {9_999 - MAX_PER_CODE:,} more W204 like this\n" in text
    # Unclipped, each of the 9,999 would echo the 80 KB line: 1.6 GB.
    assert len(text) < 50_000
    assert max(len(line) for line in text.splitlines()) < 200
    assert "  x -> relu -> relu" in text and "…" in text


def test_a_clipped_snippet_keeps_the_caret_under_its_text():
    line = "  x" + " -> relu" * 100 + " -> nope\n"
    program = archdsl.loads("model A {\n  input x: [3, 8, 8]\n" + line + "}\n")
    text = render_text([d for d in program.diagnostics if d.code == "E201"], program.sources)
    source_line, caret_line = [t for t in text.splitlines() if t.startswith(("3 |", "  |"))][1:3]
    start = caret_line.index("^")
    assert source_line[start:start + 4] == "nope" and caret_line.count("^") == 4
    assert source_line.startswith("3 | …")


def test_control_characters_in_source_lines_are_escaped():
    program = archdsl.loads("model A {\n  input x: [3, 8, 8]\n  x -> nope  # \x1b[2J\x07\x00 cleared\n}\n")
    text = render_text(program.diagnostics, program.sources)
    assert "\x1b" not in text and "\x00" not in text and "\x07" not in text
    assert "# \\x1b[2J\\x07\\x00 cleared" in text
    caret = text.splitlines()[3]
    assert caret.index("^") == text.splitlines()[2].index("nope")


# ------------------------------------------------ 3. outputs that are not regular files


def test_render_to_dev_null_writes_through_the_device(tmp_path, cli):
    (tmp_path / "net.cnn").write_text(NET, encoding="utf-8")
    before = os.stat("/dev/null")
    result = cli("render", "net.cnn", "-o", "/dev/null", "--format", "dot", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino


def test_a_symlink_output_is_followed(tmp_path, cli):
    (tmp_path / "net.cnn").write_text(NET, encoding="utf-8")
    (tmp_path / "real.dot").write_text("old", encoding="utf-8")
    (tmp_path / "link.dot").symlink_to("real.dot")
    result = cli("render", "net.cnn", "-o", "link.dot", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "link.dot").is_symlink()
    assert (tmp_path / "real.dot").read_text(encoding="utf-8").startswith("digraph")


@pytest.mark.parametrize("command", [
    ["render", "net.cnn", "-o", "net.cnn", "--format", "dot"],
    ["render", "net.cnn", "-o", "lib.cnn", "--format", "dot"],  # an import of the input
    ["export", "net.cnn", "-o", "alias.py"],  # a symlink to net.cnn
])
def test_an_output_that_is_an_input_is_refused(tmp_path, cli, command):
    (tmp_path / "lib.cnn").write_text("block Act() { return in -> relu }\n", encoding="utf-8")
    (tmp_path / "net.cnn").write_text('import "lib.cnn"\n' + NET.replace("-> relu", "-> Act"), encoding="utf-8")
    (tmp_path / "alias.py").symlink_to("net.cnn")
    sources = {name: (tmp_path / name).read_bytes() for name in ("lib.cnn", "net.cnn")}
    result = cli(*command, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "is an input" in result.stderr
    assert {name: (tmp_path / name).read_bytes() for name in sources} == sources


def test_run_refuses_to_overwrite_its_input_array(tmp_path, cli):
    (tmp_path / "net.cnn").write_text(NET, encoding="utf-8")
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    before = (tmp_path / "x.npy").read_bytes()
    result = cli("run", "net.cnn", "--input", "x.npy", "-o", "x.npy", cwd=tmp_path)
    assert result.returncode == 2 and "is an input" in result.stderr
    assert (tmp_path / "x.npy").read_bytes() == before


def test_import_refuses_an_output_that_is_its_source(tmp_path, cli):
    (tmp_path / "net.cfg").write_text("[net]\nchannels=3\nheight=8\nwidth=8\n", encoding="utf-8")
    (tmp_path / "out.cnn").symlink_to("net.cfg")
    result = cli("import", "net.cfg", "-o", "out.cnn", cwd=tmp_path)
    assert result.returncode == 2 and "is an input" in result.stderr
    assert (tmp_path / "net.cfg").read_text(encoding="utf-8").startswith("[net]")


def test_outputs_keep_the_mode_of_the_file_they_replace_and_follow_the_umask(tmp_path):
    existing = tmp_path / "old.dot"
    existing.write_text("old", encoding="utf-8")
    existing.chmod(0o640)
    write_atomic(existing, "new")
    assert stat.S_IMODE(existing.stat().st_mode) == 0o640 and existing.read_text(encoding="utf-8") == "new"
    mask = os.umask(0o027)
    try:
        write_atomic(tmp_path / "fresh.dot", "x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "fresh.dot").stat().st_mode) == 0o640  # 0666 & ~0027, as open() makes it


def test_an_output_that_is_a_directory_is_a_usage_error(tmp_path, cli):
    (tmp_path / "net.cnn").write_text(NET, encoding="utf-8")
    (tmp_path / "out.dot").mkdir()
    result = cli("render", "net.cnn", "-o", "out.dot", cwd=tmp_path)
    assert result.returncode == 2 and "is a directory" in result.stderr


# ------------------------------------------------- 4. inputs that are not regular files


def test_dev_zero_as_the_file_is_a_usage_error(tmp_path):
    result = limited_cli("check", "/dev/zero", cwd=tmp_path, timeout=30)
    assert result.returncode == 2 and "not a regular file" in result.stderr


def test_a_fifo_as_the_file_does_not_hang(tmp_path):
    os.mkfifo(tmp_path / "pipe.cnn")
    for command in (["check", "pipe.cnn"], ["summary", "pipe.cnn"]):
        result = limited_cli(*command, cwd=tmp_path, timeout=30)
        assert result.returncode == 2, result.stderr
        assert "pipe.cnn" in result.stderr


def test_a_fifo_an_import_or_a_symlink_loop_is_e205(tmp_path):
    root = project(tmp_path, {"main.cnn": 'import "pipe.cnn"\nimport "loop.cnn"\n' + NET})
    os.mkfifo(root / "pipe.cnn")
    (root / "loop.cnn").symlink_to("loop.cnn")
    result = limited_cli("check", "main.cnn", cwd=root, timeout=30)
    assert result.returncode == 1, result.stderr
    assert 'cannot import "pipe.cnn": pipe.cnn is a FIFO (named pipe), not a regular file' in result.stdout \
        or "is a FIFO (named pipe), not a regular file" in result.stdout
    assert 'error[E205]: cannot import "loop.cnn"' in result.stdout


def test_a_character_device_import_is_e205_even_inside_a_library_folder(tmp_path):
    root = project(tmp_path, {"pyproject.toml": '[tool.archdsl]\npaths = ["/dev"]\n',
                              "main.cnn": 'import "zero.cnn"\n' + NET})
    (root / "zero.cnn").symlink_to("/dev/zero")
    result = limited_cli("check", "main.cnn", cwd=root, timeout=30)
    assert result.returncode == 1, result.stderr
    assert "is a character device, not a regular file" in result.stdout


def test_a_sparse_3_gb_file_is_refused_without_reading_it(tmp_path):
    root = project(tmp_path, {"main.cnn": 'import "huge.cnn"\n' + NET})
    with open(root / "huge.cnn", "wb") as handle:
        handle.truncate(3 * 2**30)
    (root / "top.cnn").write_bytes(b"")
    os.truncate(root / "top.cnn", 3 * 2**30)
    top = limited_cli("check", "top.cnn", cwd=root, memory=512 * 2**20 + MEMORY_LIMIT // 2)
    assert top.returncode == 1 and "E901" in top.stdout and "larger than the limit" in top.stdout
    imported = limited_cli("check", "main.cnn", cwd=root, memory=512 * 2**20 + MEMORY_LIMIT // 2)
    assert imported.returncode == 1 and "main.cnn:1:8: error[E901]" in imported.stdout


def test_read_capped_reads_at_most_one_byte_past_the_limit(tmp_path):
    (tmp_path / "big").write_bytes(b"x" * 1000)
    assert read_capped(tmp_path / "big", 10) == b"x" * 11
    with pytest.raises(UnsafePath, match="symlink loop"):
        (tmp_path / "loop").symlink_to("loop")
        read_capped(tmp_path / "loop", 10)


def test_a_symlink_loop_as_the_file_is_a_usage_error(tmp_path, cli):
    (tmp_path / "loop.cnn").symlink_to("loop.cnn")
    result = cli("check", "loop.cnn", cwd=tmp_path)
    assert result.returncode == 2, result.stderr


def test_a_nul_byte_in_an_import_path_is_e205():
    # Found by the fuzzer: Path.resolve raised "ValueError: embedded null byte".
    program = archdsl.loads('import "a\x00b.cnn"\n' + NET, directory=MODELS)
    assert codes(program) == ["E205"]
    assert program.diagnostics[0].message == 'cannot import "a\\u0000b.cnn": the path contains a control character'


# ---------------------------------------------------------- 5. imports that escape


def test_imports_outside_the_project_are_refused_and_never_echoed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.cnn").write_text("TOKEN=hunter2 not a model\n", encoding="utf-8")
    root = project(tmp_path, {"main.cnn": 'import "../outside/secret.cnn"\nimport "link.cnn"\n'
                                          'import "/etc/passwd"\nimport "' + "../" * 30 + 'etc/passwd.cnn"\n' + NET})
    (root / "link.cnn").symlink_to(outside / "secret.cnn")
    result = limited_cli("check", "main.cnn", cwd=root)
    assert result.returncode == 1
    assert "hunter2" not in result.stdout and "root:" not in result.stdout
    assert result.stdout.count("the file is outside the project") == 3
    assert 'cannot import "/etc/passwd": only .cnn files can be imported' in result.stdout


def test_library_folders_widen_the_confinement(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "acts.cnn").write_text("block Act() { return in -> relu }\n", encoding="utf-8")
    main = 'import "acts.cnn"\n' + NET.replace("-> relu", "-> Act")
    root = project(tmp_path, {"main.cnn": main})
    refused = limited_cli("check", "main.cnn", cwd=root)
    assert refused.returncode == 1 and "E205" in refused.stdout
    by_environment = limited_cli("check", "main.cnn", cwd=root, env={"ARCHDSL_PATH": str(shared)})
    assert by_environment.returncode == 0, by_environment.stdout
    (root / "pyproject.toml").write_text('[tool.archdsl]\npaths = ["../shared"]\n', encoding="utf-8")
    by_config = limited_cli("check", "main.cnn", cwd=root)
    assert by_config.returncode == 0, by_config.stdout


def test_the_standard_block_library_is_importable_from_anywhere(tmp_path):
    text = 'import "std/resnet.cnn"\nmodel R {\n  input x: [64, 8, 8]\n  x -> b: BasicBlock(64)\n}\n'
    root = project(tmp_path, {"r.cnn": text})
    result = limited_cli("summary", "r.cnn", cwd=root)
    assert result.returncode == 0, result.stderr
    # BasicBlock(64): two 3x3 convs 64->64 without bias + two batchnorms: 2*36,864 + 2*128.
    assert "73,984" in result.stdout


def test_a_newline_in_an_import_path_cannot_forge_a_line():
    program = archdsl.loads('import "x.cnn\\nforged.cnn:1:1: error[E000]: fake"\n' + NET, directory=MODELS)
    text = render_text(program.diagnostics, program.sources)
    assert not any(line.startswith("forged.cnn") for line in text.splitlines())


# ------------------------------------------------------------- 6. run at sizes it cannot hold


def test_run_refuses_a_lenet_input_it_cannot_hold(tmp_path):
    np.save(tmp_path / "big.npy", np.zeros((1, 1, 4000, 4000), np.float32))
    result = limited_cli("run", str(MODELS / "lenet5.cnn"), "--input", "big.npy", "-o", "y.npy", cwd=tmp_path,
                         memory=2 * MEMORY_LIMIT)
    assert result.returncode == 1, result.stderr
    assert "would need about" in result.stderr and "more than the limit of 8.0 GiB" in result.stderr
    assert not (tmp_path / "y.npy").exists()


def test_the_memory_limit_can_be_lowered_and_raised(tmp_path, cli):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    (tmp_path / "net.cnn").write_text(NET, encoding="utf-8")
    low = cli("run", "net.cnn", "--input", "x.npy", "-o", "y.npy", "--max-memory", "1K", cwd=tmp_path)
    assert low.returncode == 1 and "more than the limit" in low.stderr
    high = cli("run", "net.cnn", "--input", "x.npy", "-o", "y.npy", "--max-memory", "1G", cwd=tmp_path)
    assert high.returncode == 0, high.stderr


@pytest.mark.parametrize("command", [["run", "--input", "x.npy", "-o", "y.npy"], ["export", "-o", "m.py"]])
def test_a_stride_of_2_62_is_e901_before_running(tmp_path, cli, command):
    (tmp_path / "s.cnn").write_text("model S {\n  input x: [3, 8, 8]\n  x -> conv2d(4, 3, stride=4611686018427387904)"
                                    " -> flatten -> linear(2)\n}\n", encoding="utf-8")
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    result = cli(command[0], "s.cnn", *command[1:], cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "s.cnn:3:8: error[E901]: conv2d: stride 4611686018427387904 is larger than the limit" in result.stderr


# ------------------------------------------------------------------ 8. small ones


def test_diff_git_refuses_a_revision_that_looks_like_an_option(tmp_path, cli):
    (tmp_path / "net.cnn").write_text(NET, encoding="utf-8")
    result = cli("diff", "--git=--output=/tmp/owned", "net.cnn", cwd=tmp_path)
    assert result.returncode == 2 and "cannot start with '-'" in result.stderr


def test_cr_only_line_endings_count_lines():
    program = archdsl.loads("model A {\r  input x: [3, 8, 8]\r  # a comment\r  x -> nope\r}\r")
    assert [(d.code, d.span.line, d.span.column) for d in program.diagnostics] == [("E201", 4, 8)]


def test_a_utf8_bom_is_skipped(tmp_path, cli):
    (tmp_path / "net.cnn").write_bytes(b"\xef\xbb\xbf" + NET.encode())
    result = cli("check", "net.cnn", cwd=tmp_path)
    assert result.returncode == 0, result.stdout


def test_run_seed_must_be_non_negative(tmp_path, cli):
    (tmp_path / "net.cnn").write_text(NET, encoding="utf-8")
    result = cli("run", "net.cnn", "--input", "x.npy", "-o", "y.npy", "--seed", "-1", cwd=tmp_path)
    assert result.returncode == 2 and "--seed must be ≥ 0" in result.stderr


def test_a_lone_surrogate_in_loads_is_e103():
    program = archdsl.loads('model A {\n  input x: [3, 8, 8]\n  x -> conv2d(4, 3, padding="\udc80")\n}\n')
    assert [(d.code, d.span.line, d.span.column) for d in program.diagnostics] == [("E103", 3, 30)]
    render_text(program.diagnostics, program.sources).encode("utf-8")  # printable
