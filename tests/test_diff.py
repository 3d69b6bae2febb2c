"""archdsl diff: two files, or a file against its version at a git revision."""

import json
import subprocess

from conftest import run_cli

OLD = """model Net {
    input x: [3, 32, 32]
    logits = x -> conv1: conv2d(16, 3, padding=1) -> relu -> global_avgpool -> flatten -> fc: linear(10)
    output logits
}
"""
# conv1 doubled to 32 channels, a second conv added.
NEW = """model Net {
    input x: [3, 32, 32]
    logits = x -> conv1: conv2d(32, 3, padding=1) -> relu -> conv2: conv2d(32, 3, padding=1)
               -> global_avgpool -> flatten -> fc: linear(10)
    output logits
}
"""


def write(tmp_path, old=OLD, new=NEW):
    (tmp_path / "old.cnn").write_text(old)
    (tmp_path / "new.cnn").write_text(new)


def test_figures_before_after_and_percent(tmp_path):
    write(tmp_path)
    result = run_cli("diff", "old.cnn", "new.cnn", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (model,) = json.loads(result.stdout)["models"]
    # old: conv1 16·3·9 + 16 = 448, fc 16·10 + 10 = 170 -> 618
    # new: conv1 32·27 + 32 = 896, conv2 32·32·9 + 32 = 9,248, fc 330 -> 10,474
    params = model["figures"]["params"]
    assert (params["before"], params["after"]) == (618, 10_474)
    assert params["change"] == f"{100 * (10_474 - 618) / 618:+.2f}%"
    # MACs old: 32·32·16·27 + 160 = 442,528; new: 32·32·32·27 + 32·32·32·288 + 320 = 10,322,240
    macs = model["figures"]["macs"]
    assert (macs["before"], macs["after"]) == (442_528, 10_322_240)
    assert model["added"] == ["conv2"] and model["removed"] == []
    assert {c["node"] for c in model["changed"]} == {"conv1", "fc"}
    assert model["outputs"] == {"logits": {"before": [10], "after": [10]}}


def test_text_and_markdown(tmp_path):
    write(tmp_path)
    text = run_cli("diff", "old.cnn", "new.cnn", cwd=tmp_path).stdout
    assert "Trainable parameters" in text and "618 ->" in text and "added 1 layer(s): conv2" in text
    markdown = run_cli("diff", "old.cnn", "new.cnn", "--format", "markdown", cwd=tmp_path).stdout
    assert "| Trainable parameters | 618 (618) | 10,474 (10.47 K) |" in markdown


def test_against_a_git_revision(tmp_path):
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=tmp_path,
                       check=True, capture_output=True)

    (tmp_path / "net.cnn").write_text(OLD)
    git("init", "-q")
    git("add", "net.cnn")
    git("commit", "-qm", "old")
    (tmp_path / "net.cnn").write_text(NEW)
    result = run_cli("diff", "--git", "HEAD", "net.cnn", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["old"] == "HEAD:net.cnn"
    assert payload["models"][0]["figures"]["params"]["before"] == 618
    bad = run_cli("diff", "--git", "no-such-rev", "net.cnn", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_output_shape_change_is_flagged(tmp_path):
    write(tmp_path, new=OLD.replace("linear(10)", "linear(100)"))
    text = run_cli("diff", "old.cnn", "new.cnn", cwd=tmp_path).stdout
    assert "output logits: [10] -> [100]  (changed)" in text


def test_usage_errors(tmp_path):
    write(tmp_path)
    assert run_cli("diff", "new.cnn", cwd=tmp_path).returncode == 2
    assert run_cli("diff", "old.cnn", "missing.cnn", cwd=tmp_path).returncode == 2
    (tmp_path / "other.cnn").write_text(OLD.replace("model Net", "model Other"))
    assert run_cli("diff", "old.cnn", "other.cnn", cwd=tmp_path).returncode == 2
