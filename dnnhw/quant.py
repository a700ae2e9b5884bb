"""Fixed-point quantization of a float Graph (DESIGN.md, "Fixed point").

- Activation formats per tensor from the largest magnitude seen on calibration inputs (a
  user's `.npy`, or synthetic data with a warning), unless the op rules otherwise
  (`Op.output_format`): layers that cannot grow their input's range (pooling, ReLU, clamp,
  LeakyReLU) keep their input's format; sigmoid, tanh and an LSTM's hidden state output
  (bits, bits - 1); concat takes the coarsest of its inputs' formats.
- Weight formats by the op (`Op.quantize_weights`): conv and fc per output channel from each
  channel's largest magnitude (`per_channel`), or one per layer, biases at the accumulator's
  scale; an LSTM's [W R] one format for the layer, its bias the scale of the aligned
  accumulator (`golden.lstm_shifts`).
- Formats a QDQ model states are used as given: power-of-two scales as they are, other scales
  with their mantissa (`Format.mult`, requantized by multipliers) and zero points as the
  integers' range; an op that cannot compute on such formats says so (`Op.check_formats`).

`bits` sets weights and activations together; `layer_bits` overrides it per layer (its weights
and its output).
"""

import numpy as np

from . import golden, ops
from .errors import UserError
from .ir import Format


__all__ = ["MIN_BITS", "MAX_BITS", "quantize", "peaks", "frac_for", "load_frames",
           "load_labels", "synthetic_frames"]


MIN_BITS, MAX_BITS = 4, 16
FRAC_LIMIT = 16


def frac_for(max_abs, bits):
    """The largest frac at which `max_abs` still fits in `bits` after rounding, kept within
    [-FRAC_LIMIT, bits + FRAC_LIMIT] so that near-zero tensors do not get absurd scales."""
    if not max_abs > 0:
        return bits - 1
    frac = int(np.floor(np.log2(((1 << (bits - 1)) - 0.5) / max_abs)))
    return min(max(frac, -FRAC_LIMIT), bits + FRAC_LIMIT)


def _check_bits(bits, where):
    if not MIN_BITS <= bits <= MAX_BITS:
        raise UserError(f"{where}: {bits} bits is outside the supported {MIN_BITS}..{MAX_BITS}")


def quantize(graph, frames, bits=8, layer_bits=None, per_channel=True, ranges=None):
    """A copy of `graph` with every tensor's `Format` and every layer's `WeightQuant`.

    `frames`: calibration inputs (N, ...ONNX input shape without batch...); `ranges`: their
    `peaks`, when already measured (quantizing one graph many ways measures them once).
    """
    layer_bits = dict(layer_bits or {})
    _check_bits(bits, "--bits")
    names = {layer.name for layer in graph.layers}
    for name, b in layer_bits.items():
        if name not in names:
            raise UserError(f"--layer-bits: no layer named '{name}' (layers: {', '.join(sorted(names))})")
        _check_bits(b, f"layer '{name}'")
    peak = ranges if ranges is not None else peaks(graph, frames)
    q = graph.copy()
    q.formats[q.input] = q.format_hints.get(q.input) or Format(bits, frac_for(peak[q.input], bits))
    for layer in q.layers:
        b = layer_bits.get(layer.name, bits)
        op, fmt_in = ops.get(layer.op), q.formats[layer.inputs[0]]

        def measured(layer=layer, b=b):
            return q.format_hints.get(layer.output) or Format(b, frac_for(peak[layer.output], b))

        fmt = q.formats[layer.output] = op.output_format(q, layer, b, measured)
        layer.wq = op.quantize_weights(q, layer, fmt_in, fmt, b, per_channel)
        op.check_formats(q, layer)
    return q


def peaks(graph, frames):
    """Largest magnitude of every tensor of the float `graph` over the calibration `frames`."""
    peaks = {}
    for frame in frames:
        for name, value in golden.run_float(graph, golden.input_to_chw(graph, frame)).items():
            peaks[name] = max(peaks.get(name, 0.0), float(np.max(np.abs(value))))
    return peaks


#: Multiply-accumulates the synthetic calibration frames may cost in all: 32 frames of any
#: network up to 600 M MACs a frame, fewer (at least 4) of larger ones, whose float run takes
#: about a second a frame.
SYNTHETIC_MACS = 20_000_000_000


def synthetic_frames(graph, count=None, seed=0):
    """Standard-normal calibration frames, for when the user gives none: `count`, by default
    32, or as many as `SYNTHETIC_MACS` allows of a large network (at least 4)."""
    if count is None:
        per_frame = sum(ops.macs(graph, layer) for layer in graph.layers)
        count = min(32, max(4, SYNTHETIC_MACS // max(per_frame, 1)))
    rng = np.random.default_rng(seed)
    return rng.standard_normal((count, *graph.input_frame_shape))


def load_frames(graph, path):
    """Input frames from a `.npy` file: (N, ...input shape without batch...) or one frame."""
    try:
        frames = np.load(path)
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: cannot read as a .npy array ({error})") from None
    frame_shape = graph.input_frame_shape
    if frames.shape == tuple(graph.onnx_input_shape) or frames.shape == frame_shape:
        frames = frames.reshape(1, *frame_shape)
    if frames.shape[1:] != frame_shape or not np.issubdtype(frames.dtype, np.number):
        raise UserError(f"{path}: holds {frames.dtype} of shape {frames.shape}; expected frames "
                        f"of shape (N, {', '.join(map(str, frame_shape))})")
    return frames.astype(np.float64)


def load_labels(path, count):
    """`count` integer class labels from a `.npy` file, one per frame of --data."""
    try:
        labels = np.load(path)
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: cannot read as a .npy array ({error})") from None
    if labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"{path}: expected {count} integer labels, one per --data frame; found "
                        f"{labels.dtype} of shape {labels.shape}")
    return labels
