"""Fixed-point quantization of a float Graph (DESIGN.md, "Fixed point").

- Activation formats per tensor from the largest magnitude seen on calibration inputs (a
  user's `.npy`, or synthetic data with a warning). Layers that cannot grow their input's range
  (pooling, ReLU, clamp, LeakyReLU) keep their input's format; sigmoid and tanh output
  (bits, bits - 1); concat takes the coarsest of its inputs' formats. An LSTM's output, its
  hidden state, is (bits, bits - 1) (`golden.lstm_formats`).
- Weight formats per output channel from each channel's largest magnitude (`per_channel`), or
  one per layer. Biases at the accumulator's scale. An LSTM's [W R] takes one format for the
  layer, its bias the scale of the aligned accumulator (`golden.lstm_shifts`).
- Formats a QDQ model states (power-of-two scales) are used as given.

`bits` sets weights and activations together; `layer_bits` overrides it per layer (its weights
and its output).
"""

import numpy as np

from . import golden
from .errors import UserError
from .ir import Format, WeightQuant


__all__ = ["MIN_BITS", "MAX_BITS", "quantize", "frac_for", "load_frames", "load_labels",
           "synthetic_frames"]


MIN_BITS, MAX_BITS = 4, 16
FRAC_LIMIT = 16
_KEEPS_FORMAT = ("maxpool", "avgpool", "global_avgpool", "relu", "clamp", "leaky_relu")


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


def quantize(graph, frames, bits=8, layer_bits=None, per_channel=True):
    """A copy of `graph` with every tensor's `Format` and every layer's `WeightQuant`.

    `frames`: calibration inputs (N, ...ONNX input shape without batch...).
    """
    layer_bits = dict(layer_bits or {})
    _check_bits(bits, "--bits")
    names = {layer.name for layer in graph.layers}
    for name, b in layer_bits.items():
        if name not in names:
            raise UserError(f"--layer-bits: no layer named '{name}' (layers: {', '.join(sorted(names))})")
        _check_bits(b, f"layer '{name}'")
    peaks = _peaks(graph, frames)
    q = graph.copy()
    q.formats[q.input] = q.format_hints.get(q.input) or Format(bits, frac_for(peaks[q.input], bits))
    for layer in q.layers:
        b = layer_bits.get(layer.name, bits)
        fmt_in = q.formats[layer.inputs[0]]
        if layer.op in _KEEPS_FORMAT:
            fmt = fmt_in
        elif layer.op in ("sigmoid", "tanh", "lstm"):
            fmt = Format(b, b - 1)
        elif layer.op == "concat":
            fmts = [q.formats[t] for t in layer.inputs]
            fmt = Format(max(f.bits for f in fmts), min(f.frac for f in fmts))
        else:
            fmt = q.format_hints.get(layer.output) or Format(b, frac_for(peaks[layer.output], b))
        q.formats[layer.output] = fmt
        if layer.op == "lstm":
            layer.wq = _quantize_lstm(layer, fmt_in, fmt)
        elif layer.weight is not None:
            layer.wq = _quantize_weights(layer, fmt_in, b, per_channel)
    return q


def _peaks(graph, frames):
    """Largest magnitude of every tensor over the calibration frames (float path)."""
    peaks = {}
    for frame in frames:
        for name, value in golden.run_float(graph, golden.input_to_chw(graph, frame)).items():
            peaks[name] = max(peaks.get(name, 0.0), float(np.max(np.abs(value))))
    return peaks


def _quantize_weights(layer, fmt_in, bits, per_channel):
    weight = layer.weight
    c_out = weight.shape[0]
    if "weight_format" in layer.attrs:
        bits, frac = layer.attrs["weight_format"]
    else:
        channel_peaks = np.abs(weight.reshape(c_out, -1)).max(axis=1)
        if per_channel:
            frac = np.array([frac_for(p, bits) for p in channel_peaks])
        else:
            frac = np.full(c_out, frac_for(channel_peaks.max(), bits))
    frac = np.asarray(frac, dtype=np.int64)
    scale = 2.0 ** frac.reshape(-1, *[1] * (weight.ndim - 1))
    weight_q = golden.saturate(golden.round_half_up(weight * scale), bits)
    bias_q = golden.round_half_up(layer.bias * 2.0 ** (fmt_in.frac + frac))
    fan_in = weight[0].size
    bound = fan_in * (1 << (fmt_in.bits - 1)) * (1 << (bits - 1)) + int(np.abs(bias_q).max(initial=0))
    return WeightQuant(bits=bits, frac=frac, weight=weight_q, bias=bias_q,
                       acc_bits=bound.bit_length() + 1)


def _quantize_lstm(layer, fmt_x, fmt_h):
    """[W R] at one frac for the layer, the bias at the accumulator's scale."""
    bits, hidden = fmt_h.bits, layer.attrs["hidden"]
    n_in = layer.weight.shape[1] - hidden
    frac = frac_for(float(np.abs(layer.weight).max(initial=0)), bits)
    weight_q = golden.saturate(golden.round_half_up(layer.weight * 2.0 ** frac), bits)
    dx, dh, _ = golden.lstm_shifts(fmt_x, fmt_h, frac)
    bias_q = golden.round_half_up(layer.bias * 2.0 ** (max(fmt_x.frac, fmt_h.frac) + frac))
    w_max = 1 << (bits - 1)
    bound = ((n_in * (1 << (fmt_x.bits - 1)) * w_max << dx) + (hidden * (1 << (bits - 1)) * w_max << dh)
             + int(np.abs(bias_q).max(initial=0)))
    return WeightQuant(bits=bits, frac=np.full(len(weight_q), frac, dtype=np.int64), weight=weight_q,
                       bias=bias_q, acc_bits=bound.bit_length() + 1)


def synthetic_frames(graph, count=32, seed=0):
    """Standard-normal calibration frames, for when the user gives none."""
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
