"""The ``archdsl import`` subcommand (registered by archdsl/cli.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def add_import_command(subparsers) -> argparse.ArgumentParser:
    help_text = ("Convert a Caffe deploy .prototxt, a Darknet .cfg (and its .weights), an ONNX model "
                 "(and its initializers) or a PyTorch nn.Module (module.path:callable, traced with torch.fx) "
                 "into a .cnn file.")
    p = subparsers.add_parser("import", help=help_text, description=help_text)
    p.set_defaults(handler=cmd_import)
    p.add_argument("source", help="deploy.prototxt (Caffe), network.cfg (Darknet), model.onnx, or a PyTorch "
                   "module.path:callable or file.py:callable (importing it runs its code)")
    p.add_argument("-o", "--output", required=True, help="the .cnn file to write")
    p.add_argument("--from", dest="format", choices=("caffe", "darknet", "onnx", "torch"),
                   help="the source format (default: from the extension, .prototxt, .cfg or .onnx, or torch "
                   "for module:callable)")
    p.add_argument("--weights", nargs="?", const="", metavar="FILE",
                   help="Darknet .weights to convert into an .npz that 'archdsl run --weights' loads; for ONNX, "
                   "no value: the model's own initializers are converted; for PyTorch, the module's state_dict is "
                   "written (no value: beside the .cnn, or give the .npz path)")
    p.add_argument("--weights-output", metavar="NPZ", help="where to write the converted weights "
                   "(default: the -o path with .npz)")
    p.add_argument("--input-shape", action="append", metavar="C,H,W",
                   help="PyTorch: the shape of an input without the batch, once per input of forward "
                   "(default 3,224,224)")
    p.add_argument("--kwargs", metavar="JSON", help="PyTorch: keyword arguments for the callable, a JSON object "
                   "(default: called with none)")
    p.add_argument("--flat", action="store_true", help="write every layer in place, without recognising repeated "
                   "structures as blocks and repeat")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto", help="colour diagnostics")
    p.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    return p


#: The largest Darknet .weights file read (YOLOv4's is 258 MB).
MAX_WEIGHTS_BYTES = 4 * 2**30


def cmd_import(args) -> int:
    from ..cli import UsageError, _check_output, _use_color
    from ..diagnostics.model import DiagnosticError
    from ..diagnostics.render import render_text
    from ..elaborate import Limits
    from ..files import read_capped, write_atomic
    from ..source import SourceFile
    from . import detect_format, import_source

    source_path, output = Path(args.source), Path(args.output)
    fmt = args.format or detect_format(source_path)
    if fmt is None and not source_path.exists():
        from .pytorch import is_torch_spec

        fmt = "torch" if is_torch_spec(args.source) else None
    if fmt is None:
        raise UsageError(f"{args.source}: cannot tell the format from the extension; use --from "
                         "caffe|darknet|onnx|torch (a PyTorch model is named module.path:callable)")
    if fmt != "torch" and (args.input_shape or args.kwargs is not None):
        raise UsageError("--input-shape and --kwargs are for PyTorch models (module.path:callable)")
    if output.suffix != ".cnn":
        raise UsageError(f"-o {args.output}: the output is a .cnn file and must end in .cnn")
    if fmt == "onnx":
        return _import_onnx(args, source_path, output)
    if fmt == "torch":
        return _import_torch(args, output)
    if args.weights == "":
        raise UsageError("--weights: name the Darknet .weights file")
    _check_output(output, args.source, args.weights)
    if args.weights is not None and fmt != "darknet":
        raise UsageError("--weights: only Darknet .weights files can be converted (Caffe's .caffemodel is not read)")
    npz = Path(args.weights_output) if args.weights_output else output.with_suffix(".npz")
    if args.weights is not None and npz.suffix != ".npz":
        raise UsageError(f"--weights-output {npz}: must end in .npz")
    if args.weights is not None:
        _check_output(npz, args.source, args.weights, output)
    try:  # regular files only (a FIFO would hang, /dev/zero never end); the source within the file limit
        limit = Limits().max_file_bytes
        data = read_capped(source_path, limit)
        if len(data) > limit:
            raise UsageError(f"{args.source} is larger than the limit of {limit:,} bytes")
        text = data.decode("utf-8")
        weights_data = read_capped(Path(args.weights), MAX_WEIGHTS_BYTES) if args.weights is not None else None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {error.filename if isinstance(error, OSError) else args.source}: "
                         f"{error}") from None
    source = SourceFile(str(source_path), text)
    try:
        net = import_source(source, fmt)
        arrays = None
        if weights_data is not None:
            from .darknet_weights import convert_weights

            arrays = convert_weights(net, weights_data, str(args.weights))
    except DiagnosticError as error:
        sources = {source.name: source}
        sys.stderr.write(render_text(error.diagnostics, sources, color=_use_color(args.color, sys.stderr)))
        return EXIT_PROBLEMS
    cnn = net.to_cnn(flat=args.flat)
    _verify(cnn, output)
    write_atomic(output, cnn)
    if arrays is not None:
        write_atomic(npz, _npz_bytes(arrays))
    if not args.quiet:
        print(f"wrote {output}: model {net.name}, {len(net.layers)} nodes, {net.params:,} parameters, "
              f"{net.macs:,} MACs" + (f"; weights {npz} ({len(arrays)} arrays)" if arrays is not None else ""),
              file=sys.stderr)
    return EXIT_OK


def _import_onnx(args, source_path: Path, output: Path) -> int:
    """``archdsl import model.onnx``: the weights are the model's initializers
    (``--weights`` without a value, or naming the model itself)."""
    from ..cli import UsageError, _check_output, _use_color
    from ..diagnostics.model import DiagnosticError
    from ..diagnostics.render import render_text
    from ..emit.onnx import OnnxUnavailable
    from ..files import read_capped

    if args.weights not in (None, "") and Path(args.weights).resolve() != source_path.resolve():
        raise UsageError("--weights: an ONNX model holds its own weights; give --weights without a value")
    npz = Path(args.weights_output) if args.weights_output else output.with_suffix(".npz")
    if args.weights is not None and npz.suffix != ".npz":
        raise UsageError(f"--weights-output {npz}: must end in .npz")
    _check_output(output, args.source)
    if args.weights is not None:
        _check_output(npz, args.source, output)
    try:
        data = read_capped(source_path, MAX_WEIGHTS_BYTES)
        if len(data) > MAX_WEIGHTS_BYTES:
            raise UsageError(f"{args.source} is larger than the limit of {MAX_WEIGHTS_BYTES:,} bytes")
    except OSError as error:
        raise UsageError(f"cannot read {args.source}: {error}") from None
    try:
        from .onnx import import_onnx

        result = import_onnx(data, str(source_path), source_path.parent)
    except OnnxUnavailable as error:
        raise UsageError(str(error)) from None
    except DiagnosticError as error:
        sys.stderr.write(render_text(error.diagnostics, {}, color=_use_color(args.color, sys.stderr)))
        return EXIT_PROBLEMS
    return _write(args, result, output, npz)


def _input_shapes(texts: list[str] | None) -> list[tuple[int, ...]]:
    from ..cli import UsageError

    shapes = []
    for text in texts or ["3,224,224"]:
        try:
            shape = tuple(int(d) for d in text.replace("x", ",").split(","))
        except ValueError:
            shape = ()
        if not shape or any(d <= 0 or d > 1 << 20 for d in shape):
            raise UsageError(f"--input-shape {text}: give positive sizes without the batch, such as 3,224,224")
        shapes.append(shape)
    return shapes


def _import_torch(args, output: Path) -> int:
    """``archdsl import module.path:callable``: the module is imported (its
    code runs), called, traced with torch.fx; ``--weights [NPZ]`` writes its
    state_dict (no value: beside the .cnn, or at --weights-output)."""
    from ..cli import UsageError, _check_output, _use_color
    from ..diagnostics.model import DiagnosticError
    from ..diagnostics.render import render_text
    from .pytorch import SpecError, TorchUnavailable, import_torch, parse_kwargs, parse_spec, sources_for

    if args.weights and args.weights_output:
        raise UsageError("--weights NPZ and --weights-output both name the weights file; give one")
    npz = Path(args.weights or args.weights_output or output.with_suffix(".npz"))
    if args.weights is not None and npz.suffix != ".npz":
        raise UsageError(f"--weights {npz}: a PyTorch model's weights are written as an .npz (the name must end "
                         "in .npz)")
    try:
        spec, kwargs = parse_spec(args.source), parse_kwargs(args.kwargs)
    except SpecError as error:
        raise UsageError(str(error)) from None
    shapes = _input_shapes(args.input_shape)
    _check_output(output, spec.file)
    if args.weights is not None:
        _check_output(npz, spec.file, output)
    try:
        result = import_torch(spec, shapes, kwargs)
    except TorchUnavailable as error:
        raise UsageError(str(error)) from None
    except DiagnosticError as error:
        sources = sources_for(error.diagnostics)
        sys.stderr.write(render_text(error.diagnostics, sources, color=_use_color(args.color, sys.stderr)))
        return EXIT_PROBLEMS
    return _write(args, result, output, npz)


def _write(args, result, output: Path, npz: Path) -> int:
    """Writes the checked ``.cnn`` (and with ``--weights`` the converted
    arrays) of an ONNX or PyTorch import, and says what was written."""
    from ..files import write_atomic

    net = result.net
    cnn = net.to_cnn(flat=args.flat)
    _verify(cnn, output)
    write_atomic(output, cnn)
    if args.weights is not None:
        write_atomic(npz, _npz_bytes(result.arrays))
    if not args.quiet:
        print(f"wrote {output}: model {net.name}, {len(net.layers)} nodes, {net.params:,} parameters, "
              f"{net.macs:,} MACs" + (f"; weights {npz} ({len(result.arrays)} arrays)" if args.weights is not None
                                      else ""), file=sys.stderr)
    return EXIT_OK


def _verify(cnn: str, output: Path) -> None:
    """The written file must pass ``archdsl check``: anything else is a bug
    in the importer, raised (exit 3) before a file is written."""
    from ..checking import check_program
    from ..diagnostics import Severity
    from ..elaborate import loads

    program = loads(cnn, output.name, directory=output.parent)
    errors = [d for d in check_program(program).diagnostics if d.severity is Severity.ERROR]
    if errors:
        raise RuntimeError("the imported model does not check: " + "; ".join(f"{d.code} {d.message}" for d in errors))


def _npz_bytes(arrays) -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()
