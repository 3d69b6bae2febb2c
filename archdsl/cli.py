"""The ``archdsl`` command line.

Exit status: 0 clean, 1 problems found in the input, 2 usage error,
3 internal error (a bug in archdsl).
Heavy imports happen inside the commands that need them.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from .files import UnsafePath
from .importers.cli import add_import_command
from .importers.conventions import CONVENTIONS

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class UsageError(Exception):
    pass


class WorkerDied(Exception):
    """A worker process of ``check -j`` ended without a result (killed, out of memory, crashed)."""


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
        elif os.path.lexists(raw):
            raise UsageError(f"{raw} is not a regular file (a FIFO, a device or a broken symlink?)")
        else:
            raise UsageError(f"no such file or directory: {raw}")
    return files


def _one_file(raw: str) -> Path:
    """The FILE argument of a command that reads one file."""
    path = Path(raw)
    if path.is_dir():
        raise UsageError(f"{raw} is a folder; this command reads one .cnn file ('archdsl check' takes folders)")
    return path


def _load(path: Path, output: str | None = None):
    """The program in ``path``; with ``output``, a usage error if that is
    the file or one of its imports (docs/security.md, "Outputs")."""
    from .elaborate import load

    try:
        program = load(path)
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {path}: {error}") from None
    if output is not None:
        _check_output(Path(output), path, *program.sources)
    return program


def _check_output(output: Path, *inputs: str | Path | None) -> None:
    """A usage error unless ``output`` can be written (files.check_output)
    and is none of ``inputs``."""
    from .files import UnsafePath, check_output

    try:
        check_output(output, [i for i in inputs if i is not None])
    except UnsafePath as error:
        raise UsageError(str(error)) from None


def _print_diagnostics(program, args, stream, diagnostics=None) -> None:
    from .diagnostics.render import render_text

    diagnostics = program.diagnostics if diagnostics is None else diagnostics
    if diagnostics:
        stream.write(render_text(diagnostics, program.sources, color=_use_color(args.color, stream)))


def _input_shapes(values: Sequence[str] | None) -> dict[str, tuple[int, ...]]:
    """``--input-shape image=3x224x224`` (or ``3x224x224`` for the only input)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for raw in values or ():
        name, _, dims = raw.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.replace(",", "x").split("x"))
        except ValueError:
            raise UsageError(f"--input-shape {raw}: expected NAME=CxHxW, e.g. image=3x224x224") from None
        if not shape or min(shape) <= 0:
            raise UsageError(f"--input-shape {raw}: dimensions must be positive")
        shapes[name or "*"] = shape
    return shapes


def _resolve_inputs(model, shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    resolved = dict(shapes)
    if "*" in resolved:
        if len(model.inputs) != 1:
            raise UsageError(f"model {model.name} has {len(model.inputs)} inputs; name one: --input-shape NAME=CxHxW")
        resolved[model.inputs[0]] = resolved.pop("*")
    unknown = set(resolved) - set(model.inputs)
    if unknown:
        raise UsageError(f"model {model.name} has no input {', '.join(sorted(unknown))} "
                         f"(its inputs: {', '.join(model.inputs)})")
    for name, shape in resolved.items():
        declared = model.nodes[name].spec.shape
        if len(shape) != len(declared):
            raise UsageError(f"--input-shape {name}: {len(shape)} dimensions given, the model declares {len(declared)}")
    return resolved


def _select_models(program, name: str | None):
    if name is None:
        return program.models
    try:
        return [program.model(name)]
    except LookupError as error:
        raise UsageError(str(error)) from None


# ---------------------------------------------------------------- commands


def _config(args, path: Path):
    from .config import ConfigError, find_config, load_config

    try:
        config = load_config(Path(args.config)) if getattr(args, "config", None) else find_config(path)
        return config.with_overrides(select=_code_list(args.select), ignore=_code_list(args.ignore))
    except ConfigError as error:
        raise UsageError(str(error)) from None


def _code_list(text: str | None) -> list[str] | None:
    from .diagnostics.codes import BY_CODE

    if not text:
        return None
    codes = [c.strip().upper() for c in text.split(",") if c.strip()]
    for prefix in codes:
        if not any(code.startswith(prefix) for code in BY_CODE):
            raise UsageError(f"{prefix!r} matches no diagnostic code (see 'archdsl rules')")
    return codes


def _read_stdin(name: str):
    """``check -``: the text of one .cnn file from standard input; imports
    resolve against the current folder (or ``--stdin-filename``'s)."""
    from .elaborate import loads

    data = sys.stdin.buffer.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(f"standard input is not UTF-8: byte 0x{data[error.start]:02x} at offset {error.start}") \
            from None
    return loads(text, name=name, directory=Path(name).parent)  # imports confined to the named file's project


def _dependents(changed: list[Path]) -> list[Path]:
    """Every .cnn file of the changed files' repositories (or of the current
    folder, outside one) that imports one of them, directly or through other
    files: a pre-commit run that changes a block file checks the models
    built from it."""
    from .diagnostics.locations import repository_root

    targets = {path.resolve() for path in changed}
    roots = {repository_root(path.resolve().parent) or Path.cwd() for path in changed}
    found: list[Path] = []
    for root in sorted(roots):
        for candidate in sorted(root.rglob("*.cnn")):
            relative = candidate.relative_to(root).parts
            if candidate.resolve() in targets or any(part.startswith(".") for part in relative[:-1]):
                continue
            try:
                if "import" not in candidate.read_text(encoding="utf-8", errors="replace"):
                    continue
            except OSError:
                continue
            program = _load(candidate)
            if any(Path(name).resolve() in targets for name in program.sources if name != str(candidate)):
                found.append(candidate)
    return found


def _wants_infos(args) -> bool:
    selected = _code_list(args.select) or []
    return args.infos or any(prefix.startswith("I") for prefix in selected)


class _Checked(NamedTuple):
    """What ``archdsl check`` keeps of one file's report: what a worker
    process sends back (a FileReport's models and graphs stay behind)."""

    path: str
    strict: bool  # the file's configuration asks for --strict
    diagnostics: list
    models: tuple[str, ...]
    nodes: int
    sources: dict
    notes: tuple[str, ...]
    blocks: int
    analysed: bool  # some model was analysed (not skipped for --input-shape)
    has_models: bool


def _checked(report, strict: bool) -> _Checked:
    models = [a.model for a in report.analyses]
    return _Checked(str(report.path), strict, report.diagnostics, tuple(m.name for m in models),
                    sum(len(m.nodes) for m in models), report.program.sources, tuple(report.notes),
                    sum(len(m.blocks) for m in report.program.modules), bool(report.analyses),
                    bool(report.program.models))


def _check_file(path: Path, options: argparse.Namespace, shapes: dict[str, tuple[int, ...]]) -> _Checked:
    """One file of ``archdsl check``, in this process or in a worker;
    ``options`` holds --config, --select and --ignore."""
    from .checking import check_program

    config = _config(options, path)
    return _checked(check_program(_load(path), path, config=config, inputs=shapes), config.strict)


def _default_jobs() -> int:
    """The CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _ignore_interrupts() -> None:
    """A worker leaves Ctrl-C to the parent, which stops it (a worker
    interrupted on its own would print a traceback and break the pool)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Ctrl-C held back (blocked, not lost) while worker processes are
    forked: a child forked with SIGINT blocked keeps it blocked until its
    initializer ignores it, where an interrupt landing between the fork and
    the initializer raised inside the interpreter's after-fork hooks and
    printed "Exception ignored ... Traceback".  A Ctrl-C in that window
    reaches this process when the block ends."""
    import signal

    if not hasattr(signal, "pthread_sigmask"):  # not POSIX: nothing to hold
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _check_chunk(paths: list[Path], options: argparse.Namespace,
                 shapes: dict[str, tuple[int, ...]]) -> list[_Checked]:
    """A worker's task: a few files in turn."""
    return [_check_file(path, options, shapes) for path in paths]


def _check_files(paths: list[Path], options: argparse.Namespace, shapes: dict[str, tuple[int, ...]],
                 jobs: int) -> list[_Checked]:
    """Every file checked, in the order of ``paths``, by up to ``jobs``
    worker processes.  Each worker takes chunks of files in turn and parses
    the files they import once (elaborate._parse_import); the results come
    back in order, and an error a file raises (a usage error, a bug) is
    raised here in its turn: the output is that of ``-j 1``."""
    workers = min(jobs, len(paths))
    if workers <= 1:
        return [_check_file(path, options, shapes) for path in paths]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # fork: a worker starts with archdsl already imported (elsewhere, or
    # where fork is unsafe, the platform's default start method).
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
    chunk = max(1, min(16, len(paths) // (workers * 4)))  # a few chunks per worker: balanced, few round trips
    # What the workers inherit stays out of their collectors' reach: scanning
    # it would touch, and so copy, every page they share with this process.
    gc.freeze()
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_ignore_interrupts)
    interrupted = False
    try:
        with _interrupts_held():  # the workers are forked at the first submission
            futures = [pool.submit(_check_chunk, paths[start:start + chunk], options, shapes)
                       for start in range(0, len(paths), chunk)]
        # Not pool.map: its iterator cancels every future when interrupted, and
        # the pool's thread, failing them once their workers are gone, then
        # raised InvalidStateError with a traceback (CPython 3.11).
        return [checked for future in futures for checked in future.result()]
    except BrokenProcessPool as error:
        raise WorkerDied(str(error)) from None
    except KeyboardInterrupt:
        interrupted = True
        for child in multiprocessing.active_children():  # the workers: nothing else here starts processes
            child.terminate()
        raise
    finally:  # after an error in one file, the files being checked finish (those not started are dropped)
        # Interrupted, the futures are left alone: the pool fails them itself
        # when it finds its workers gone (a cancelled one made it raise).
        pool.shutdown(wait=not interrupted, cancel_futures=not interrupted)


def cmd_check(args) -> int:
    from . import __version__
    from .checking import check_program
    from .diagnostics import Severity
    from .diagnostics.render import CHECK_RENDERERS, CheckedFile, CheckOutput

    if args.statistics and args.format not in ("text", "json"):
        raise UsageError("--statistics applies to --format text (the json report always counts per code)")
    if args.output_file is not None and not Path(args.output_file).parent.is_dir():
        raise UsageError(f"--output-file: no such directory: {Path(args.output_file).parent}")
    shapes = _input_shapes(args.input)
    stdin = "-" in args.paths
    paths = _cnn_files([p for p in args.paths if p != "-"])
    if args.dependents:
        paths += [p for p in _dependents(paths) if p not in paths]
    results = []
    if stdin:
        config = _config(args, Path(args.stdin_filename).resolve())
        report = check_program(_read_stdin(args.stdin_filename), None, config=config, inputs=shapes)
        results.append(_checked(report, config.strict))
    options = argparse.Namespace(config=args.config, select=args.select, ignore=args.ignore)
    try:
        results += _check_files(paths, options, shapes, args.jobs or _default_jobs())
    except WorkerDied as error:
        print(f"archdsl: internal error: a worker process checking files died ({error}); out of memory, or a "
              "bug in archdsl: 'archdsl check -j 1' checks in one process and shows which file", file=sys.stderr)
        return EXIT_INTERNAL
    strict = args.strict or any(r.strict for r in results)
    if shapes and not any(r.analysed for r in results) and any(r.has_models for r in results):
        raise UsageError("no model checked takes the input size given: "
                         + "; ".join(note.removeprefix("skipped: ") for r in results for note in r.notes))
    show_infos = _wants_infos(args)
    hidden = 0
    # A block file imported by several models is reported once.
    seen: set[tuple] = set()
    files = []
    for result in results:
        fresh = []
        for d in result.diagnostics:
            if (d.code, d.span, d.message) not in seen:
                seen.add((d.code, d.span, d.message))
                if d.severity is Severity.INFO and not show_infos:
                    hidden += 1
                else:
                    fresh.append(d)
        files.append(CheckedFile(result.path, result.models, result.nodes, fresh, result.sources, result.notes,
                                 result.blocks))
    color = args.format == "text" and args.output_file is None and _use_color(args.color, sys.stdout)
    output = CheckOutput(color=color, quiet=args.quiet, version=__version__, statistics=args.statistics,
                         hidden_infos=hidden)
    text = CHECK_RENDERERS[args.format](files, output)
    if args.output_file is not None:
        from .files import write_atomic

        write_atomic(Path(args.output_file), text)
    else:
        sys.stdout.write(text)
    everything = [d for f in files for d in f.diagnostics]
    errors = any(d.severity is Severity.ERROR for d in everything)
    warnings = any(d.severity is Severity.WARNING for d in everything)
    failed = errors or (strict and warnings)
    return EXIT_PROBLEMS if failed else EXIT_OK


def cmd_parse(args) -> int:
    program = _load(_one_file(args.file))
    _print_diagnostics(program, args, sys.stderr)
    if not program.ok:
        return EXIT_PROBLEMS
    payload = {"models": [model.model_dump(mode="json") for model in program.models]}
    sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    return EXIT_OK


def _analyses(args):
    """Loads FILE and analyses its models as the options say."""
    from .analysis import analyze
    from .ops.base import Conventions

    program = _load(_one_file(args.file), getattr(args, "output", None))
    if not program.models and program.ok:
        raise UsageError(f"{args.file} defines no model")
    shapes = _input_shapes(args.input)
    analyses = []
    for model in _select_models(program, args.model):
        analyses.append(analyze(
            model,
            inputs=_resolve_inputs(model, shapes),
            batch=args.batch or 1,
            dtype=args.dtype,
            conventions=Conventions(batchnorm=args.batchnorm),
        ))
    diagnostics = program.diagnostics + [d for a in analyses for d in a.diagnostics]
    _print_diagnostics(program, args, sys.stderr, sorted(diagnostics, key=lambda d: d.sort_key()))
    from .diagnostics import has_errors

    return analyses, has_errors(diagnostics)


def cmd_summary(args) -> int:
    from . import report

    try:
        columns = report.parse_columns(args.columns)
    except ValueError as error:
        raise UsageError(str(error)) from None
    tree = args.tree or args.columns is not None
    if tree and args.format != "text":
        raise UsageError("--tree and --columns are for --format text")
    analyses, failed = _analyses(args)
    if args.format == "json":
        sys.stdout.write(report.render_json(analyses))
    elif tree:
        batch_in_shapes = args.batch is not None
        sys.stdout.write("\n".join(report.render_tree(a, args.depth, columns, batch_in_shapes) for a in analyses))
    else:
        render = {"text": report.render_text, "markdown": report.render_markdown, "csv": report.render_csv}[args.format]
        sys.stdout.write("\n".join(render(a, args.depth) for a in analyses))
    if args.convention:
        _print_conventions(analyses, args.convention, sys.stderr if args.format in ("json", "csv") else sys.stdout)
    return EXIT_PROBLEMS if failed else EXIT_OK


def _print_conventions(analyses, conventions: list[str], stream) -> None:
    """``summary --convention``: the totals as other tools print them (on
    stderr when stdout is a machine-readable document)."""
    from .importers.conventions import convention_totals

    for analysis in analyses:
        for convention in dict.fromkeys(conventions):
            print(f"{analysis.model.name} as {convention} counts: "
                  f"{convention_totals(analysis, convention).describe()}", file=stream)


def cmd_explain(args) -> int:
    from .explain import explain

    analyses, failed = _analyses(args)
    for analysis in analyses:
        if args.node in analysis.model.nodes:
            sys.stdout.write(explain(analysis, args.node))
            return EXIT_PROBLEMS if failed else EXIT_OK
    raise UsageError(_no_such_node(args.node, analyses))


def _no_such_node(name: str, analyses) -> str:
    """Why ``explain`` has nothing for NAME, and what it could explain."""
    from .diagnostics import did_you_mean

    for analysis in analyses:
        instance = analysis.model.blocks.get(name)
        if instance is not None:
            inside = [n for n in analysis.model.nodes if n.startswith(name + ".")]
            shown = ", ".join(inside[:6]) + (", ..." if len(inside) > 6 else "")
            return (f"'{name}' is an instance of block {instance.block}, not a node; explain one of its "
                    f"{len(inside)} nodes: {shown}")
    names = [n for a in analyses for n in a.model.nodes]
    related = [n for n in names if name in n]
    if related:
        hint = f"nodes with '{name}' in their name: {', '.join(related[:6])}" + (", ..." if len(related) > 6 else "")
    else:
        hint = did_you_mean(name, names) or "'archdsl summary FILE' lists every node"
    return f"no node named {name!r}; {hint}"


def cmd_diff(args) -> int:
    from . import diff
    from .analysis import analyze

    new_path = Path(args.new)
    labels = []
    with diff.temporary_directory() as scratch:
        if args.git:
            if args.old is not None:
                raise UsageError("give either OLD NEW or --git REV NEW, not both")
            try:
                old_path = diff.checkout_revision(args.git, new_path, Path(scratch))
            except diff.GitError as error:
                raise UsageError(f"--git {args.git}: {error}") from None
            labels = [f"{args.git}:{args.new}", args.new]
        else:
            if args.old is None:
                raise UsageError("give the old and the new file, or --git REV and the file")
            old_path = Path(args.old)
            labels = [args.old, args.new]
        programs = [_load(old_path), _load(new_path)]
    failed = False
    analyses = []
    for program in programs:
        _print_diagnostics(program, args, sys.stderr)
        failed = failed or not program.ok
        analyses.append({m.name: m for m in _select_models(program, args.model)})
    pairs = [(name, analyses[0][name], analyses[1][name]) for name in analyses[1] if name in analyses[0]]
    if not pairs:
        if failed:
            return EXIT_PROBLEMS
        raise UsageError("the two files have no model name in common; choose one with --model")
    shapes = _input_shapes(args.input)
    analysed = [(analyze(old, inputs=_resolve_inputs(old, shapes)), analyze(new, inputs=_resolve_inputs(new, shapes)))
                for _, old, new in pairs]
    diffs = [diff.compare(old, new) for old, new in analysed]
    if args.format == "html":
        sys.stdout.write(diff.render_html([(d, old, new) for d, (old, new) in zip(diffs, analysed)], *labels))
        return EXIT_PROBLEMS if failed else EXIT_OK
    render = {"text": diff.render_text, "markdown": diff.render_markdown, "json": diff.render_json}[args.format]
    sys.stdout.write(render(diffs, *labels))
    return EXIT_PROBLEMS if failed else EXIT_OK


RENDER_FORMATS = ("dot", "gv", "svg", "png", "pdf")


def cmd_render(args) -> int:
    from .emit.dot import FIGURES, RenderOptions, to_graphviz
    from .files import write_atomic

    output = Path(args.output)
    fmt = args.format or output.suffix.lstrip(".").lower()
    if fmt not in RENDER_FORMATS:
        raise UsageError(f"cannot tell the format of {output}; use one of .{', .'.join(RENDER_FORMATS)} "
                         "or --format")
    _check_output(output)
    show = tuple(s for s in (args.show or "").split(",") if s)
    unknown = set(show) - set(FIGURES)
    if unknown:
        raise UsageError(f"--show takes {', '.join(FIGURES)}; got {', '.join(sorted(unknown))}")
    analyses, failed = _analyses(args)
    if not analyses:
        return EXIT_PROBLEMS  # the file did not elaborate: nothing to draw
    if len(analyses) > 1:
        raise UsageError(f"{args.file} has {len(analyses)} models; choose one with --model")
    depth = args.depth
    options = RenderOptions(rankdir=args.rankdir, depth=depth if isinstance(depth, int) else None,
                            collapse_repeats=args.collapse_repeats, show=show, legend=not args.no_legend,
                            auto=depth == "auto")
    graph = to_graphviz(analyses[0], options)
    if fmt in ("dot", "gv"):
        write_atomic(output, graph.source)
    else:
        import graphviz

        try:
            # quiet: dot's warnings (e.g. a drawing scaled down to its size
            # limit) are about the layout, not the user's model.
            data = graph.pipe(format=fmt, quiet=True)
        except graphviz.ExecutableNotFound:
            print("archdsl: error: rendering ." + fmt + " needs Graphviz's 'dot' program, which is not on PATH; "
                  "install it (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz) "
                  "or write .dot instead", file=sys.stderr)
            return EXIT_PROBLEMS
        write_atomic(output, data)
    if not args.quiet:
        print(f"wrote {output}" + (" (with errors marked in red)" if failed else ""), file=sys.stderr)
    return EXIT_PROBLEMS if failed else EXIT_OK


def cmd_report(args) -> int:
    from .files import write_atomic
    from .html_report import make_diagram, render_report

    output = Path(args.output)
    if output.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"-o {args.output}: the report is an .html file")
    if not output.parent.is_dir():
        raise UsageError(f"no such directory: {output.parent}")
    analyses, failed = _analyses(args)
    if not analyses:
        return EXIT_PROBLEMS  # the file did not elaborate: the diagnostics above say why
    if len(analyses) > 1:
        raise UsageError(f"{args.file} has {len(analyses)} models; choose one with --model")
    analysis = analyses[0]
    program = _load(_one_file(args.file), args.output)
    diagnostics = sorted(program.diagnostics + analysis.diagnostics, key=lambda d: d.sort_key())
    page = render_report(analysis, source_name=args.file, diagnostics=diagnostics, sources=program.sources,
                         diagram=make_diagram(analysis))
    write_atomic(output, page)
    if not args.quiet:
        print(f"wrote {output}" + (" (with the errors found)" if failed else ""), file=sys.stderr)
    return EXIT_PROBLEMS if failed else EXIT_OK


def cmd_fmt(args) -> int:
    from .fmt import run

    stdin = args.paths == ["-"]
    return run([] if stdin else _cnn_files(args.paths), check=args.check, diff=args.diff,
               color=_use_color(args.color, sys.stderr), stdin_text=sys.stdin.read() if stdin else None)


def cmd_lsp(args) -> int:
    try:
        from .lsp import serve

        return serve()
    except ModuleNotFoundError as error:
        if error.name not in ("pygls", "lsprotocol"):
            raise
        raise UsageError("archdsl lsp needs pygls: pip install 'archdsl[lsp]'") from None


def parse_schema() -> dict:
    """The JSON Schema of what ``archdsl parse --json`` prints: an object
    whose ``models`` are elaborated models."""
    from .graph import json_schema

    model = json_schema()
    definitions = model.pop("$defs", {})
    definitions[model.get("title", "Model")] = model
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "archdsl parse --json",
        "type": "object",
        "properties": {"models": {"type": "array", "items": {"$ref": f"#/$defs/{model.get('title', 'Model')}"},
                                  "description": "The file's models, in order"}},
        "required": ["models"],
        "$defs": definitions,
    }


def cmd_schema(args) -> int:
    sys.stdout.write(json.dumps(parse_schema(), indent=2, sort_keys=True) + "\n")
    return EXIT_OK


def cmd_rules(args) -> int:
    from .diagnostics.codes import BY_CODE, CODES, describe, markdown

    if args.code:
        code = args.code.upper()
        if code not in BY_CODE:
            from .diagnostics import did_you_mean

            hint = did_you_mean(code, BY_CODE)
            raise UsageError(f"no diagnostic code {args.code!r}; " + (hint or "'archdsl rules' lists them"))
        sys.stdout.write(describe(BY_CODE[code]))
    elif args.markdown:
        sys.stdout.write(markdown())
    else:
        for code in CODES:
            print(f"{code.code}  {code.name:<22} {code.severity.value:<8} {code.summary}")
    return EXIT_OK


def cmd_ops(args) -> int:
    from .ops import OPS, Input
    from .ops.catalog import markdown, signature

    if args.markdown:
        sys.stdout.write(markdown())
    else:
        for op in OPS:
            if op is not Input:
                print(f"{op.family.value:<15} {signature(op)}")
    return EXIT_OK


# ------------------------------------------------------------------ the zoo


def cmd_zoo(args) -> int:
    from .model_zoo import zoo_models

    if getattr(args, "zoo_command", None) == "copy":
        return _zoo_copy(args)
    models = zoo_models()
    if not models:
        raise UsageError("this archdsl has no zoo (neither archdsl/zoo nor the repository's models/ is there)")
    if args.format == "json":
        sys.stdout.write(json.dumps({"models": [m.as_json() for m in models]}, indent=2) + "\n")
        return EXIT_OK
    width = max(len(m.name) for m in models)
    print(f"{'name':<{width}}  {'input':<17}  {'params':>13}  {'MACs':>17}  description")
    for m in models:
        shape = str(list(m.input)) if m.input is not None else "?"
        params = f"{m.params:,}" if m.params is not None else "?"
        macs = f"{m.macs:,}" if m.macs is not None else "?"
        print(f"{m.name:<{width}}  {shape:<17}  {params:>13}  {macs:>17}  {m.title}")
    return EXIT_OK


def _zoo_copy(args) -> int:
    from .files import write_atomic
    from .model_zoo import model_files, portable_text

    files = model_files()
    name = args.name.removesuffix(".cnn")
    if name not in files:
        from .diagnostics import did_you_mean

        hint = did_you_mean(name, files)
        raise UsageError(f"no zoo model {args.name!r}; " + (hint or "'archdsl zoo' lists them"))
    destination = Path(args.dest) if args.dest else Path(files[name].name)
    if destination.is_dir():
        destination = destination / files[name].name
    if os.path.lexists(destination) and not args.force:
        raise UsageError(f"{destination} exists; pass --force to replace it")
    _check_output(destination, files[name])
    write_atomic(destination, portable_text(files[name].read_text(encoding="utf-8")))
    print(f"wrote {destination} ({name}; its imports read std/, the blocks shipped with archdsl)")
    return EXIT_OK


# ------------------------------------------------------- export and run (NumPy)


class _RunError(Exception):
    """A problem with the data given to ``export``/``run``: exit 1."""


def _one_model(args):
    """The model of FILE that ``--model`` names (or its only one), with the
    file's diagnostics printed; None when the file has errors."""
    program = _load(_one_file(args.file), args.output)
    _print_diagnostics(program, args, sys.stderr)
    if not program.ok:
        return None
    if not program.models:
        raise UsageError(f"{args.file} defines no model")
    models = _select_models(program, args.model)
    if len(models) > 1:
        raise UsageError(f"{args.file} has {len(models)} models ({', '.join(m.name for m in models)}); "
                         "choose one with --model")
    return program, models[0]


def _plan(program, model, args, inputs):
    """The runtime plan, or None after printing why the model cannot run."""
    from .runtime import CompileError, make_plan

    try:
        return make_plan(model, inputs)
    except CompileError as error:
        _print_diagnostics(program, args, sys.stderr, sorted(error.diagnostics, key=lambda d: d.sort_key()))
        return None


#: ``export --to``: the target, the output file's suffix.
EXPORT_SUFFIXES = {"numpy": ".py", "onnx": ".onnx", "torch": ".py"}


def cmd_export(args) -> int:
    output = Path(args.output)
    suffix = EXPORT_SUFFIXES[args.to]
    if output.suffix != suffix:
        raise UsageError(f"-o {args.output}: the {args.to} export writes a {suffix} file")
    _check_output(output, args.weights)
    if args.to != "onnx" and (args.opset is not None or args.dynamic_batch):
        raise UsageError("--opset and --dynamic-batch apply to --to onnx")
    if args.to != "onnx" and args.weights is not None:
        raise UsageError("--weights applies to --to onnx (the NumPy and PyTorch modules load weights when they run)")
    if args.weights is not None and not Path(args.weights).is_file():
        raise UsageError(f"--weights: no such file: {args.weights}")
    if args.to == "onnx":
        _require_onnx(args)
    # ---- the one dispatch point of the export targets ----
    exporter = {"numpy": _export_numpy, "onnx": _export_onnx, "torch": _export_torch}[args.to]
    loaded = _one_model(args)
    if loaded is None:
        return EXIT_PROBLEMS
    program, model = loaded
    plan = _plan(program, model, args, _resolve_inputs(model, _input_shapes(args.input)))
    if plan is None:
        return EXIT_PROBLEMS
    try:
        return exporter(args, program, model, plan, output)
    except _RunError as error:
        print(f"archdsl: error: {error}", file=sys.stderr)
        return EXIT_PROBLEMS


def _parameter_count(plan) -> int:
    import math

    return sum(math.prod(shape) for key, shape, _, _ in plan.parameters if key not in plan.buffers)


def _export_numpy(args, program, model, plan, output: Path) -> int:
    from .emit.numpy_module import export
    from .files import write_atomic

    write_atomic(output, export(model, plan=plan))
    if not args.quiet:
        print(f"wrote {output}: class {model.name}, {len(plan.steps)} layers, {_parameter_count(plan):,} parameters; "
              "needs only NumPy", file=sys.stderr)
    return EXIT_OK


def _export_torch(args, program, model, plan, output: Path) -> int:
    from .diagnostics import Diagnostic
    from .emit.torch_module import TorchExportError, write_torch_module

    try:
        write_torch_module(model, output, source_name=Path(args.file).name)
    except TorchExportError as error:
        diagnostic = Diagnostic.make("E701", f"{error.node} cannot be exported to PyTorch: {error.message}", error.span)
        _print_diagnostics(program, args, sys.stderr, [diagnostic])
        return EXIT_PROBLEMS
    if not args.quiet:
        print(f"wrote {output}: nn.Module {model.name}, {len(plan.steps)} layers, {_parameter_count(plan):,} "
              "parameters; needs PyTorch (pip install 'archdsl[torch]')", file=sys.stderr)
    return EXIT_OK


def _require_onnx(args) -> None:
    """Usage error (exit 2) naming the extra when onnx is missing; checks --opset."""
    from .emit.onnx import OPSETS, OnnxUnavailable, require_onnx

    try:
        require_onnx()
    except OnnxUnavailable as error:
        raise UsageError(str(error)) from None
    if args.opset is not None and args.opset not in OPSETS:
        raise UsageError(f"--opset {args.opset}: the ONNX export supports opsets {OPSETS.start} to {OPSETS.stop - 1}")


def _load_weights(path: Path, plan) -> dict:
    """A state dict from an .npz archive, or (when torch is installed) a
    PyTorch checkpoint read with ``weights_only=True``; checked against the
    plan's keys and shapes."""
    from .runtime import CompiledModel

    if path.suffix in (".pt", ".pth", ".ckpt", ".bin"):
        state = _read_torch_checkpoint(path)
    else:
        state = _read_array_file(path)
        if not isinstance(state, dict):
            raise _RunError(f"--weights {path}: an .npz archive of arrays named by state_dict key is needed, "
                            "not a single array")
    try:
        return CompiledModel(plan, weights=state).state_dict()
    except ValueError as error:
        raise _RunError(f"{path}: {error}") from None


def _read_torch_checkpoint(path: Path) -> dict:
    try:
        import torch
    except ImportError:
        raise UsageError(f"--weights {path}: reading a PyTorch checkpoint needs torch; "
                         "or save the state_dict as .npz") from None
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling refuses anything but tensors and containers
        raise _RunError(f"cannot read {path} as a PyTorch checkpoint (weights_only): {error}") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise _RunError(f"{path}: expected a state_dict (a mapping of names to tensors)")
    return {str(key): value.detach().cpu().numpy() for key, value in loaded.items()}


def _export_onnx(args, program, model, plan, output: Path) -> int:
    from .emit.onnx import DEFAULT_OPSET, OnnxExportError, build, write
    from .runtime import CompiledModel

    if args.weights is not None:
        state = _load_weights(Path(args.weights), plan)
    else:
        state = CompiledModel(plan, seed=args.seed).state_dict()
    opset = args.opset or DEFAULT_OPSET
    try:
        proto = build(model, plan.shapes, state, opset=opset, dynamic_batch=args.dynamic_batch)
    except OnnxExportError as error:
        _print_diagnostics(program, args, sys.stderr, error.diagnostics)
        return EXIT_PROBLEMS
    written = write(proto, output)
    if not args.quiet:
        source = f"weights {args.weights}" if args.weights else f"seeded weights (--seed {args.seed})"
        batch = "dynamic batch" if args.dynamic_batch else "batch 1"
        print(f"wrote {', '.join(str(p) for p in written)}: {model.name}, opset {opset}, IR {proto.ir_version}, "
              f"{len(proto.graph.node)} nodes, {_parameter_count(plan):,} parameters, {batch}, {source}",
              file=sys.stderr)
    return EXIT_OK


def _read_array_file(path: Path):
    """An .npy array or an .npz archive (``allow_pickle=False``)."""
    import numpy as np

    try:
        with open(path, "rb") as handle:
            magic = handle.read(6)
        if magic != b"\x93NUMPY" and not magic.startswith(b"PK"):
            raise _RunError(f"{path} is not a NumPy .npy or .npz file")
        data = np.load(path, allow_pickle=False)
        if hasattr(data, "files"):
            with data:
                return {key: data[key] for key in data.files}
        return data
    except (OSError, ValueError, EOFError) as error:
        raise _RunError(f"cannot read {path}: {error}") from None
    except Exception as error:  # a corrupt zip archive raises zipfile's own errors
        raise _RunError(f"cannot read {path}: {type(error).__name__}: {error}") from None


def _run_inputs(model, specs: Sequence[str] | None) -> dict:
    """``--input [NAME=]PATH`` as one array per model input."""
    import numpy as np

    named: dict[str, tuple[Path, object]] = {}
    for raw in specs or ():
        name, sep, path = raw.partition("=")
        if not sep or name not in model.inputs:
            name, path = "", raw
        file = Path(path)
        if not file.is_file():
            raise UsageError(f"--input {raw}: no such file: {path}")
        data = _read_array_file(file)
        if isinstance(data, dict):
            if name:
                if name not in data:
                    raise _RunError(f"{path} has no array named {name!r} (it has: {', '.join(data) or 'none'})")
                data = data[name]
            else:
                unknown = sorted(set(data) - set(model.inputs))
                if unknown:
                    raise _RunError(f"{path} holds {', '.join(unknown)}, which {model.name} has no input for "
                                    f"(its inputs: {', '.join(model.inputs)})")
                for key, array in data.items():
                    if key in named:
                        raise UsageError(f"input {key!r} given twice")
                    named[key] = (file, array)
                continue
        if not name:
            if len(model.inputs) != 1:
                raise UsageError(f"{model.name} has {len(model.inputs)} inputs; name each: "
                                 f"--input {model.inputs[0]}=PATH")
            name = model.inputs[0]
        if name in named:
            raise UsageError(f"input {name!r} given twice")
        named[name] = (file, data)
    missing = [name for name in model.inputs if name not in named]
    if missing:
        raise UsageError(f"no data for input {', '.join(missing)}: --input {missing[0]}=PATH.npy")
    arrays = {}
    for name in model.inputs:
        file, array = named[name]
        array = np.asarray(array)
        declared = tuple(model.nodes[name].spec.shape)
        if array.dtype.kind not in "fiu":
            raise _RunError(f"{file}: input {name!r} must hold numbers, not {array.dtype} values")
        wanted = "[N, " + ", ".join(str(d) for d in declared) + "]"
        if array.ndim != len(declared) + 1:
            hint = "; add the batch dimension (x[None])" if array.ndim == len(declared) else ""
            raise _RunError(f"{file}: input {name!r} has shape {list(array.shape)}; {model.name} takes {wanted}{hint}")
        if array.shape[0] < 1 or array.shape[1] != declared[0]:
            raise _RunError(f"{file}: input {name!r} has shape {list(array.shape)}; {model.name} takes {wanted}")
        arrays[name] = array
    return arrays


def cmd_run(args) -> int:
    import io

    if args.threads is not None:
        # OpenBLAS reads its thread count once, when NumPy loads (not yet, from the command line).
        os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.threads)
        from .runtime import set_num_threads

        set_num_threads(args.threads)
    import numpy as np

    from .files import write_atomic
    from .runtime import CompiledModel

    output = Path(args.output)
    if output.suffix not in (".npy", ".npz"):
        raise UsageError(f"-o {args.output}: write .npy (one output) or .npz (outputs by name)")
    _check_output(output, args.weights, *(part for raw in args.input or () for part in (raw, raw.partition("=")[2])))
    if args.weights is not None and not Path(args.weights).is_file():
        raise UsageError(f"--weights: no such file: {args.weights}")
    loaded = _one_model(args)
    if loaded is None:
        return EXIT_PROBLEMS
    program, model = loaded
    if output.suffix == ".npy" and len(model.outputs) > 1:
        raise UsageError(f"{model.name} has {len(model.outputs)} outputs ({', '.join(model.outputs)}); "
                         "write them to an .npz file")
    try:
        arrays = _run_inputs(model, args.input)
        sizes = {name: tuple(int(d) for d in array.shape[1:]) for name, array in arrays.items()}
        plan = _plan(program, model, args, sizes)
        if plan is None:
            print(f"archdsl: error: {model.name} cannot run at input size "
                  + ", ".join(f"{name} {list(shape)}" for name, shape in sizes.items()), file=sys.stderr)
            return EXIT_PROBLEMS
        _check_memory(plan, arrays, args)
        weights = None
        if args.weights is not None:
            weights = _read_array_file(Path(args.weights))
            if not isinstance(weights, dict):
                raise _RunError(f"--weights {args.weights}: an .npz archive of arrays named by state_dict key "
                                "is needed, not a single array")
        try:
            net = CompiledModel(plan, seed=args.seed, dtype=args.dtype, weights=weights)
        except ValueError as error:
            raise _RunError(f"{args.weights}: {error}" if args.weights else str(error)) from None
        result = net(**arrays)
    except _RunError as error:
        print(f"archdsl: error: {error}", file=sys.stderr)
        return EXIT_PROBLEMS
    if args.profile:
        _print_profile(net, arrays, args)
    results = result if isinstance(result, dict) else {next(iter(model.outputs)): result}
    buffer = io.BytesIO()
    if output.suffix == ".npy":
        np.save(buffer, next(iter(results.values())), allow_pickle=False)
    else:
        np.savez(buffer, **results)
    write_atomic(output, buffer.getvalue())
    if not args.quiet:
        shapes = ", ".join(f"{name} {list(value.shape)}" for name, value in results.items())
        source = f"weights {args.weights}" if args.weights else f"seeded weights (--seed {args.seed})"
        print(f"wrote {output}: {shapes} {args.dtype}, {model.name} with {source}", file=sys.stderr)
    return EXIT_OK


def _print_profile(net, arrays: dict, args) -> None:
    """``run --profile``: the time per op kind and per node of the fastest
    of ``--profile-runs`` passes after the run that wrote the output (the
    warm-up), on stdout."""
    profiles = [net.profile(**arrays) for _ in range(args.profile_runs)]
    fastest = min(profiles, key=lambda profile: profile.total)
    batch = max(int(array.shape[0]) for array in arrays.values())
    from .runtime import get_num_threads

    print(f"{net.NAME}, batch {batch}, {net.dtype}, {get_num_threads()} thread(s): the fastest of "
          f"{args.profile_runs} profiled pass(es)")
    if net.last_parts > 1:
        print(f"(a profiled pass runs the batch whole; the run itself cut it into {net.last_parts} parts, one per "
              "thread, joined before the head)")
    print(fastest.table(args.profile_top), flush=True)


def _check_memory(plan, arrays: dict, args) -> None:
    """Refuses (exit 1) a run whose estimated memory is over ``--max-memory``,
    before anything is allocated (archdsl/runtime/budget.py)."""
    from .runtime.budget import DEFAULT_MAX_MEMORY, gib, memory_estimate

    limit = args.max_memory or DEFAULT_MAX_MEMORY
    batch = max((int(array.shape[0]) for array in arrays.values()), default=1)
    needed = memory_estimate(plan, batch=batch, dtype=args.dtype)
    if needed > limit:
        raise _RunError(f"{plan.model.name} would need about {gib(needed)} at batch {batch} "
                        + ", ".join(f"{name} {list(shape)}" for name, shape in plan.inputs.items())
                        + f" ({args.dtype}), more than the limit of {gib(limit)}; "
                        "raise it with --max-memory if the machine has it")


def _memory_size(text: str) -> int:
    """``--max-memory``: bytes, or a number with K, M, G or T (powers of 1024)."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    raw = text.strip().upper().removesuffix("B").removesuffix("I")
    try:
        value = float(raw[:-1]) * units[raw[-1]] if raw and raw[-1] in units else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size such as 16G or 500M, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive size, got {text!r}")
    return int(value)


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed must be an integer ≥ 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"--seed must be ≥ 0, got {value}")
    return value


def _runtime_commands(add, color_option) -> None:
    """The parser entries of ``export`` and ``run``."""
    p = add("export", cmd_export, "Write the model as a standalone NumPy module (.py) or an ONNX file (.onnx).")
    p.add_argument("file", help="the .cnn file")
    p.add_argument("-o", "--output", required=True, help="the file to write, e.g. model_np.py or model.onnx")
    p.add_argument("--to", choices=tuple(EXPORT_SUFFIXES), default="numpy",
                   help="numpy: a standalone module (default); onnx: an ONNX model with its weights; torch")
    p.add_argument("--model", help="the model to export when the file has several")
    _input_shape_option(p, "the input shape the module takes (batch excluded), if not the declared one")
    p.add_argument("--opset", type=int, help="ONNX opset (default 20)")
    p.add_argument("--dynamic-batch", action="store_true", help="ONNX: a symbolic batch dimension (default: 1)")
    p.add_argument("--weights", metavar="FILE",
                   help="weights by state_dict key: .npz, or a PyTorch checkpoint (.pt/.pth, needs torch; "
                        "read with weights_only=True); default: seeded init")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the default initialisation (default 0)")
    p.add_argument("-q", "--quiet", action="store_true")
    color_option(p)

    p = add("run", cmd_run, "Run the model with NumPy on input arrays (.npy/.npz); write its outputs.")
    p.add_argument("file", help="the .cnn file")
    p.add_argument("--input", action="append", metavar="[NAME=]PATH",
                   help="an .npy array [N, C, ...] for an input (NAME= when there are several), "
                        "or an .npz of arrays named by input")
    p.add_argument("-o", "--output", required=True, help=".npy for the output, or .npz for outputs by name")
    p.add_argument("--weights", metavar="NPZ", help="weights by PyTorch state_dict key (default: seeded init)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the default initialisation (default 0)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--max-memory", type=_memory_size, metavar="SIZE",
                   help="refuse a run estimated to need more memory than this (default 8G; K, M, G, T are "
                        "powers of 1024)")
    p.add_argument("--model", help="the model to run when the file has several")
    p.add_argument("--threads", type=_positive_int, metavar="N",
                   help="threads of the run: NumPy's BLAS, and the parts a batch may be cut into (default: "
                        "OPENBLAS_NUM_THREADS or OMP_NUM_THREADS, else every CPU the process may use)")
    p.add_argument("--profile", action="store_true",
                   help="after the run, time each node's kernel and print the time per op kind and per node")
    p.add_argument("--profile-runs", type=_positive_int, default=5, metavar="N",
                   help="--profile: profiled passes; the fastest is printed (default 5)")
    p.add_argument("--profile-top", type=_positive_int, metavar="N",
                   help="--profile: show only the N slowest nodes (default: every node)")
    p.add_argument("-q", "--quiet", action="store_true")
    color_option(p)


# ---------------------------------------------------------------- parser


class _DeprecatedInputShape(argparse.Action):
    """``--input NAME=CxHxW`` in the commands that take a shape: the old
    spelling of ``--input-shape`` (``run`` reads files with ``--input``)."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"archdsl: warning: {option_string} {values}: --input is now --input-shape here "
              "(run's --input reads a file); the old spelling will be removed", file=sys.stderr)
        items = list(getattr(namespace, self.dest) or [])
        items.append(values)
        setattr(namespace, self.dest, items)


def _input_shape_option(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument("--input-shape", action="append", dest="input", metavar="NAME=CxHxW", help=help_text)
    p.add_argument("--input", action=_DeprecatedInputShape, dest="input", metavar="NAME=CxHxW",
                   help=argparse.SUPPRESS)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _render_depth(text: str) -> int | str:
    """``render --depth``: auto, all, or a positive integer."""
    if text in ("auto", "all"):
        return text
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected auto, all or a positive integer, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="archdsl", description="A CNN architecture language and its analyser.")
    parser.add_argument("--version", action="version", version=f"archdsl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    def color_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                       help="colour diagnostics (auto: on a terminal, unless NO_COLOR is set)")

    p = add("check", cmd_check, "Parse and elaborate .cnn files; report every problem.")
    p.add_argument("paths", nargs="+", metavar="FILE|DIR",
                   help="files, folders searched for *.cnn, or - for a file on standard input")
    p.add_argument("--format", choices=("text", "json", "sarif", "github", "gitlab", "junit"), default="text",
                   help="text for people; json, sarif (code scanning), github (workflow annotations), gitlab "
                        "(Code Quality) or junit (JUnit XML) for machines")
    p.add_argument("--output-file", "-o", metavar="FILE", help="write the report to FILE instead of standard output")
    p.add_argument("--statistics", action="store_true", help="count the diagnostics per code instead of listing them")
    p.add_argument("--infos", action="store_true",
                   help="show information diagnostics (I codes; hidden unless asked for, but counted)")
    p.add_argument("--dependents", action="store_true",
                   help="also check every .cnn file in the repository that imports a given file, transitively "
                        "(what the pre-commit hook does)")
    p.add_argument("--stdin-filename", metavar="PATH", default="<stdin>",
                   help="the name of the file read from standard input (-): in messages, and where its imports "
                        "and pyproject.toml are looked up")
    p.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    p.add_argument("--select", metavar="CODES", help="comma-separated code prefixes to report, e.g. W,I302")
    p.add_argument("--ignore", metavar="CODES", help="comma-separated code prefixes to drop, e.g. W202")
    p.add_argument("--config", metavar="PYPROJECT", help="use this pyproject.toml instead of the nearest one")
    p.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    p.add_argument("-j", "--jobs", type=_positive_int, metavar="N",
                   help="check the files in N worker processes (default: one per CPU core; 1: in this process); "
                        "the output is the same, in the same order")
    _input_shape_option(p, "check at another input size (batch excluded); models without the input are skipped, "
                           "and their expect statements are not judged")
    color_option(p)

    def analysis_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("file", help="the .cnn file")
        p.add_argument("--model", help="the model to analyse when the file has several (default: all)")
        _input_shape_option(p, "override an input's shape (batch excluded); repeat for several inputs")
        p.add_argument("--batch", type=_positive_int, help="batch size for MACs, FLOPs and activations (default 1)")
        p.add_argument("--dtype", choices=("float32", "float16", "bfloat16", "float64", "int8"), default="float32")
        p.add_argument("--batchnorm", choices=("counted", "folded"), default="counted",
                       help="count batchnorm FLOPs, or assume it is folded into the preceding conv")
        color_option(p)

    p = add("summary", cmd_summary, "Per-layer shapes, parameters, MACs and receptive fields, with totals.")
    analysis_options(p)
    p.add_argument("--depth", type=_positive_int, help="collapse names deeper than N components into one row")
    p.add_argument("--format", choices=("text", "json", "csv", "markdown"), default="text")
    p.add_argument("--tree", action="store_true",
                   help="scopes as rows with their totals, layers indented under them (text format)")
    p.add_argument("--columns", metavar="COLS",
                   help="tree view columns, comma-separated: input,output,kernel,params,macs,memory,rf,connected "
                        "(default output,params,macs,rf); implies --tree; with --batch, shapes include it")
    p.add_argument("--convention", action="append", choices=CONVENTIONS, metavar="TOOL",
                   help="also print the totals as TOOL counts them: " + ", ".join(CONVENTIONS)
                        + " (docs/import.md); repeat for several")

    p = add("explain", cmd_explain, "Show the arithmetic behind one node's shape, parameters and MACs.")
    analysis_options(p)
    p.add_argument("node", help="node name, e.g. layer1.0.conv1 ('archdsl summary FILE' lists them)")

    p = add("parse", cmd_parse, "Print the elaborated layer graph of a file as JSON.")
    p.add_argument("file", help="the .cnn file")
    p.add_argument("--json", action="store_true", help="JSON output (the only format; accepted for clarity)")
    color_option(p)

    add("schema", cmd_schema, "Print the JSON Schema of what 'parse --json' prints.")

    p = add("render", cmd_render, "Draw the model with Graphviz (.dot, .svg, .png, .pdf).")
    analysis_options(p)
    p.add_argument("-o", "--output", required=True, help="output file; the format follows the extension")
    p.add_argument("--format", choices=RENDER_FORMATS, help="override the format given by the extension")
    p.add_argument("--rankdir", choices=("TB", "LR", "BT", "RL"), default="TB", help="layout direction")
    p.add_argument("--depth", type=_render_depth, default="auto",
                   help="auto (default: the deepest view with at most 60 nodes and 24 ranks), all (every layer), "
                        "or N: collapse names deeper than N components into one node per scope")
    p.add_argument("--collapse-repeats", action="store_true",
                   help="draw each run of identical block instances as one node, marked ×N")
    p.add_argument("--show", metavar="FIGURES", help="comma-separated per-node figures: params,macs,flops")
    p.add_argument("--no-legend", action="store_true", help="omit the colour legend")
    p.add_argument("-q", "--quiet", action="store_true")

    p = add("report", cmd_report, "Write one self-contained HTML page: totals, diagnostics, charts, the diagram "
                                  "and the layer table.")
    analysis_options(p)
    p.add_argument("-o", "--output", required=True, help="the .html file to write")
    p.add_argument("-q", "--quiet", action="store_true")

    p = add("diff", cmd_diff, "Compare two versions of a model: parameters, MACs, memory, output shapes.")
    p.add_argument("old", nargs="?", help="the old file (omit with --git)")
    p.add_argument("new", help="the new file")
    p.add_argument("--git", metavar="REV", help="compare NEW with its version at git revision REV")
    p.add_argument("--model", help="the model to compare when the files have several")
    _input_shape_option(p, "override an input's shape (batch excluded)")
    p.add_argument("--format", choices=("text", "markdown", "json", "html"), default="text",
                   help="html: one self-contained page with both diagrams, changes highlighted")
    color_option(p)

    p = add("ops", cmd_ops, "List the ops and their arguments.")
    p.add_argument("--markdown", action="store_true", help="print docs/ops.md")

    p = add("rules", cmd_rules, "List every diagnostic code and lint rule, or explain one.")
    p.add_argument("code", nargs="?", help="a code, e.g. W203: print its documentation")
    p.add_argument("--markdown", action="store_true", help="print docs/rules.md")

    p = add("zoo", cmd_zoo, "List the shipped models with their parameters and MACs, or copy one out.")
    p.add_argument("--format", choices=("text", "json"), default="text")
    zoo = p.add_subparsers(dest="zoo_command", metavar="copy")
    q = zoo.add_parser("copy", help="copy one shipped model", description="Copy one shipped model file, its "
                       "imports rewritten to std/ so that it works outside the package.")
    q.add_argument("name", help="the model's name, as 'archdsl zoo' lists it (e.g. resnet18)")
    q.add_argument("dest", nargs="?", help="the file or folder to write (default: NAME.cnn here)")
    q.add_argument("--force", action="store_true", help="replace an existing file")

    p = add("fmt", cmd_fmt, "Lay out .cnn files canonically (whitespace, line breaks and trailing commas only).")
    p.add_argument("paths", nargs="+", metavar="FILE|DIR", help="files, folders searched for *.cnn, or - (stdin "
                                                                "to stdout)")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file would be reformatted")
    p.add_argument("--diff", action="store_true", help="print a unified diff instead of rewriting files")
    color_option(p)

    add("lsp", cmd_lsp, "Run the language server on standard input and output (needs archdsl[lsp]).")

    _runtime_commands(add, color_option)
    add_import_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Pydantic looks for plugins when it builds the first validator, by
    # reading the entry points of every installed distribution (3.6 ms here,
    # more in a large environment).  archdsl's models need none, and this
    # process is archdsl's own; a user's explicit setting wins.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:  # no command: say what there is
        sys.stdout.write(parser.format_help())
        print("archdsl: error: name a command, e.g. archdsl check models/", file=sys.stderr)
        return EXIT_USAGE
    try:
        status = args.handler(args)
        # The process is about to end: move everything out of the collector's
        # reach so interpreter shutdown does not scan it (15-30 ms per run).
        gc.freeze()
        return status
    except (UsageError, UnsafePath) as error:  # UnsafePath: an output that turned unwritable after its check
        print(f"archdsl: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    except Exception:  # a bug in archdsl, never the user's fault: say so, then show where
        import traceback

        print("archdsl: internal error: this is a bug in archdsl, not in your file; please report it "
              "with the input that caused it", file=sys.stderr)
        traceback.print_exc()
        return EXIT_INTERNAL
