# amaranth: UnusedElaboratable=no
"""Activation against golden.run_fixed: amaranth.sim for the format sweeps (every 8-bit input of
sigmoid and tanh), cocotb + Verilator for a few designs with rate and latency asserted."""

import itertools

import numpy as np
import pytest

from dnnhw import golden
from dnnhw.ir import Format, Graph, Layer, Shape
from dnnhw.layers.activation import Activation
from dnnhw.quant import quantize
from dnnhw.sim.amaranth_sim import run_stream_sim
from dnnhw.sim import run_stream_bench, to_beats


# -- helpers ------------------------------------------------------------------------------------



def one_layer(op, shape, formats=None, **attrs):
    """Graph x → op → y; `formats` (fmt_x, fmt_y) set directly, else quantize it later."""
    graph = Graph("t", "x", "y", {"x": shape, "y": shape}, [Layer("act", op, ["x"], "y", attrs)],
                  (1, *shape), (1, *shape))
    if formats:
        graph.formats = {"x": formats[0], "y": formats[1]}
    return graph


def quantized(op, shape, bits, seed=0, **attrs):
    frames = np.random.default_rng(seed).normal(0, 2, (8, *shape))
    return quantize(one_layer(op, shape, **attrs), frames, bits=bits)


def activation_for(graph, lanes):
    """The block for the graph's one layer, its constants from golden."""
    layer, fmt_in, fmt_out = graph.layers[0], graph.formats["x"], graph.formats["y"]
    extra = {}
    if layer.op == "clamp":
        extra["lo"], extra["hi"] = golden.clamp_bounds(layer.attrs["lo"], layer.attrs["hi"], fmt_out)
    if layer.op == "leaky_relu":
        extra["alpha_q"] = golden.leaky_alpha(layer.attrs["alpha"])
    if layer.op in ("sigmoid", "tanh"):
        extra.update(frac_in=fmt_in.frac, frac_out=fmt_out.frac)
    return Activation(graph.shapes["x"], fmt_in.bits, fmt_out.bits, lanes, layer.op, **extra)


def every_input(fmt, shape):
    """Every integer of `fmt` once, as a map of `shape` (padded with zeros)."""
    values = np.arange(fmt.min, fmt.max + 1)
    assert len(values) <= shape.size, (fmt, shape)
    return np.concatenate([values, np.zeros(shape.size - len(values), np.int64)]).reshape(tuple(shape))


def frames_of(graph, count, seed):
    fmt, shape = graph.formats["x"], graph.shapes["x"]
    return np.random.default_rng(seed).integers(fmt.min, fmt.max + 1, (count, *shape))


def check(graph, lanes, frames, run, **stalls):
    """Run the frames back to back through the block; compare with golden."""
    dut = activation_for(graph, lanes)
    beats_in = np.concatenate([to_beats(x, lanes) for x in frames])
    expected = np.concatenate([to_beats(golden.run_fixed(graph, x)["y"], lanes) for x in frames])
    result = run(dut, {"i": beats_in}, {"o": len(expected)}, **stalls)
    assert result.extra == {"o": 0}
    np.testing.assert_array_equal(result.outputs["o"], expected)
    return dut, result


def assert_timing(dut, result, frames):
    """No stalls: one beat per cycle, frames back to back, the stated latency."""
    out = np.array(result.out_cycles["o"])
    assert (np.diff(out) == 1).all()
    ends = out[dut.cycles_per_frame - 1::dut.cycles_per_frame]
    assert len(ends) == frames and (np.diff(ends) == dut.cycles_per_frame).all()
    assert out[0] - result.in_cycles["i"][0] == dut.latency


def verilator(name):
    return lambda dut, inputs, outputs, **kw: run_stream_bench(dut, inputs, outputs, name=name, **kw)


# -- sigmoid and tanh: every 8-bit input, in amaranth.sim ----------------------------------------

FORMATS_8 = [Format(8, f) for f in (7, 5, 4, 2, 0, -1, -3)] + [Format(6, -1), Format(4, 3)]
FORMATS_OUT = [Format(8, 7), Format(6, 3), Format(12, 11)]


@pytest.mark.parametrize("kind, fmt_in, fmt_out",
                         list(itertools.product(("sigmoid", "tanh"), FORMATS_8, FORMATS_OUT)), ids=str)
def test_nonlinear_every_input(kind, fmt_in, fmt_out):
    shape = Shape(4, 8, 8)
    graph = one_layer(kind, shape, (fmt_in, fmt_out))
    check(graph, 4, [every_input(fmt_in, shape)], run_stream_sim, stall_in=0.3, stall_out=0.3, seed=1)


@pytest.mark.parametrize("kind, fmt_in", list(itertools.product(
    ("sigmoid", "tanh"), [Format(16, 12), Format(16, 15), Format(12, 3)])), ids=str)
def test_nonlinear_wide_inputs(kind, fmt_in):
    """Random inputs of wide formats (every one of Q16.12 runs under Verilator below)."""
    shape = Shape(2, 16, 16)
    graph = one_layer(kind, shape, (fmt_in, Format(16, 15)))
    check(graph, 2, frames_of(graph, 1, 3), run_stream_sim, stall_in=0.2, stall_out=0.4, seed=2)


def test_nonlinear_segment_shift_negative():
    """The formats above cover the three cases of golden's segment shift."""
    shifts = {golden.segment_shift(k, f) for k in ("sigmoid", "tanh") for f in FORMATS_8}
    assert min(shifts) < 0 and 0 in shifts and max(shifts) > 0


# -- relu, clamp, leaky_relu in amaranth.sim ------------------------------------------------------

ELEMENTWISE = [
    ("relu", {}), ("clamp", {"lo": 0.0, "hi": 6.0}), ("clamp", {"lo": -0.75, "hi": 1.25}),
    ("clamp", {"lo": None, "hi": 0.5}), ("leaky_relu", {"alpha": 0.1}), ("leaky_relu", {"alpha": 0.01}),
]


@pytest.mark.parametrize("case, bits, lanes", list(itertools.product(ELEMENTWISE, (4, 8, 16), (1, 3))),
                         ids=str)
def test_elementwise_quantized(case, bits, lanes):
    op, attrs = case
    graph = quantized(op, Shape(6, 3, 4), bits, **attrs)
    dut, _ = check(graph, lanes, frames_of(graph, 2, bits), run_stream_sim, stall_in=0.3, stall_out=0.3, seed=bits)
    assert dut.latency == (2 if op == "leaky_relu" else 1)


@pytest.mark.parametrize("op, attrs", [("relu", {}), ("clamp", {"lo": -1.0, "hi": 3.0}),
                                       ("leaky_relu", {"alpha": 0.3}), ("leaky_relu", {"alpha": 2.5}),
                                       ("leaky_relu", {"alpha": -0.5})], ids=str)
def test_elementwise_saturates_to_narrower_output(op, attrs):
    graph = one_layer(op, Shape(4, 4, 4), (Format(10, 3), Format(6, 1)), **attrs)
    check(graph, 2, frames_of(graph, 2, 7), run_stream_sim, stall_in=0.3, stall_out=0.3, seed=3)


# -- cocotb + Verilator: bit-exact under stalls, rate and latency without ----------------------------

VERILATOR = [
    # every Q16.12 input (65536), sigmoid: segment shift 8
    ("act_sigmoid_q16_12",
     lambda: one_layer("sigmoid", Shape(4, 128, 128), (Format(16, 12), Format(16, 15))), 4, True),
    # every Q6.-1 input, tanh: negative segment shift, one lane
    ("act_tanh_q6_m1", lambda: one_layer("tanh", Shape(2, 4, 8), (Format(6, -1), Format(8, 7))), 1, True),
    ("act_leaky_q8", lambda: quantized("leaky_relu", Shape(4, 5, 6), 8, alpha=0.1), 2, False),
]
VERILATOR_SLOW = [
    ("act_relu_q8", lambda: quantized("relu", Shape(4, 5, 6), 8), 4, False),
    ("act_relu6_q16", lambda: quantized("clamp", Shape(6, 4, 5), 16, lo=0.0, hi=6.0), 3, False),
    ("act_tanh_q8_4", lambda: one_layer("tanh", Shape(4, 8, 8), (Format(8, 4), Format(8, 7))), 2, True),
    ("act_sigmoid_q8_0", lambda: one_layer("sigmoid", Shape(4, 8, 8), (Format(8, 0), Format(8, 7))), 4, True),
]


def _verilator_case(name, build, lanes, exhaustive):
    graph = build()
    frames = [every_input(graph.formats["x"], graph.shapes["x"])] if exhaustive else frames_of(graph, 2, 5)
    check(graph, lanes, frames, verilator(name), stall_in=0.3, stall_out=0.3, seed=11)
    timed = frames_of(graph, 2, 6)
    dut, result = check(graph, lanes, timed, verilator(name))
    assert_timing(dut, result, len(timed))


@pytest.mark.parametrize("name, build, lanes, exhaustive", VERILATOR, ids=[c[0] for c in VERILATOR])
def test_verilator(name, build, lanes, exhaustive):
    _verilator_case(name, build, lanes, exhaustive)


@pytest.mark.slow
@pytest.mark.parametrize("name, build, lanes, exhaustive", VERILATOR_SLOW, ids=[c[0] for c in VERILATOR_SLOW])
def test_verilator_slow(name, build, lanes, exhaustive):
    _verilator_case(name, build, lanes, exhaustive)


# -- parameters ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "gelu"},
     "Activation: unknown kind 'gelu'; expected one of relu, clamp, leaky_relu, sigmoid, tanh"),
    ({"lanes": 3}, "Activation: lanes=3 must divide 4 channels"),
    ({"kind": "clamp", "lo": 0}, "Activation clamp: needs hi"),
    ({"kind": "leaky_relu"}, "Activation leaky_relu: needs alpha_q"),
    ({"kind": "tanh", "frac_in": 4}, "Activation tanh: needs frac_out"),
])
def test_errors(kwargs, message):
    args = {"shape": Shape(4, 2, 2), "bits_in": 8, "bits_out": 8, "lanes": 2, "kind": "relu", **kwargs}
    with pytest.raises(ValueError) as info:
        Activation(**args)
    assert str(info.value) == message
