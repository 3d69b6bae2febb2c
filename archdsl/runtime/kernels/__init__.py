"""NumPy kernels: the one implementation of every op's forward pass, one
module per op family (``conv``, ``pool``, ``norm``, ``activation``,
``merge``, ``reshape``, ``resize``, ``linear``; helpers in ``shared``;
``winograd``, the 3x3 convolutions' Winograd path, called by ``conv``).
An op's ``kernel_call`` points at its kernel function itself.

Conventions shared by every kernel:

- Tensors are NumPy arrays in PyTorch's logical layout, batch first:
  ``[N, C, L]``, ``[N, C, H, W]``, ``[N, C, D, H, W]``, or ``[N, F]``.  Their
  *memory* may be channels-last: the convolution and pooling kernels work
  on ``[N, *spatial, C]`` memory (the channels contiguous, so that im2col
  rows are contiguous and one matrix multiply covers the whole batch) and
  return that memory viewed as ``[N, C, *spatial]``.  Every other kernel
  takes any strides, so no layout conversion happens between layers.
- Arguments have PyTorch's names and meaning (``dim`` counts the batch as 0).
  Weights have PyTorch's layouts: conv ``[C_out, C_in/groups, *K]``,
  transposed conv ``[C_in, C_out/groups, *K]``, linear ``[out, in]``.
- No Python loop runs over pixels, the batch or channels.  Loops that remain
  run over kernel taps (at most prod(K) iterations), blocks of output rows
  (sized to stay in cache: :func:`_block_bytes`), groups of a grouped
  convolution's batched multiply, spatial axes, or polynomial terms.
- ``inplace=True`` lets an elementwise kernel overwrite its first input; the
  interpreter asks for it only when that input is dead afterwards.

The source text of these modules is copied verbatim into modules written by
``archdsl export`` (``archdsl/emit/numpy_module.py``), so they may use only
NumPy, each other and ``archdsl/ops/arith.py``, each through
``from .module import name`` (the exporter drops those imports: the
embedded modules share one namespace, so their top-level names are
distinct).  Each docstring gives the formula and the PyTorch
function whose semantics it follows (checked in tests/test_runtime_kernels.py
against direct loop implementations of the definitions).
"""
