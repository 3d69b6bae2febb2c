#!/bin/sh
# Installs what the test suite needs and runs it.
#   - Debian's graphviz (the `dot` program), chromium, nodejs and npm when missing and we are root;
#   - the VS Code extension's npm packages, from its lockfile (editors/vscode);
#   - archdsl itself with its test extras (onnx, onnxruntime, torch, atheris...);
#   - then lint (ruff), types (mypy) and pytest over tests/.
set -eu
cd "$(dirname "$0")/.."

if ! command -v dot >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null
    else
        echo "note: graphviz's 'dot' is not installed; tests that render through it will fail" >&2
    fi
fi

# Debian's chromium: tests/test_html_report.py opens the HTML report in it, headless.
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "note: chromium is not installed; the HTML report's browser tests will fail" >&2
    fi
fi

# Debian's nodejs and npm: tests/test_vscode_grammar.py runs the VS Code
# extension's grammar tests (vscode-tmgrammar-test) and its client test.
if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    else
        echo "note: npm is not installed; the VS Code extension's tests will fail" >&2
    fi
fi
if command -v npm >/dev/null 2>&1; then
    (cd editors/vscode && npm ci --no-audit --no-fund --loglevel=error)
fi

python3 -m pip install --quiet --disable-pip-version-check -e ".[test]"
echo "ruff check"
python3 -m ruff check archdsl tests benchmarks scripts
echo "mypy"
python3 -m mypy
exec python3 -m pytest "$@"
