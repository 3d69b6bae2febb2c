"""The ``archdsl`` command line.

Exit status: 0 clean, 1 problems found in the input, 2 usage error.
Heavy imports happen inside the commands that need them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


def _use_color(choice: str, stream) -> bool:
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def _cnn_files(paths: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.cnn") if p.is_file())
            if not found:
                raise UsageError(f"no .cnn files under {raw}")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"no such file or directory: {raw}")
    return files


def _load(path: Path):
    from .elaborate import load

    try:
        return load(path)
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {path}: {error}") from None


def _print_diagnostics(program, args, stream) -> None:
    from .diagnostics.render import render_text

    if program.diagnostics:
        stream.write(render_text(program.diagnostics, program.sources, color=_use_color(args.color, stream)))


# ---------------------------------------------------------------- commands


def cmd_check(args) -> int:
    from .diagnostics import Severity

    files = _cnn_files(args.paths)
    results = []
    errors = warnings = 0
    for path in files:
        program = _load(path)
        results.append((path, program))
        errors += sum(d.severity is Severity.ERROR for d in program.diagnostics)
        warnings += sum(d.severity is Severity.WARNING for d in program.diagnostics)
    if args.format == "json":
        payload = {
            "files": [
                {
                    "path": str(path),
                    "models": [m.name for m in program.models],
                    "diagnostics": [d.to_dict() for d in program.diagnostics],
                }
                for path, program in results
            ],
            "errors": errors,
            "warnings": warnings,
        }
        sys.stdout.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    else:
        for path, program in results:
            _print_diagnostics(program, args, sys.stdout)
            if not program.diagnostics and not args.quiet:
                nodes = sum(len(m.nodes) for m in program.models)
                models = ", ".join(m.name for m in program.models) or "no models"
                print(f"{path}: ok ({models}; {nodes} nodes)")
        if not args.quiet or errors or warnings:
            print(f"checked {len(files)} file{'s' if len(files) != 1 else ''}: "
                  f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}")
    failed = errors or (args.strict and warnings)
    return EXIT_PROBLEMS if failed else EXIT_OK


def cmd_parse(args) -> int:
    program = _load(Path(args.file))
    _print_diagnostics(program, args, sys.stderr)
    if not program.ok:
        return EXIT_PROBLEMS
    payload = {"models": [model.model_dump(mode="json") for model in program.models]}
    sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    return EXIT_OK


def cmd_schema(args) -> int:
    from .graph import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
    return EXIT_OK


def cmd_codes(args) -> int:
    from .diagnostics.codes import CODES, markdown

    if args.markdown:
        sys.stdout.write(markdown())
    else:
        for code in CODES:
            print(f"{code.code}  {code.name:<22} {code.severity.value:<8} {code.summary}")
    return EXIT_OK


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="archdsl", description="A CNN architecture language and its analyser.")
    parser.add_argument("--version", action="version", version=f"archdsl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    def color_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                       help="colour diagnostics (auto: on a terminal, unless NO_COLOR is set)")

    p = add("check", cmd_check, "Parse and elaborate .cnn files; report every problem.")
    p.add_argument("paths", nargs="+", metavar="FILE|DIR", help="files, or folders searched for *.cnn")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    p.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    color_option(p)

    p = add("parse", cmd_parse, "Print the elaborated layer graph of a file as JSON.")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="JSON output (the only format; accepted for clarity)")
    color_option(p)

    add("schema", cmd_schema, "Print the JSON Schema of the layer graph that 'parse' prints.")

    p = add("codes", cmd_codes, "List the diagnostic codes.")
    p.add_argument("--markdown", action="store_true", help="print docs/diagnostics.md")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"archdsl: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK
