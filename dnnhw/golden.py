"""The golden model: bit-exact integer execution of a quantized graph, and its float twin.

This module is the specification of what every layer computes. The hardware blocks, their tests
and the reports answer to it; the constants the hardware needs (requantization shifts, clamp
bounds, LeakyReLU slope, average reciprocal, sigmoid/tanh tables) come from the functions here,
so there is one definition of each rule.

Tensors are NumPy arrays of shape (C, H, W): int64 in the fixed path, float64 in the float path.

Fixed-point rules (a format (bits, frac) means value = integer × 2**-frac; a quantized model's
other scales add a mantissa, value = integer × mult × 2**-frac, and may narrow the integers'
range to [min, max], `ir.Format`):

- Rounding is half up: ``round_shift(x, s) = (x + 2**(s-1)) >> s`` (arithmetic shift) for s > 0,
  ``x << -s`` for s ≤ 0. Quantizing a float rounds half up the same way.
- Saturation clips to [-2**(bits-1), 2**(bits-1) - 1], or to a narrowed format's [min, max].
- Conv and fc accumulate exactly (`WeightQuant.acc_bits` cannot overflow) from bias at the
  accumulator's scale, then requantize: ``round_shift(acc, frac_in + frac_w - frac_out)``, apply
  the fused activation to that (unsaturated) value, then saturate. Where the scales are not all
  powers of two, the requantization multiplies first: ``round_shift(acc × R, s)`` with
  (R, s) = `multiplier` of the scale ratio s_in·s_w / s_out, R of REQUANT_BITS bits, per output
  channel (`requant`). For ReLU and clamp the order of activation and saturation does not
  matter; for LeakyReLU applying it first keeps large negative sums from saturating before they
  are scaled down.
- LeakyReLU: ``x < 0 → round_shift(x × alpha_q, LEAKY_FRAC)``, alpha_q = round(alpha × 2**LEAKY_FRAC).
- Clamp (ReLU6 and Clip): bounds quantized to the output format, rounded half up.
- Max pooling pads with the most negative integer. Average pooling sums exactly (zero padding),
  then multiplies by m = round(2**k / n) and round-shifts by k, with k = 15 + bit_length(n), n the
  divisor (`avg_multiplier`); the output keeps the input's format. Global pooling is the same over
  H×W; a quantized model may state its output's own format, the multiplier then includes the
  ratio of the two scales.
- Add: both inputs are left-shifted to the larger frac, added exactly, then round-shifted to the
  output format and saturated. With scales not all powers of two each input is multiplied by
  its scale ratio to the output's, at `multiplier`'s precision: ``round_shift(a·R_a + b·R_b,
  s)`` (`add_constants`). Concat round-shifts each input to the output format and saturates;
  an input of another scale than a scaled output's is multiplied by its ratio first
  (`concat_constants`).
- HardSigmoid: ``clip(round_shift(x·alpha_q + beta_q, s), 0, 1)`` in the output format, the
  constants at LEAKY_FRAC fractional bits (`hard_sigmoid`). Output format (bits, bits - 1).
- Sigmoid and tanh: linear interpolation in a table of 2**TABLE_BITS + 1 samples over [-R, R]
  (`nonlinear_table`); inputs beyond clamp to the ends. Output format (bits, bits - 1).
- LSTM (`lstm_step`), with b the layer's bits: hidden state h and the gates in G = (b, b - 1),
  cell state c in (b + LSTM_CELL_INT, b - 1). Per step the four gate sums (ONNX order i, o, f,
  c) accumulate exactly: ``acc = bias + (W·x << dx) + (R·h << dh)``, the two products aligned to
  the finer of the two input scales (`lstm_shifts`); ``z = round_shift(acc, z_shift)`` puts them
  at LSTM_Z_FRAC = b + 3 fractional bits; i, o, f = sigmoid(z), g = tanh(z) by `nonlinear` into
  G; ``c = saturate(round_shift(f·c + i·g, b - 1))``; ``h = round_shift(o·tanh(c), b - 1)``
  (tanh of c from its format into G; |h| < 1 needs no saturation). Initial states are the
  layer's h0, c0 quantized to those formats (zeros by default).
"""

import numpy as np

from . import ops
from .ir import Format


__all__ = [
    "LEAKY_FRAC", "TABLE_BITS", "NONLINEAR_RANGE",
    "round_half_up", "quantize", "dequantize", "saturate", "round_shift",
    "REQUANT_BITS", "multiplier", "requant_shift", "requant", "add_constants", "concat_constants",
    "clamp_bounds", "leaky_alpha", "leaky_floor", "hard_sigmoid", "hard_sigmoid_constants", "avg_multiplier", "avg_divisors",
    "nonlinear_table", "segment_shift", "nonlinear", "nonlinear_float", "window_view",
    "LSTM_CELL_INT", "lstm_formats", "lstm_shifts", "lstm_initial", "lstm_step",
    "run_layer", "run_layer_float", "run_fixed", "run_float", "run", "input_to_chw", "output_to_onnx", "float_error",
    "margins", "run_cascade",
]


LEAKY_FRAC = 16
REQUANT_BITS = 16
TABLE_BITS = 8
NONLINEAR_RANGE = {"sigmoid": 8, "tanh": 4}
LSTM_CELL_INT = 4
_FUNCTIONS = {"sigmoid": lambda v: 1 / (1 + np.exp(-v)), "tanh": np.tanh}


# -- fixed-point primitives -------------------------------------------------------------------

def round_half_up(x):
    """Round floats to the nearest integer, halves towards +inf; magnitudes beyond 2**62 (and
    infinities) clip to ±2**62, which saturates to any format's limit."""
    x, limit = np.array(x, dtype=np.float64), 2.0 ** 62          # a new array
    if x.size and not (-limit <= x.min() and x.max() <= limit):     # cheaper than clipping all
        np.clip(x, -limit, limit, out=x)
    whole = np.floor(x, out=np.empty_like(x))
    fraction = np.subtract(x, whole, out=x)        # in place: x - floor(x) is exact
    return np.add(whole, fraction >= 0.5, out=whole).astype(np.int64)[()]


def saturate(x, bits):
    """`x` clipped to a signed `bits` integer's range, or to a `Format`'s [min, max]."""
    if isinstance(bits, Format):
        return np.clip(x, bits.min, bits.max)
    return np.clip(x, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def quantize(x, fmt):
    """Float array → integers of `fmt` (round half up, saturate)."""
    x = np.asarray(x, dtype=np.float64)
    scaled = x * 2.0 ** fmt.frac if fmt.mult == 1.0 else x / fmt.scale
    return saturate(round_half_up(scaled), fmt)


def dequantize(q, fmt):
    return np.asarray(q, dtype=np.float64) * fmt.scale


def round_shift(x, s):
    """Arithmetic shift right by `s` rounding half up; a negative `s` shifts left.

    `s` may be an array broadcasting against `x` (per-channel shifts).
    """
    x = np.asarray(x, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    right = np.maximum(s, 0)
    half = np.where(right > 0, np.left_shift(1, np.maximum(right - 1, 0)), 0)
    return np.where(s > 0, (x + half) >> right, x << np.maximum(-s, 0))


def requant_shift(graph, layer):
    """Per-output-channel right shift from a conv/fc accumulator to the layer's output format,
    for power-of-two scales."""
    frac_in = graph.formats[layer.inputs[0]].frac
    return frac_in + layer.wq.frac - graph.formats[layer.output].frac


def multiplier(ratio):
    """(R, s) with ``x · ratio ≈ round_shift(x · R, s)``: R the ratio's mantissa rounded to
    REQUANT_BITS bits, 2**(REQUANT_BITS-1) ≤ R < 2**REQUANT_BITS; arrays element by element."""
    ratio = np.asarray(ratio, dtype=np.float64)
    exponent = np.floor(np.log2(ratio)).astype(np.int64)
    shift = REQUANT_BITS - 1 - exponent
    r = round_half_up(np.ldexp(ratio, shift))
    full = r >= 1 << REQUANT_BITS                     # the mantissa rounded up to the next octave
    return np.where(full, r >> 1, r), np.where(full, shift - 1, shift)


def requant(graph, layer):
    """A conv/fc layer's requantization from its accumulator to its output: (R, shift), per
    output channel, with ``y = round_shift(acc · R, shift)``; R is None (a pure shift,
    `requant_shift`) when every scale involved is a power of two."""
    fmt_in, fmt_out, wq = graph.formats[layer.inputs[0]], graph.formats[layer.output], layer.wq
    if fmt_in.mult == 1.0 and fmt_out.mult == 1.0 and np.all(wq.mult == 1.0):
        return None, requant_shift(graph, layer)
    ratio = np.ldexp(fmt_in.mult * wq.mult / fmt_out.mult,
                     (fmt_out.frac - fmt_in.frac - wq.frac).astype(np.int64))
    return multiplier(ratio)


def add_constants(fmts, fmt_out):
    """(R per input, shift) of an add: ``round_shift(Σ x_i · R_i, shift)``. Powers of two: R_i
    aligns each input to the larger frac (2**(top - frac_i)), shift = top - frac_out. Otherwise
    R_i are the ratios s_i / s_out at REQUANT_BITS bits for the larger one, the shift common."""
    if all(f.mult == 1.0 for f in (*fmts, fmt_out)):
        top = max(f.frac for f in fmts)
        return tuple(1 << (top - f.frac) for f in fmts), top - fmt_out.frac
    ratios = [f.scale / fmt_out.scale for f in fmts]
    _, shift = multiplier(max(ratios))
    return tuple(int(round_half_up(np.ldexp(r, int(shift)))) for r in ratios), int(shift)


def concat_constants(fmts, fmt_out):
    """(R, shift) per input of a concat: ``saturate(round_shift(x · R, shift))`` in the output
    format. Powers of two: R = 1, shift = frac_i - frac_out; an input of the output's scale
    passes (1, 0); other scales: `multiplier` of s_i / s_out."""
    out = []
    for f in fmts:
        if f.mult == 1.0 and fmt_out.mult == 1.0:
            out.append((1, f.frac - fmt_out.frac))
        elif f.scale == fmt_out.scale:
            out.append((1, 0))
        else:
            r, s = multiplier(f.scale / fmt_out.scale)
            out.append((int(r), int(s)))
    return out


def clamp_bounds(lo, hi, fmt):
    """Integer bounds of a clamp (ReLU6, Clip) in format `fmt`."""
    lo_q = fmt.min if lo is None or lo == -np.inf else int(round_half_up(lo / fmt.scale))
    hi_q = fmt.max if hi is None or hi == np.inf else int(round_half_up(hi / fmt.scale))
    return max(lo_q, fmt.min), min(hi_q, fmt.max)


def leaky_alpha(alpha):
    """LeakyReLU slope as an integer at scale 2**-LEAKY_FRAC."""
    return int(round_half_up(alpha * 2.0 ** LEAKY_FRAC))


def leaky_floor(alpha_q, bits):
    """A value Y0 < 0 below which ``saturate(leaky_relu(y), bits)`` no longer changes.

    For y < 0, ``round_shift(y·alpha_q, LEAKY_FRAC)`` is monotonic in y, so every y ≤ Y0 saturates
    to the same bound as Y0 does: clipping y to Y0 first changes no result, and keeps the
    LeakyReLU multiplier narrow.
    """
    if alpha_q == 0:
        return -1
    bound = 1 << (bits - 1)         # |y·alpha_q| ≥ bound·2**LEAKY_FRAC saturates (-lo = hi + 1)
    return -((bound << LEAKY_FRAC) // abs(alpha_q)) - 1


def hard_sigmoid(x, fmt_in, fmt_out, alpha, beta):
    """HardSigmoid, max(0, min(1, alpha·x + beta)), of integers `x` in `fmt_in` as integers in
    `fmt_out`: ``saturate(clip(round_shift(x·alpha_q + beta_q, s), 0, 2**frac_out))`` with
    alpha_q = round(alpha·2**LEAKY_FRAC), beta_q = round(beta·2**(LEAKY_FRAC + frac_in)) and
    s = LEAKY_FRAC + frac_in - frac_out (`hard_sigmoid_constants`)."""
    alpha_q, beta_q, shift = hard_sigmoid_constants(fmt_in, fmt_out, alpha, beta)
    y = round_shift(np.asarray(x, dtype=np.int64) * alpha_q + beta_q, shift)
    return saturate(np.clip(y, 0, 1 << fmt_out.frac), fmt_out.bits)


def hard_sigmoid_constants(fmt_in, fmt_out, alpha, beta):
    """(alpha_q, beta_q, shift) of `hard_sigmoid`."""
    alpha_q = int(round_half_up(alpha * 2.0 ** LEAKY_FRAC))
    beta_q = int(round_half_up(beta * 2.0 ** (LEAKY_FRAC + fmt_in.frac)))
    return alpha_q, beta_q, LEAKY_FRAC + fmt_in.frac - fmt_out.frac


def avg_multiplier(n, ratio=1.0):
    """Reciprocal of a divisor `n` as (m, k): x / n ≈ round_shift(x × m, k), m < 2**17; with
    `ratio` (the input's scale over the output's, for an output in another format) x · ratio / n:
    k = 15 + bit_length(n) - floor(log2(ratio)), m = round(2**k · ratio / n)."""
    k = 15 + int(n).bit_length()
    if ratio == 1.0:
        return ((1 << (k + 1)) + n) // (2 * n), k
    k -= int(np.floor(np.log2(ratio)))
    return int(round_half_up(np.ldexp(ratio, k) / n)), k


def activate(y, fmt, attrs):
    act = attrs.get("act")
    if act == "relu":
        return np.maximum(y, 0)
    if act == "clamp":
        return np.clip(y, *clamp_bounds(attrs["lo"], attrs["hi"], fmt))
    if act == "leaky_relu":
        return np.where(y < 0, round_shift(y * leaky_alpha(attrs["alpha"]), LEAKY_FRAC), y)
    assert act is None, act
    return y


def activate_float(y, attrs):
    act = attrs.get("act")
    if act == "relu":
        return np.maximum(y, 0)
    if act == "clamp":
        lo, hi = attrs["lo"], attrs["hi"]
        return np.clip(y, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    if act == "leaky_relu":
        return np.where(y < 0, y * attrs["alpha"], y)
    assert act is None, act
    return y


def nonlinear_table(kind, fmt_out):
    """Samples of sigmoid or tanh at 2**TABLE_BITS + 1 points evenly over [-R, R], as integers."""
    r = NONLINEAR_RANGE[kind]
    points = np.linspace(-r, r, (1 << TABLE_BITS) + 1)
    return quantize(_FUNCTIONS[kind](points), fmt_out)


def segment_shift(kind, fmt_in):
    """Input LSBs per table segment, as a power of two (may be negative for coarse inputs)."""
    step_log2 = (2 * NONLINEAR_RANGE[kind]).bit_length() - 1 - TABLE_BITS
    return fmt_in.frac + step_log2


def nonlinear_float(kind, x):
    """Sigmoid or tanh of floats `x`: the function the table samples."""
    return _FUNCTIONS[kind](x)


def nonlinear(kind, x, fmt_in, fmt_out):
    """Sigmoid or tanh of integers `x` in `fmt_in`, as integers in `fmt_out`.

    The input is offset to p = x + R·2**frac_in ≥ 0 and clamped to the table's span; its high
    bits select segment i, its low bits r interpolate: t[i] + round_shift((t[i+1] - t[i]) × r, s).
    """
    table = nonlinear_table(kind, fmt_out)
    s = segment_shift(kind, fmt_in)
    x = np.asarray(x, dtype=np.int64)
    if s < 0:                       # fewer input LSBs than segments: index the table directly
        x, s = x << -s, 0
    last = len(table) - 1
    p = np.clip(x + (last << s) // 2, 0, last << s)
    i = np.minimum(p >> s, last - 1)
    r = p - (i << s)
    return saturate(table[i] + round_shift((table[i + 1] - table[i]) * r, s), fmt_out.bits)


# -- LSTM ----------------------------------------------------------------------------------------

def lstm_formats(bits):
    """(gate and hidden format, cell format, pre-activation format) of a `bits`-bit LSTM."""
    return Format(bits, bits - 1), Format(bits + LSTM_CELL_INT, bits - 1), Format(2 * bits + 4, bits + 3)


def lstm_shifts(fmt_x, fmt_h, frac_w):
    """(dx, dh, z_shift): left shifts aligning the input and recurrent products at the finer of
    the two scales, and the right shift from that accumulator scale (top + frac_w, where the
    bias is stored) to the pre-activation's."""
    top = max(fmt_x.frac, fmt_h.frac)
    z_frac = lstm_formats(fmt_h.bits)[2].frac
    return top - fmt_x.frac, top - fmt_h.frac, top + int(frac_w) - z_frac


def lstm_initial(layer, bits):
    """Initial (h, c) of an lstm `layer` as integers of its formats, each (hidden,)."""
    fmt_g, fmt_c, _ = lstm_formats(bits)
    hidden = layer.attrs["hidden"]
    return tuple(np.zeros(hidden, np.int64) if layer.attrs.get(key) is None
                 else quantize(layer.attrs[key], fmt) for key, fmt in (("h0", fmt_g), ("c0", fmt_c)))


def lstm_step(x, h, c, wq, shifts, bits):
    """One LSTM time step on integers: input x (I,), state h, c (hidden,) → new (h, c)."""
    fmt_g, fmt_c, fmt_z = lstm_formats(bits)
    dx, dh, z_shift = shifts
    n_in, hidden = len(x), len(h)
    acc = (wq.bias + (_matmul(wq.weight[:, :n_in], x, 1 << (wq.acc_bits - 1)) << dx)
           + (_matmul(wq.weight[:, n_in:], h, 1 << (wq.acc_bits - 1)) << dh))
    z = round_shift(acc, z_shift).reshape(4, hidden)
    i, o, f = (nonlinear("sigmoid", z[k], fmt_z, fmt_g) for k in range(3))
    g = nonlinear("tanh", z[3], fmt_z, fmt_g)
    c = saturate(round_shift(f * c + i * g, fmt_g.frac), fmt_c.bits)
    h = round_shift(o * nonlinear("tanh", c, fmt_c, fmt_g), fmt_g.frac)
    return h, c


def lstm_fixed(layer, x, fmt_x, bits):
    h, c = lstm_initial(layer, bits)
    shifts = lstm_shifts(fmt_x, lstm_formats(bits)[0], layer.wq.frac[0])
    out = []
    for x_t in x[:, 0, :].T:
        h, c = lstm_step(x_t, h, c, layer.wq, shifts, bits)
        out.append(h)
    return _sequence(out, layer.attrs["last"])


def lstm_float(layer, x):
    hidden = layer.attrs["hidden"]
    h, c = (np.zeros(hidden) if layer.attrs.get(key) is None else np.asarray(layer.attrs[key], np.float64)
            for key in ("h0", "c0"))
    n_in = x.shape[0]
    w, r = layer.weight[:, :n_in], layer.weight[:, n_in:]
    out = []
    for x_t in x[:, 0, :].T:
        z = (w @ x_t + r @ h + layer.bias).reshape(4, hidden)
        i, o, f = _FUNCTIONS["sigmoid"](z[:3])
        c = f * c + i * np.tanh(z[3])
        h = o * np.tanh(c)
        out.append(h)
    return _sequence(out, layer.attrs["last"])


def _sequence(steps, last):
    """Per-step vectors (hidden,) → the (hidden, 1, T) sequence, or (hidden, 1, 1) if `last`."""
    steps = steps[-1:] if last else steps
    return np.stack(steps, axis=1)[:, None, :]


# -- layer arithmetic shared by both paths ------------------------------------------------------

def window_view(x, kernel, stride, pads, pad_value):
    """Windows of a (C, H, W) array: (C, H_out, W_out, kh, kw), zero-copy after padding."""
    (kh, kw), (sh, sw), (top, left, bottom, right) = kernel, stride, pads
    x = np.pad(x, ((0, 0), (top, bottom), (left, right)), constant_values=pad_value)
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
    return windows[:, ::sh, ::sw]


def _matmul(a, b, exact_bound=None):
    """a @ b; for integers, exact: through float64 BLAS when every sum stays below 2**53."""
    if exact_bound is None:
        return a @ b
    if exact_bound < 1 << 53:
        return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
    return a.astype(np.int64) @ b.astype(np.int64)


def conv(x, weight, attrs, exact_bound=None):
    groups = attrs["groups"]
    c_out, cin_g, kh, kw = weight.shape
    win = window_view(x, attrs["kernel"], attrs["stride"], attrs["pads"], 0)
    _, h_out, w_out = win.shape[:3]
    cols = win.reshape(groups, cin_g, h_out, w_out, kh, kw).transpose(0, 2, 3, 1, 4, 5)
    cols = cols.reshape(groups, h_out * w_out, cin_g * kh * kw)
    w = weight.reshape(groups, c_out // groups, cin_g * kh * kw).transpose(0, 2, 1)
    out = _matmul(cols, w, exact_bound)                       # (groups, HW, C_out/groups)
    return out.transpose(0, 2, 1).reshape(c_out, h_out, w_out)


def fc(x, weight, exact_bound=None):
    flat = x.transpose(1, 2, 0).reshape(-1)                   # stream (HWC) order
    return _matmul(weight, flat, exact_bound).reshape(-1, 1, 1)


def avg_divisors(in_shape, attrs):
    """Divisor of every output position of an average pool, (H_out, W_out): the window's size,
    or with count_include_pad = 0 the number of its elements inside the image."""
    ones = np.ones((1, in_shape.h, in_shape.w))
    pad_value = 1 if attrs["count_include_pad"] else 0
    windows = window_view(ones, attrs["kernel"], attrs["stride"], attrs["pads"], pad_value)
    return windows.sum(axis=(3, 4))[0].astype(np.int64)


def average(sums, divisors, bits, ratio=1.0):
    """Exact `sums` divided by their `divisors` (`avg_multiplier`), saturated to `bits` (or a
    `Format`'s range); `ratio`: the input's scale over the output's."""
    out = np.empty_like(sums)
    for n in np.unique(divisors):
        m, k = avg_multiplier(int(n), ratio)
        at = divisors == n
        out[:, at] = round_shift(sums[:, at] * m, k)
    return saturate(out, bits)


# -- execution ---------------------------------------------------------------------------------

def run_layer(graph, layer, xs):
    """One layer of a quantized graph on its input integers `xs` (one array per input): its op's
    composition of the rules above (`Op.run`)."""
    return ops.get(layer.op).run(graph, layer, xs)


def run_layer_float(graph, layer, xs):
    """One layer on float inputs `xs` with the float weights (`Op.run_float`)."""
    return ops.get(layer.op).run_float(graph, layer, xs)


def run_fixed(graph, x):
    """Integer execution of one frame: `x` holds integers in the input's format, (C, H, W).

    Returns every tensor of the graph by name, as integers in its format.
    """
    values = {graph.input: np.asarray(x, dtype=np.int64)}
    for layer in graph.layers:
        values[layer.output] = run_layer(graph, layer, [values[t] for t in layer.inputs])
    return values


def run_float(graph, x):
    """Float64 execution of one frame (C, H, W) with the float weights; every tensor by name."""
    values = {graph.input: np.asarray(x, dtype=np.float64)}
    for layer in graph.layers:
        values[layer.output] = run_layer_float(graph, layer, [values[t] for t in layer.inputs])
    return values


def input_to_chw(graph, x):
    """One input frame as the ONNX model takes it (batch dimension optional) → (C, H, W)."""
    c, h, w = graph.shapes[graph.input]
    if graph.input_hwc:
        return np.asarray(x).reshape(h, w, c).transpose(2, 0, 1)
    return np.asarray(x).reshape(c, h, w)


def output_to_onnx(graph, y):
    """The output tensor (C, H, W) → one frame of the ONNX model's output, without its batch
    axis (`Graph.output_frame_shape`)."""
    y = np.asarray(y)
    if graph.output_hwc:
        y = y.transpose(1, 2, 0)
    return y.reshape(graph.output_frame_shape)


def run(graph, frames, fixed=True):
    """Outputs of a batch of frames (N, ...ONNX input shape without batch...), as floats in the
    ONNX output layout (N, ...). The fixed path quantizes inputs and dequantizes outputs."""
    outputs = []
    for frame in frames:
        x = input_to_chw(graph, frame)
        if fixed:
            fmt_in, fmt_out = graph.formats[graph.input], graph.formats[graph.output]
            y = dequantize(run_fixed(graph, quantize(x, fmt_in))[graph.output], fmt_out)
        else:
            y = run_float(graph, x)[graph.output]
        outputs.append(output_to_onnx(graph, y))
    return np.stack(outputs)


def margins(scores):
    """The confidence of each frame of integer `scores` (N, classes...): its largest score less
    its second largest, 0 when two tie for the largest (`layers.confidence.Confidence`)."""
    top = np.sort(np.asarray(scores, dtype=np.int64).reshape(len(scores), -1), axis=1)
    return top[:, -1] - top[:, -2]


def run_cascade(first, second, threshold, x):
    """A cascade's output for one integer input frame `x` (C, H, W) in the input format both
    quantized graphs share (`dnnhw.cascade`): `first`'s output values in stream order, or
    `second`'s when the margin of `first`'s is below `threshold`, then the stage that
    produced them (1 or 2), as an int64 vector of classes + 1."""
    scores = run_fixed(first, x)[first.output].transpose(1, 2, 0).ravel()
    stage = 1 + int(margins(scores[None])[0] < threshold)
    if stage == 2:
        scores = run_fixed(second, x)[second.output].transpose(1, 2, 0).ravel()
    return np.append(scores, stage)


def float_error(reference, output):
    """How far `output` (N, ...) is from `reference` (N, ...): max abs error, relative RMS
    error (‖output − reference‖ / ‖reference‖) and top-1 agreement (fraction of frames whose
    largest output element is the same)."""
    reference = np.asarray(reference, np.float64).reshape(len(reference), -1)
    output = np.asarray(output, np.float64).reshape(len(output), -1)
    diff = output - reference
    norm = np.sqrt(np.sum(reference ** 2))
    return {
        "max_abs": float(np.max(np.abs(diff))),
        "rel_rms": float(np.sqrt(np.sum(diff ** 2)) / norm) if norm > 0 else float(np.any(diff)),
        "top1_agreement": float(np.mean(reference.argmax(axis=1) == output.argmax(axis=1))),
    }
