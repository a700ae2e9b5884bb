"""The graph IR: a network as layers over named tensors, free of ONNX and Amaranth types.

Every tensor is a feature map of shape (C, H, W). A vector of N features is (N, 1, 1); a 1-D
signal of length L with C channels is (C, 1, L); a sequence of T time steps of F features (an
LSTM's input or output) is (F, 1, T). A tensor streams in hardware pixel by pixel, row-major,
channels innermost (DESIGN.md, "Streams"): a sequence streams one time step after another.

A `Graph` holds float weights after the frontend; `quant.quantize` returns a copy in which every
tensor has a fixed-point `Format` and every layer with weights has a `WeightQuant`.
"""

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np


__all__ = ["Shape", "Format", "WeightQuant", "Layer", "Graph", "ACTIVATIONS", "frame_shape", "params"]


#: Activations a conv or fc layer can apply after requantization (`attrs["act"]`).
ACTIVATIONS = ("relu", "clamp", "leaky_relu")


@dataclass(frozen=True)
class Shape:
    """A feature map's shape: channels, height, width."""
    c: int
    h: int
    w: int

    @property
    def size(self):
        return self.c * self.h * self.w

    def __iter__(self):
        return iter((self.c, self.h, self.w))

    def __str__(self):
        return f"{self.c}x{self.h}x{self.w}"


@dataclass(frozen=True)
class Format:
    """Signed fixed point: value = integer × mult × 2**-frac, the integer in `bits` two's
    complement bits.

    `mult` is 1 for a power-of-two scale (the formats dnnhw chooses itself); a quantized model's
    other scales keep their mantissa there, 1 ≤ mult < 2. `low` and `high`, when given, narrow the
    integers' range within `bits`: a zero point's offset range (an unsigned 8-bit tensor with zero
    point z holds q - z, in [-z, 255 - z]).
    """
    bits: int
    frac: int
    mult: float = 1.0
    low: int | None = None
    high: int | None = None

    @property
    def min(self):
        return -(1 << (self.bits - 1)) if self.low is None else self.low

    @property
    def max(self):
        return (1 << (self.bits - 1)) - 1 if self.high is None else self.high

    @property
    def scale(self):
        """The value of one LSB."""
        return self.mult * 2.0 ** -self.frac

    @property
    def scaled(self):
        """Its scale is not a power of two, or its range is narrower than its bits'."""
        return self.mult != 1.0 or self.low is not None or self.high is not None

    def __str__(self):
        text = f"Q{self.bits}.{self.frac}"
        if self.mult != 1.0:
            text += f"×{self.mult:.6g}"
        if self.low is not None or self.high is not None:
            text += f"[{self.min},{self.max}]"
        return text


@dataclass
class WeightQuant:
    """Integer weights of a conv or fc layer and what its accumulator needs.

    `frac` and `mult` are per output channel (all equal when the layer uses one format): a
    weight's value is integer × mult[co] × 2**-frac[co] (`mult` 1 for power-of-two scales, as in
    `Format`). `bias` is stored at the accumulator's scale, the input's scale times the weights'.
    `acc_bits` is wide enough that the accumulation can never overflow.
    """
    bits: int
    frac: np.ndarray        # (C_out,) int
    weight: np.ndarray      # integers, same shape as the float weight
    bias: np.ndarray        # (C_out,) int
    acc_bits: int
    mult: np.ndarray = None  # (C_out,) float, None for all ones

    def __post_init__(self):
        if self.mult is None:
            self.mult = np.ones(len(self.frac))

    @property
    def per_channel(self):
        return bool(np.any(self.frac != self.frac[0]) or np.any(self.mult != self.mult[0]))


@dataclass
class Layer:
    """One canonical layer (an op of the registry, `dnnhw.ops`, which documents its `attrs`)
    reading `inputs` and writing `output`."""
    name: str
    op: str
    inputs: list[str]
    output: str
    attrs: dict[str, Any] = field(default_factory=dict)
    weight: np.ndarray | None = None    # float; conv: (C_out, C_in/groups, kh, kw), fc: (N_out, N_in),
                                        # lstm: [W R] (4·hidden, I + hidden), gates i, o, f, c
    bias: np.ndarray | None = None      # float (C_out,); lstm: Wb + Rb (4·hidden,)
    wq: WeightQuant | None = None       # set by quant.quantize

    @property
    def act(self):
        return self.attrs.get("act")


@dataclass
class Graph:
    """A network: layers in topological order from one input tensor to one output tensor.

    `reference_output` is the source model's tensor the graph's output equals (the model's
    output, or the input of a final Softmax left to the host) and `onnx_output_shape` its shape,
    batch included: the (C, H, W) output array reshaped to it compares with an ONNX runtime.
    `formats` is empty until quantization. `format_hints` carries formats a QDQ model fixed for
    some tensors. `notes` tells the user what the frontend changed on the way.

    `input_hwc` / `output_hwc`: the ONNX tensor's memory order is the stream's (HWC) order rather
    than CHW, as for a sequence: ONNX (T, 1, F) or (1, T, F) is the IR's (F, 1, T). A frame is
    the ONNX tensor without its batch axis, its first unit axis (`frame_shape`).
    """
    name: str
    input: str
    output: str
    shapes: dict[str, Shape]
    layers: list[Layer]
    onnx_input_shape: tuple[int, ...]
    onnx_output_shape: tuple[int, ...]
    reference_output: str = ""
    formats: dict[str, Format] = field(default_factory=dict)
    format_hints: dict[str, Format] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    input_hwc: bool = False
    output_hwc: bool = False

    @property
    def input_frame_shape(self):
        return frame_shape(self.onnx_input_shape)

    @property
    def output_frame_shape(self):
        return frame_shape(self.onnx_output_shape)

    @property
    def quantized(self):
        return bool(self.formats)

    def layer(self, name):
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def producer(self, tensor):
        for layer in self.layers:
            if layer.output == tensor:
                return layer
        return None

    def consumers(self, tensor):
        return [layer for layer in self.layers if tensor in layer.inputs]

    def in_shape(self, layer):
        return self.shapes[layer.inputs[0]]

    def out_shape(self, layer):
        return self.shapes[layer.output]

    def copy(self):
        return replace(self, shapes=dict(self.shapes), formats=dict(self.formats),
                       format_hints=dict(self.format_hints), notes=list(self.notes),
                       layers=[replace(layer, attrs=dict(layer.attrs)) for layer in self.layers])


def frame_shape(onnx_shape):
    """An ONNX tensor shape without its batch axis, the first axis of size 1 (unchanged when
    it has none: a squeezed tensor, such as a sequence (T, H))."""
    dims = tuple(onnx_shape)
    if 1 not in dims:
        return dims
    batch = dims.index(1)
    return dims[:batch] + dims[batch + 1:]


def params(layer):
    """Stored parameters (weights and biases) of `layer`."""
    return sum(int(a.size) for a in (layer.weight, layer.bias) if a is not None)
