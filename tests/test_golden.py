"""Tests of the fixed-point golden model (dnnhw/golden.py) against its own docstring.

golden.py is the specification, so nothing here re-derives an expected value with a golden
function: expected values come from exact rationals (`fractions.Fraction`), Python ints and
explicit loops over output positions that implement the rules as the golden.py docstring states
them. Graphs are built by hand with `dnnhw.ir` and quantized with `dnnhw.quant.quantize`.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dnnhw import golden, quant
from dnnhw.ir import Format, Graph, Layer, Shape, WeightQuant


HYP = dict(deadline=None, derandomize=True, database=None)    # deterministic hypothesis runs
HALF = Fraction(1, 2)
FLT_MAX = float(np.finfo(np.float32).max)
FUNCS = {"sigmoid": lambda v: 1 / (1 + math.exp(-v)), "tanh": math.tanh}
NP_FUNCS = {"sigmoid": lambda v: 1 / (1 + np.exp(-v)), "tanh": np.tanh}


# -- exact scalar references (Python ints and Fractions) --------------------------------------

def rhu(q):
    """Round a rational half up: floor(q + 1/2)."""
    return math.floor(Fraction(q) + HALF)


def pow2(e):
    return Fraction(2) ** e


def rs(x, s):
    """round_shift as stated: floor(x / 2**s + 1/2) for s > 0, x * 2**-s otherwise (ints)."""
    return (2 * x + (1 << s)) // (1 << (s + 1)) if s > 0 else x * (1 << -s)


def sat(x, bits):
    return min(max(x, -(1 << (bits - 1))), (1 << (bits - 1)) - 1)


def in_range(a, bits):
    a = np.asarray(a)
    return bool(np.all(a >= -(1 << (bits - 1))) and np.all(a <= (1 << (bits - 1)) - 1))


def ref_clamp_bounds(lo, hi, fmt):
    lo_q = fmt.min if lo is None or lo == -math.inf else max(fmt.min, rhu(Fraction(lo) * pow2(fmt.frac)))
    hi_q = fmt.max if hi is None or hi == math.inf else min(fmt.max, rhu(Fraction(hi) * pow2(fmt.frac)))
    return lo_q, hi_q


def ref_act(y, attrs, fmt):
    """Activation of an unsaturated integer `y` in the output format `fmt`."""
    act = attrs.get("act")
    if act == "relu":
        return max(y, 0)
    if act == "clamp":
        lo, hi = ref_clamp_bounds(attrs["lo"], attrs["hi"], fmt)
        return min(max(y, lo), hi)
    if act == "leaky_relu":
        alpha_q = rhu(Fraction(attrs["alpha"]) * 2 ** 16)
        return rs(y * alpha_q, 16) if y < 0 else y
    assert act is None
    return y


def ref_table(kind, fmt_out):
    """2**8 + 1 samples of f over [-R, R], quantized half up and saturated."""
    r, n = golden.NONLINEAR_RANGE[kind], 1 << golden.TABLE_BITS
    return [sat(rhu(Fraction(FUNCS[kind](-r + j * Fraction(2 * r, n))) * pow2(fmt_out.frac)),
                fmt_out.bits) for j in range(n + 1)]


def ref_nonlinear(kind, x, fmt_in, fmt_out, table=None):
    """Linear interpolation in the table at the exact rational position of x (clamped)."""
    table = table or ref_table(kind, fmt_out)
    r, n = golden.NONLINEAR_RANGE[kind], 1 << golden.TABLE_BITS
    t = (Fraction(x) * pow2(-fmt_in.frac) + r) / Fraction(2 * r, n)
    t = min(max(t, Fraction(0)), Fraction(n))
    i = min(math.floor(t), n - 1)
    return sat(table[i] + rhu((table[i + 1] - table[i]) * (t - i)), fmt_out.bits)


def ref_avg_multiplier(n):
    k = 15 + n.bit_length()
    return rhu(Fraction(1 << k, n)), k


# -- loop references of whole layers ---------------------------------------------------------

def out_hw(h, w, attrs):
    (kh, kw), (sh, sw), (top, left, bottom, right) = attrs["kernel"], attrs["stride"], attrs["pads"]
    return (h + top + bottom - kh) // sh + 1, (w + left + right - kw) // sw + 1


def window(x, c, oh, ow, attrs):
    """The (value or None for padding) of every kernel tap of output (oh, ow) in channel c."""
    (kh, kw), (sh, sw), (top, left, _, _) = attrs["kernel"], attrs["stride"], attrs["pads"]
    h, w = len(x[0]), len(x[0][0])
    taps = []
    for i in range(kh):
        for j in range(kw):
            ih, iw = oh * sh - top + i, ow * sw - left + j
            taps.append(x[c][ih][iw] if 0 <= ih < h and 0 <= iw < w else None)
    return taps


def ref_conv_sums(x, weight, attrs):
    """Exact sum of products (no bias) of a grouped conv; x and weight nested lists."""
    c_out, cin_g = len(weight), len(weight[0])
    cout_g = c_out // attrs["groups"]
    ho, wo = out_hw(len(x[0]), len(x[0][0]), attrs)
    out = [[[0] * wo for _ in range(ho)] for _ in range(c_out)]
    for co in range(c_out):
        g = co // cout_g
        for oh in range(ho):
            for ow in range(wo):
                acc = 0
                for ci in range(cin_g):
                    taps = window(x, g * cin_g + ci, oh, ow, attrs)
                    ws = [v for row in weight[co][ci] for v in row]
                    acc += sum(wv * xv for wv, xv in zip(ws, taps) if xv is not None)
                out[co][oh][ow] = acc
    return out


def ref_fc_sums(x, weight):
    flat = [x[c][h][w] for h in range(len(x[0])) for w in range(len(x[0][0])) for c in range(len(x))]
    return [[[sum(wv * xv for wv, xv in zip(row, flat))]] for row in weight]


def ref_fixed_layer(graph, layer, xs):
    """One layer of the fixed path, from the golden.py docstring, with Python ints."""
    fmt_out, fmt_in = graph.formats[layer.output], graph.formats[layer.inputs[0]]
    x, attrs, bits = xs[0], layer.attrs, fmt_out.bits
    if layer.op in ("conv", "fc"):
        wq = layer.wq
        w = wq.weight.tolist()
        sums = ref_conv_sums(x, w, attrs) if layer.op == "conv" else ref_fc_sums(x, w)
        out = []
        for co, plane in enumerate(sums):
            shift = fmt_in.frac + int(wq.frac[co]) - fmt_out.frac
            out.append([[sat(ref_act(rs(acc + int(wq.bias[co]), shift), attrs, fmt_out), bits)
                         for acc in row] for row in plane])
        return out
    if layer.op in ("maxpool", "avgpool"):
        ho, wo = out_hw(len(x[0]), len(x[0][0]), attrs)
        out = []
        for c in range(len(x)):
            plane = []
            for oh in range(ho):
                row = []
                for ow in range(wo):
                    taps = window(x, c, oh, ow, attrs)
                    inside = [v for v in taps if v is not None]
                    if layer.op == "maxpool":
                        row.append(max(inside + [fmt_in.min] * (len(taps) - len(inside))))
                    else:
                        n = len(taps) if attrs["count_include_pad"] else len(inside)
                        m, k = ref_avg_multiplier(n)
                        row.append(sat(rs(sum(inside) * m, k), bits))
                plane.append(row)
            out.append(plane)
        return out
    if layer.op == "global_avgpool":
        n = len(x[0]) * len(x[0][0])
        m, k = ref_avg_multiplier(n)
        return [[[sat(rs(sum(v for row in plane for v in row) * m, k), bits)]] for plane in x]
    if layer.op == "add":
        fa, fb = (graph.formats[t].frac for t in layer.inputs)
        top = max(fa, fb)
        a, b = xs
        return [[[sat(rs((va << (top - fa)) + (vb << (top - fb)), top - fmt_out.frac), bits)
                  for va, vb in zip(ra, rb)] for ra, rb in zip(pa, pb)] for pa, pb in zip(a, b)]
    if layer.op == "concat":
        out = []
        for v, t in zip(xs, layer.inputs):
            s = graph.formats[t].frac - fmt_out.frac
            out += [[[sat(rs(e, s), bits) for e in row] for row in plane] for plane in v]
        return out
    if layer.op in ("relu", "clamp", "leaky_relu"):
        a = {"act": layer.op, **attrs}
        return [[[sat(ref_act(e, a, fmt_out), bits) for e in row] for row in plane] for plane in x]
    if layer.op in ("sigmoid", "tanh"):
        table = ref_table(layer.op, fmt_out)
        return [[[ref_nonlinear(layer.op, e, fmt_in, fmt_out, table) for e in row] for row in plane]
                for plane in x]
    raise NotImplementedError(layer.op)


def ref_run_fixed(graph, x):
    values = {graph.input: np.asarray(x).tolist()}
    for layer in graph.layers:
        values[layer.output] = ref_fixed_layer(graph, layer, [values[t] for t in layer.inputs])
    return {k: np.array(v, dtype=np.int64) for k, v in values.items()}


def ref_float_conv(x, layer):
    sums = ref_conv_sums(x.tolist(), layer.weight.tolist(), layer.attrs) if layer.op == "conv" \
        else ref_fc_sums(x.tolist(), layer.weight.tolist())
    y = np.array(sums, dtype=np.float64) + layer.bias[:, None, None]
    return np.maximum(y, 0) if layer.act == "relu" else y


# -- hand-built graphs ------------------------------------------------------------------------

class Net:
    """A tiny graph builder: `add` appends a layer and returns its output tensor name."""

    def __init__(self, c, h, w, seed=0):
        self.rng = np.random.default_rng(seed)
        self.shapes = {"x": Shape(c, h, w)}
        self.layers = []

    def add(self, op, inputs=("x",), c_out=None, wscale=1.0, **attrs):
        inputs = list(inputs)
        c, h, w = self.shapes[inputs[0]]
        weight = bias = None
        if op == "conv":
            attrs.setdefault("groups", 1)
            kh, kw = attrs["kernel"]
            weight = self.rng.standard_normal((c_out, c // attrs["groups"], kh, kw))
            shape = Shape(c_out, *out_hw(h, w, attrs))
        elif op == "fc":
            weight = self.rng.standard_normal((c_out, c * h * w))
            shape = Shape(c_out, 1, 1)
        elif op in ("maxpool", "avgpool"):
            shape = Shape(c, *out_hw(h, w, attrs))
        elif op == "global_avgpool":
            shape = Shape(c, 1, 1)
        elif op == "concat":
            shape = Shape(sum(self.shapes[t].c for t in inputs), h, w)
        else:
            shape = Shape(c, h, w)
        if weight is not None:
            # per-output-channel magnitudes spread over 2**-3..2**3 so weight fracs differ
            weight *= wscale * 2.0 ** self.rng.integers(-3, 4, size=(c_out,) + (1,) * (weight.ndim - 1))
            bias = self.rng.standard_normal(c_out) * wscale
        name = f"t{len(self.layers)}"
        self.layers.append(Layer(f"l{len(self.layers)}", op, inputs, name, attrs, weight, bias))
        self.shapes[name] = shape
        return name

    def graph(self):
        out = self.layers[-1].output
        return Graph("test", "x", out, dict(self.shapes), self.layers,
                     (1, *self.shapes["x"]), (1, *self.shapes[out]))


def quantized(net, bits, scale=1.0, frames=8, seed=1):
    """Build, calibrate on random normal frames × scale; return (graph, calibration frames)."""
    g = net.graph()
    calib = np.random.default_rng(seed).standard_normal((frames, *g.shapes["x"])) * scale
    return quant.quantize(g, calib, bits=bits), calib


CONV_A = dict(kernel=(3, 2), stride=(1, 2), pads=(1, 0, 2, 1))          # non-square, asymmetric


def g_conv(groups, act=None, **a):
    def build():
        n = Net(4, 6, 7)
        n.add("conv", c_out=6, groups=groups, act=act, **{**CONV_A, **a})
        return n
    return build


def g_depthwise():
    n = Net(4, 5, 6)
    n.add("conv", c_out=8, groups=4, kernel=(3, 3), stride=(1, 2), pads=(2, 1, 0, 1), act="relu")
    return n


def g_fc(act=None):
    def build():
        n = Net(3, 4, 5)
        n.add("fc", c_out=7, act=act)
        return n
    return build


def g_pool(op, **a):
    def build():
        n = Net(3, 7, 6)
        t = n.add("conv", c_out=3, kernel=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0))
        n.add(op, [t], **a)
        return n
    return build


def g_global():
    n = Net(3, 5, 7)
    t = n.add("conv", c_out=4, kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1))
    n.add("global_avgpool", [t])
    return n


def g_add():
    n = Net(3, 5, 4)
    a = n.add("conv", c_out=4, kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1))
    b = n.add("conv", c_out=4, kernel=(1, 3), stride=(1, 1), pads=(0, 1, 0, 1), wscale=20.0)
    n.add("add", [a, b])
    return n


def g_concat():
    n = Net(3, 5, 4)
    a = n.add("conv", c_out=2, kernel=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0), wscale=0.05)
    b = n.add("conv", c_out=3, kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), wscale=8.0)
    n.add("concat", [a, "x", b])
    return n


def g_elementwise(op, **a):
    def build():
        n = Net(3, 4, 5)
        t = n.add("conv", c_out=3, kernel=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0))
        n.add(op, [t], **a)
        return n
    return build


LAYER_CASES = {
    "conv_g1": (g_conv(1), 8),
    "conv_g2_relu": (g_conv(2, "relu", kernel=(2, 3), stride=(2, 1), pads=(0, 2, 1, 0)), 8),
    "conv_g1_relu6": (g_conv(1, "clamp", lo=0.0, hi=6.0), 8),
    "conv_g2_leaky": (g_conv(2, "leaky_relu", alpha=0.1), 8),
    "conv_g1_leaky_16": (g_conv(1, "leaky_relu", alpha=0.01), 16),
    "conv_clip_none_lo": (g_conv(1, "clamp", lo=None, hi=0.75), 8),
    "depthwise": (g_depthwise, 8),
    "depthwise_16": (g_depthwise, 16),
    "fc": (g_fc(), 8),
    "fc_relu_16": (g_fc("relu"), 16),
    "maxpool_pad": (g_pool("maxpool", kernel=(3, 2), stride=(2, 1), pads=(1, 0, 1, 1)), 8),
    "avgpool_incl_pad": (g_pool("avgpool", kernel=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1),
                                count_include_pad=True), 8),
    "avgpool_excl_pad": (g_pool("avgpool", kernel=(3, 2), stride=(2, 1), pads=(1, 1, 2, 0),
                                count_include_pad=False), 8),
    "avgpool_excl_pad_16": (g_pool("avgpool", kernel=(3, 3), stride=(1, 2), pads=(2, 1, 1, 2),
                                   count_include_pad=False), 16),
    "global_avgpool": (g_global, 8),
    "global_avgpool_16": (g_global, 16),
    "add": (g_add, 8),
    "add_16": (g_add, 16),
    "concat": (g_concat, 8),
    "relu": (g_elementwise("relu"), 8),
    "clamp": (g_elementwise("clamp", lo=-0.5, hi=1.25), 8),
    "relu6_16": (g_elementwise("clamp", lo=0.0, hi=6.0), 16),
    "clip_flt_max": (g_elementwise("clamp", lo=0.0, hi=FLT_MAX), 8),
    "leaky_relu": (g_elementwise("leaky_relu", alpha=0.2), 8),
    "sigmoid": (g_elementwise("sigmoid"), 8),
    "tanh": (g_elementwise("tanh"), 8),
    "sigmoid_16": (g_elementwise("sigmoid"), 16),
    "tanh_16": (g_elementwise("tanh"), 12),
}


# -- round_shift, round_half_up, quantize, saturate -------------------------------------------

@settings(max_examples=400, **HYP)
@given(st.integers(-(1 << 40), 1 << 40), st.integers(-8, 20))
@example(1, 1)
@example(-1, 1)
@example(3, 1)
@example(-3, 1)
@example(-(1 << 40), 20)
def test_round_shift_matches_exact_rational(x, s):
    expected = rhu(Fraction(x, 1 << s)) if s > 0 else x * 2 ** -s
    assert int(golden.round_shift(x, s)) == expected
    assert int(golden.round_shift(np.int64(x), np.int64(s))) == expected


@pytest.mark.parametrize("x, s, expected", [
    (5, 1, 3), (-5, 1, -2), (4, 1, 2), (7, 2, 2), (6, 2, 2), (-6, 2, -1), (-7, 2, -2),
    (-2, 2, 0), (2, 2, 1), (0, 5, 0), (3, 0, 3), (3, -2, 12), (-3, -3, -24),
])
def test_round_shift_table(x, s, expected):
    assert int(golden.round_shift(x, s)) == expected


@settings(max_examples=60, **HYP)
@given(st.integers(0, 2 ** 32 - 1), st.lists(st.integers(-8, 20), min_size=1, max_size=6))
def test_round_shift_per_channel_broadcast(seed, shifts):
    """A (C, 1, 1) shift array applies channel by channel to a (C, H, W) array."""
    x = np.random.default_rng(seed).integers(-(1 << 36), 1 << 36, size=(len(shifts), 3, 4))
    s = np.array(shifts)[:, None, None]
    got = golden.round_shift(x, s)
    assert got.shape == x.shape and got.dtype == np.int64
    for c, sc in enumerate(shifts):
        want = [rhu(Fraction(int(v), 1 << sc)) if sc > 0 else int(v) << -sc for v in x[c].ravel()]
        assert got[c].ravel().tolist() == want


@settings(max_examples=300, **HYP)
@given(st.floats(-2.0 ** 40, 2.0 ** 40, allow_nan=False))
@example(0.5)
@example(-0.5)
@example(1.5)
@example(-1.5)
@example(-2.5)
def test_round_half_up_exact(v):
    assert int(golden.round_half_up(v)) == rhu(Fraction(v))


@pytest.mark.parametrize("v", [
    0.49999999999999994,            # 0.5 - 2**-54: nearest integer is 0
    -0.49999999999999994,
    2.0 ** 52 + 1,                  # odd integers at 2**52..2**53 are exact floats
    -(2.0 ** 52) - 1,
    2.5, -2.5, 1e-300, -1e-300,
])
def test_round_half_up_edge_floats(v):
    """Round to nearest, halves up, for every float: computing floor(v + 0.5) in float
    arithmetic gets 0.5 - 2**-54 and odd integers above 2**52 wrong (the addition rounds)."""
    assert int(golden.round_half_up(v)) == rhu(Fraction(v))


FORMATS = [Format(4, 0), Format(8, 4), Format(8, 7), Format(8, -2), Format(12, 9),
           Format(16, 12), Format(16, 0), Format(6, -1)]


@settings(max_examples=300, **HYP)
@given(st.sampled_from(FORMATS), st.floats(-1.0, 1.0, allow_nan=False))
def test_quantize_dequantize_round_trip(fmt, u):
    """Inside the format's range the round trip errs by at most half an LSB, and quantize is
    exact round half up of x * 2**frac."""
    x = u * fmt.max * 2.0 ** -fmt.frac if u >= 0 else -u * fmt.min * 2.0 ** -fmt.frac
    q = golden.quantize(x, fmt)
    assert int(q) == sat(rhu(Fraction(x) * pow2(fmt.frac)), fmt.bits)
    assert abs(Fraction(float(golden.dequantize(q, fmt))) - Fraction(x)) <= pow2(-fmt.frac) / 2


@settings(max_examples=100, **HYP)
@given(st.sampled_from(FORMATS), st.floats(-1e15, 1e15, allow_nan=False))
def test_quantize_saturates(fmt, x):
    q = int(golden.quantize(x, fmt))
    assert fmt.min <= q <= fmt.max
    assert q == sat(rhu(Fraction(x) * pow2(fmt.frac)), fmt.bits)


@pytest.mark.parametrize("x, expected", [
    (1e15, 127), (-1e15, -128), (2.0 ** 59, 127), (2.0 ** 63, 127), (1e30, 127),
    (-1e30, -128), (FLT_MAX, 127), (-FLT_MAX, -128), (math.inf, 127), (-math.inf, -128),
])
def test_quantize_huge_values_saturate(x, expected):
    """Saturation holds however large the float (x * 2**4 beyond int64 included)."""
    assert int(golden.quantize(x, Format(8, 4))) == expected


def test_quantize_array_and_dequantize_values():
    fmt = Format(8, 4)
    q = golden.quantize([0.03125, -0.03125, 7.96875, 8.0, -8.0, -8.1, 1.0 / 3], fmt)
    assert q.dtype == np.int64
    assert q.tolist() == [1, 0, 127, 127, -128, -128, 5]
    assert golden.dequantize(q, fmt).tolist() == [0.0625, 0.0, 7.9375, 7.9375, -8.0, -8.0, 0.3125]
    assert golden.dequantize([3], Format(8, -2)).tolist() == [12.0]


@settings(max_examples=200, **HYP)
@given(st.lists(st.integers(-(1 << 62), 1 << 62), min_size=1, max_size=20), st.integers(2, 32))
def test_saturate_never_leaves_range(values, bits):
    got = golden.saturate(np.array(values, dtype=np.int64), bits)
    assert in_range(got, bits)
    assert got.tolist() == [sat(v, bits) for v in values]


@settings(max_examples=300, **HYP)
@given(st.lists(st.integers(-(1 << 47), 1 << 47), min_size=1, max_size=16),
       st.integers(-4, 30), st.integers(4, 16))
def test_requantize_never_leaves_range(accs, s, bits):
    got = golden.saturate(golden.round_shift(np.array(accs, dtype=np.int64), s), bits)
    assert in_range(got, bits)
    assert got.tolist() == [sat(rs(a, s), bits) for a in accs]


# -- constants: clamp bounds, leaky slope, average reciprocal ---------------------------------

@pytest.mark.parametrize("lo, hi, fmt, expected", [
    (0.0, 6.0, Format(8, 4), (0, 96)),              # ReLU6
    (0.0, 6.0, Format(8, 3), (0, 48)),
    (0.0, 6.0, Format(8, 5), (0, 127)),             # 6 does not fit: clipped to the format
    (0.0, 6.0, Format(16, 12), (0, 24576)),
    (0.0, 6.0, Format(8, -1), (0, 3)),
    (0.0, 6.0, Format(4, 0), (0, 6)),
    (0.0, 6.0, Format(4, 1), (0, 7)),
    (None, 6.0, Format(8, 4), (-128, 96)),
    (0.0, None, Format(8, 4), (0, 127)),
    (None, None, Format(12, 3), (-2048, 2047)),
    (-math.inf, math.inf, Format(8, 2), (-128, 127)),
    (-1.03125, 0.03125, Format(8, 4), (-16, 1)),    # -16.5 → -16, 0.5 → 1: halves up
    (-100.0, 100.0, Format(8, 4), (-128, 127)),
    (-1.0, 1.0, Format(8, 7), (-128, 127)),
    (0.0, FLT_MAX, Format(8, 4), (0, 127)),        # Clip with max = FLT_MAX: no upper bound
    (-FLT_MAX, 6.0, Format(8, 4), (-128, 96)),
    (-1e30, 1e30, Format(16, 12), (-32768, 32767)),
])
def test_clamp_bounds(lo, hi, fmt, expected):
    assert golden.clamp_bounds(lo, hi, fmt) == expected
    assert ref_clamp_bounds(lo, hi, fmt) == expected


@pytest.mark.parametrize("alpha, expected", [
    (0.0, 0), (0.01, 655), (0.1, 6554), (0.2, 13107), (0.5, 32768), (1.0, 65536),
    (2.0 ** -17, 1), (3 * 2.0 ** -17, 2), (2.0 ** -18, 0),
])
def test_leaky_alpha(alpha, expected):
    assert golden.LEAKY_FRAC == 16
    assert golden.leaky_alpha(alpha) == expected


def test_avg_multiplier_all_divisors():
    for n in range(1, 4097):
        m, k = golden.avg_multiplier(n)
        assert (m, k) == ref_avg_multiplier(n), n
        assert 0 < m < 1 << 17
        err = abs(Fraction(m, 1 << k) - Fraction(1, n))
        assert err <= Fraction(1, 1 << (k + 1)), n           # m is 2**k / n rounded
        assert err * n < Fraction(1, 1 << 16), n              # relative error < 2**-16


def test_average_of_equal_values_is_exact():
    """n equal 16-bit values average to themselves for every n in 1..4096."""
    ns = np.arange(1, 4097)
    mk = np.array([golden.avg_multiplier(int(n)) for n in ns])
    values = [-(1 << 15), -(1 << 15) + 1, -12345, -1, 0, 1, 2, 777, (1 << 15) - 1]
    for v in values:
        got = golden.round_shift(ns * v * mk[:, 0], mk[:, 1])
        assert np.all(got == v), (v, ns[got != v][:5])


@settings(max_examples=300, **HYP)
@given(st.integers(1, 4096), st.integers(-(1 << 15), (1 << 15) - 1), st.data())
def test_average_within_one_lsb_of_exact(n, v, data):
    """round_shift(sum * m, k) is within 1 of round half up of the exact sum / n, for sums of
    n values of 16 bits."""
    total = data.draw(st.integers(n * -(1 << 15), n * ((1 << 15) - 1)) | st.just(n * v))
    m, k = golden.avg_multiplier(n)
    got = int(golden.round_shift(np.int64(total) * m, k))
    assert abs(got - rhu(Fraction(total, n))) <= 1


# -- sigmoid and tanh -------------------------------------------------------------------------

NL_IN = [Format(8, 4), Format(8, 6), Format(12, 8), Format(16, 12), Format(16, 8), Format(8, 0),
         Format(6, -1)]
NL_OUT = [Format(8, 7), Format(16, 15)]
# Max |f''| over the reals: sigmoid 1/(6*sqrt(3)) ≈ 0.0962, tanh 4/(3*sqrt(3)) ≈ 0.770. A segment
# is h = 2R / 256 wide (sigmoid 2**-4, tanh 2**-5): interpolation error ≤ h**2 / 8 * max|f''|
# = 4.7e-5 (sigmoid), 9.4e-5 (tanh), both below INTERP_BOUND.
INTERP_BOUND = 2.0 ** -12


def all_inputs(fmt):
    return np.arange(fmt.min, fmt.max + 1, dtype=np.int64)


@pytest.mark.parametrize("kind", ["sigmoid", "tanh"])
@pytest.mark.parametrize("fmt_out", NL_OUT, ids=str)
def test_nonlinear_table(kind, fmt_out):
    assert golden.TABLE_BITS == 8
    table = golden.nonlinear_table(kind, fmt_out)
    assert table.tolist() == ref_table(kind, fmt_out)
    assert np.all(np.diff(table) >= 0)


@pytest.mark.parametrize("kind", ["sigmoid", "tanh"])
@pytest.mark.parametrize("fmt_out", NL_OUT, ids=str)
@pytest.mark.parametrize("fmt_in", NL_IN, ids=str)
def test_nonlinear_every_input(kind, fmt_in, fmt_out):
    """Over every input: monotone non-decreasing, inside the output range, within
    1.5 LSB + INTERP_BOUND of f on [-R, R], and clamped to the table's ends beyond it."""
    x = all_inputs(fmt_in)
    y = golden.nonlinear(kind, x, fmt_in, fmt_out)
    assert y.shape == x.shape
    assert np.all(np.diff(y) >= 0)
    assert in_range(y, fmt_out.bits)
    r = golden.NONLINEAR_RANGE[kind]
    v = x * 2.0 ** -fmt_in.frac
    f = NP_FUNCS[kind](v)
    err = np.abs(y * 2.0 ** -fmt_out.frac - f)
    inside = np.abs(v) <= r
    # node error < 1 LSB (≤ 1/2, or < 1 where f·2**frac rounds up to 2**(bits-1) and saturates),
    # interpolated node errors stay below it, the interpolation rounds by ≤ 1/2 LSB
    assert err[inside].max() <= 1.5 * 2.0 ** -fmt_out.frac + INTERP_BOUND
    table = ref_table(kind, fmt_out)
    assert np.all(y[v <= -r] == table[0]) and np.all(y[v >= r] == table[-1])


@settings(max_examples=40, **HYP)
@given(st.sampled_from(["sigmoid", "tanh"]), st.sampled_from(NL_IN), st.sampled_from(NL_OUT),
       st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60))
def test_nonlinear_matches_rational_interpolation(kind, fmt_in, fmt_out, us):
    """Bit-exact against interpolation at the exact rational table position."""
    x = np.array([fmt_in.min + round(u * (fmt_in.max - fmt_in.min)) for u in us], dtype=np.int64)
    table = ref_table(kind, fmt_out)
    got = golden.nonlinear(kind, x, fmt_in, fmt_out).tolist()
    assert got == [ref_nonlinear(kind, int(v), fmt_in, fmt_out, table) for v in x]


@pytest.mark.parametrize("kind, fmt_in, x, expected", [
    ("sigmoid", Format(8, 4), 0, 64),              # sigmoid(0) = 0.5 → 64 in Q8.7
    ("tanh", Format(8, 4), 0, 0),
    ("sigmoid", Format(8, 4), -128, 0),            # sigmoid(-8) = 3.4e-4 → 0
    ("sigmoid", Format(8, 0), 127, 127),           # far beyond the table: clamps, saturates
    ("tanh", Format(8, 0), -128, -128),
    ("tanh", Format(8, 0), 1, 97),                 # tanh(1) * 128 = 97.48
    ("sigmoid", Format(6, -1), 1, 113),            # sigmoid(2) * 128 = 112.73
])
def test_nonlinear_known_values(kind, fmt_in, x, expected):
    assert int(golden.nonlinear(kind, np.array([x]), fmt_in, Format(8, 7))[0]) == expected


# -- layers: run_fixed against loop references ------------------------------------------------

def random_inputs(fmt, shape, calib, rng):
    """Test frames: full-range random integers, the quantized calibration frames and twice them
    (saturating), and the extremes."""
    lo, hi = fmt.min, fmt.max
    frames = [rng.integers(lo, hi + 1, size=shape) for _ in range(2)]
    frames += [np.clip(np.floor(f * 2.0 ** fmt.frac * k + 0.5), lo, hi).astype(np.int64)
               for f in calib[:2] for k in (1, 2)]
    frames += [np.full(shape, lo), np.full(shape, hi)]
    return frames


@pytest.mark.parametrize("case", LAYER_CASES, ids=str)
def test_run_fixed_matches_loop_reference(case):
    build, bits = LAYER_CASES[case]
    g, calib = quantized(build(), bits)
    assert all(f.bits == bits for f in g.formats.values() if f is not None)
    rng = np.random.default_rng(7)
    shape = tuple(g.shapes["x"])
    for x in random_inputs(g.formats["x"], shape, calib, rng):
        got, want = golden.run_fixed(g, x), ref_run_fixed(g, x)
        for layer in g.layers:
            t = layer.output
            assert got[t].shape == tuple(g.shapes[t]), (layer.name, got[t].shape)
            assert got[t].dtype == np.int64
            np.testing.assert_array_equal(got[t], want[t], err_msg=f"{case}: {layer.name} ({layer.op})")
            assert in_range(got[t], g.formats[t].bits)


def test_layer_cases_exercise_what_they_claim():
    """The hand-built graphs really have per-channel weight fracs and differing input formats."""
    g, _ = quantized(g_conv(1)(), 8)
    assert g.layers[0].wq.per_channel
    g, _ = quantized(g_add(), 8)
    assert g.formats["t0"].frac != g.formats["t1"].frac
    g, _ = quantized(g_concat(), 8)
    assert len({g.formats[t].frac for t in ("t0", "x", "t1")}) == 3


def test_maxpool_pads_with_most_negative():
    """A window entirely of -128s next to padding still gives -128, and padding never wins."""
    n = Net(1, 2, 2)
    n.add("maxpool", kernel=(2, 2), stride=(1, 1), pads=(1, 1, 1, 1))
    g = n.graph()
    g.formats = {"x": Format(8, 4), "t0": Format(8, 4)}
    y = golden.run_fixed(g, np.array([[[-128, -100], [-120, -128]]]))["t0"]
    assert y.tolist() == [[[-128, -100, -100], [-120, -100, -100], [-120, -120, -128]]]


@pytest.mark.parametrize("include_pad, expected", [
    # 3x3 windows, stride 1, pad 1 on a 2x2 image of tens: every window holds all four
    (True, [[[4, 4], [4, 4]]]),                     # 40 / 9 = 4.44 → 4
    (False, [[[10, 10], [10, 10]]]),                # 40 / 4
])
def test_avgpool_divisor(include_pad, expected):
    n = Net(1, 2, 2)
    n.add("avgpool", kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), count_include_pad=include_pad)
    g = n.graph()
    g.formats = {"x": Format(8, 3), "t0": Format(8, 3)}
    assert golden.run_fixed(g, np.full((1, 2, 2), 10))["t0"].tolist() == expected


def test_avgpool_rounds_half_up():
    """Sums of ±6 over 4 elements: 1.5 → 2, -1.5 → -1 (n = 4 has an exact reciprocal)."""
    n = Net(2, 2, 2)
    n.add("global_avgpool")
    g = n.graph()
    g.formats = {"x": Format(8, 0), "t0": Format(8, 0)}
    x = np.array([[[3, 3], [0, 0]], [[-3, -3], [0, 0]]])
    assert golden.run_fixed(g, x)["t0"].ravel().tolist() == [2, -1]


def test_conv_leaky_applies_before_saturation():
    """A large negative sum scaled by alpha lands inside the range instead of saturating first."""
    n = Net(1, 1, 1)
    n.add("conv", c_out=1, kernel=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0), act="leaky_relu",
          alpha=0.125)
    g = n.graph()
    g.formats = {"x": Format(8, 0), "t0": Format(8, 0)}
    g.layers[0].wq = WeightQuant(bits=8, frac=np.array([0]), weight=np.array([[[[100]]]]),
                                 bias=np.array([0]), acc_bits=16)
    # acc = -100 * 100 = -10000; × 1/8 = -1250 → saturates to -128 only after the slope
    assert golden.run_fixed(g, np.array([[[-100]]]))["t0"].item() == -128
    assert golden.run_fixed(g, np.array([[[-8]]]))["t0"].item() == -100
    assert golden.run_fixed(g, np.array([[[-1]]]))["t0"].item() == rs(-100 * 8192, 16)  # -12.5 → -12


# -- accumulator width ------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [4, 8, 12, 16])
@pytest.mark.parametrize("op, c, h, w, kernel", [
    ("conv", 3, 4, 4, (3, 3)), ("conv", 16, 3, 3, (3, 3)), ("fc", 64, 8, 8, None),
    ("fc", 5, 1, 1, None),
])
def test_acc_bits_bounds_worst_case(bits, op, c, h, w, kernel):
    """All inputs -2**(bits-1) against weights of the same sign (and bias of the sum's sign)
    never leave a signed acc_bits accumulator, and the golden accumulates them exactly."""
    n = Net(c, h, w)
    if op == "conv":
        n.add("conv", c_out=2, kernel=kernel, stride=(1, 1), pads=(0, 0, 0, 0))
    else:
        n.add("fc", c_out=2)
    layer = n.layers[0]
    layer.weight = -np.abs(layer.weight) - 0.1          # all negative
    layer.bias = np.abs(layer.bias) + 1.0               # positive, like the products
    g, _ = quantized(n, bits)
    wq, fmt_in = g.layers[0].wq, g.formats["x"]
    fan_in = int(np.prod(wq.weight.shape[1:]))
    for weight in (wq.weight, np.full_like(wq.weight, -(1 << (wq.bits - 1)))):
        for co in range(weight.shape[0]):
            worst = fan_in * fmt_in.min * int(weight[co].min()) + int(wq.bias[co])
            assert worst < 1 << (wq.acc_bits - 1), (worst, wq.acc_bits)
    x = np.full(tuple(g.shapes["x"]), fmt_in.min)
    wq.weight = np.full_like(wq.weight, -(1 << (wq.bits - 1)))
    np.testing.assert_array_equal(golden.run_fixed(g, x)[g.output], ref_run_fixed(g, x)[g.output])


@pytest.mark.parametrize("wide, bias", [
    (False, (0, 0)),                                # sums < 2**53: the double-precision path
    (True, (0, 0)),                                 # sums ~2**55
    (True, ((1 << 55) + 12345, -(1 << 40) - 1)),
], ids=["narrow", "wide", "wide_big_bias"])
def test_conv_exact_with_wide_products(wide, bias):
    """27-bit weights and inputs: partial sums above 2**53 are still accumulated exactly, with an
    honest acc_bits, and the low bits survive into a wide output format."""
    n = Net(2, 3, 3)
    n.add("conv", c_out=2, kernel=(2, 2), stride=(1, 1), pads=(0, 0, 0, 0))
    g = n.graph()
    rng = np.random.default_rng(3)
    weight = rng.integers((1 << 26) - 999, 1 << 26, size=(2, 2, 2, 2)) | 1
    if not wide:
        weight >>= 20
    bias = np.array(bias, dtype=np.int64)
    bound = 8 * (1 << 26) * (1 << 26) + int(np.abs(bias).max())
    g.layers[0].wq = WeightQuant(bits=27, frac=np.array([20, 18]), weight=weight, bias=bias,
                                 acc_bits=bound.bit_length() + 1)
    g.formats = {"x": Format(27, 10), "t0": Format(60, 29)}    # shifts 1 and -1
    x = rng.integers((1 << 26) - 999, 1 << 26, size=(2, 3, 3)) | 1
    got, want = golden.run_fixed(g, x)["t0"], ref_run_fixed(g, x)["t0"]
    np.testing.assert_array_equal(got, want)
    assert np.any(got & 1)                          # the low bits are there to compare


# -- float path and fixed-vs-float ------------------------------------------------------------

FLOAT_CASES = {
    "conv_g1": g_conv(1),
    "conv_g2_relu": g_conv(2, "relu", kernel=(2, 3), stride=(2, 1), pads=(0, 2, 1, 0)),
    "depthwise": g_depthwise,
    "fc": g_fc(),
}


@pytest.mark.parametrize("case", FLOAT_CASES)
def test_run_float_matches_loop_reference(case):
    g = FLOAT_CASES[case]().graph()
    x = np.random.default_rng(5).standard_normal(tuple(g.shapes["x"]))
    layer = g.layers[0]
    got = golden.run_float(g, x)[layer.output]
    np.testing.assert_allclose(got, ref_float_conv(x, layer), rtol=0, atol=1e-9)


@settings(max_examples=25, **HYP)
@given(st.integers(0, 2 ** 32 - 1), st.booleans(), st.sampled_from([None, "relu"]),
       st.integers(1, 3), st.integers(1, 3), st.integers(1, 2), st.integers(1, 2),
       st.integers(0, 1), st.sampled_from([1, 2]))
def test_fixed_16_bit_tracks_float(seed, is_conv, act, kh, kw, sh, sw, pad, groups):
    """Dequantized 16-bit fixed output vs float output, calibrated on the same frames.

    With x̂, ŵ the quantized input and weight (|x̂ - x| ≤ 2**-fi / 2, |ŵ - w| ≤ 2**-fw / 2,
    |x̂| ≤ 2**(bi-1-fi), |w| ≤ 2**(bw-1-fw)), Σŵx̂ - Σwx = Σ(ŵ - w)x̂ + Σw(x̂ - x), so per
    output channel
        |fixed - float| ≤ fan_in · 2**-(fi+fw) · (2**(bi-2) + 2**(bw-2))    products
                          + 2**-(fi+fw) / 2                                   bias rounding
                          + 2**-fo / 2                                        requantization
    (ReLU is 1-Lipschitz; the float output lies within the output range ± 1/2 LSB, so
    saturation only moves the fixed value towards it.)
    """
    n = Net(2 * groups, 5, 6, seed=seed)
    if is_conv:
        n.add("conv", c_out=2 * groups, kernel=(kh, kw), stride=(sh, sw), groups=groups,
              pads=(pad, 0, 0, pad), act=act)
    else:
        n.add("fc", c_out=5, act=act)
    g, frames = quantized(n, 16, scale=3.0, frames=4, seed=seed)
    layer, fmt_in, fmt_out = g.layers[0], g.formats["x"], g.formats[g.output]
    wq = layer.wq
    fan_in = int(np.prod(wq.weight.shape[1:]))
    fi, fo = fmt_in.frac, fmt_out.frac
    fw = wq.frac.astype(np.float64)[:, None, None]
    bound = (fan_in * 2.0 ** -(fi + fw) * (2.0 ** (fmt_in.bits - 2) + 2.0 ** (wq.bits - 2))
             + 2.0 ** -(fi + fw) / 2 + 2.0 ** -fo / 2)
    for frame in frames:
        xq = golden.quantize(frame, fmt_in)
        fixed = golden.dequantize(golden.run_fixed(g, xq)[g.output], fmt_out)
        flt = golden.run_float(g, frame)[g.output]
        assert np.all(np.abs(fixed - flt) <= bound)


# -- float_error ------------------------------------------------------------------------------

def test_float_error_known_values():
    ref = np.array([[3.0, 4.0], [0.0, 1.0]])
    out = np.array([[3.0, 5.0], [1.0, 1.0]])
    e = golden.float_error(ref, out)
    assert e["max_abs"] == 1.0
    assert e["rel_rms"] == pytest.approx(math.sqrt(2 / 26), rel=1e-12)   # ‖(0,1,1,0)‖ / ‖(3,4,0,1)‖
    assert e["top1_agreement"] == 0.5                                    # argmax 1,1 vs 1,0


def test_float_error_flattens_frames():
    ref = np.zeros((3, 2, 2))
    ref[0, 1, 1], ref[1, 0, 0], ref[2, 0, 1] = 2.0, -1.0, 4.0
    out = ref.copy()
    out[1, 0, 0] = 3.0                     # frame 1: argmax moves from (0, 1) to (0, 0)
    e = golden.float_error(ref, out)
    assert e["max_abs"] == 4.0
    assert e["rel_rms"] == pytest.approx(4.0 / math.sqrt(21), rel=1e-12)
    assert e["top1_agreement"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("out, rel_rms", [(np.zeros((2, 3)), 0.0), (np.eye(2, 3) * 1e-3, 1.0)])
def test_float_error_zero_reference(out, rel_rms):
    e = golden.float_error(np.zeros((2, 3)), out)
    assert e["rel_rms"] == rel_rms
    assert e["max_abs"] == float(np.abs(out).max())
