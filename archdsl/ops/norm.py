"""Normalisation: batch norm, layer norm, local response norm."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveFloat, PositiveInt

from .base import Family, OpSpec, Size


class _BatchNorm(OpSpec):
    """Per-channel affine normalisation; running mean/var are buffers."""

    family = Family.NORMALIZATION
    positional = ("num_features",)
    #: Optional: checked against the incoming channels when given.
    num_features: PositiveInt | None = None
    eps: PositiveFloat = 1e-5
    momentum: float = Field(0.1, ge=0.0, le=1.0)
    affine: bool = True
    track_running_stats: bool = True


class BatchNorm1d(_BatchNorm):
    op: Literal["batchnorm1d"] = "batchnorm1d"
    spatial_dims = 1


class BatchNorm2d(_BatchNorm):
    op: Literal["batchnorm2d"] = "batchnorm2d"
    spatial_dims = 2


class BatchNorm3d(_BatchNorm):
    op: Literal["batchnorm3d"] = "batchnorm3d"
    spatial_dims = 3


class LayerNorm(OpSpec):
    """Normalises over the trailing ``normalized_shape`` dims (default: all
    non-batch dims), with an elementwise affine of that shape."""

    family = Family.NORMALIZATION
    op: Literal["layernorm"] = "layernorm"
    positional = ("normalized_shape",)
    normalized_shape: Size | None = None
    eps: PositiveFloat = 1e-5
    elementwise_affine: bool = True
    bias: bool = True


class LocalResponseNorm(OpSpec):
    """``b_c = a_c / (k + alpha/n · sum_{c' near c} a_c'^2)^beta`` over ``size``
    neighbouring channels (AlexNet: size 5, alpha 1e-4, beta 0.75, k 2)."""

    family = Family.NORMALIZATION
    op: Literal["local_response_norm"] = "local_response_norm"
    positional = ("size", "alpha", "beta", "k")
    size: PositiveInt
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0
