"""The performance model against the blocks' own `cycles_per_frame` and `latency` attributes,
which the layer tests verify exactly in cocotb + Verilator. Blocks are only constructed (never
elaborated or simulated), so the whole matrix runs in seconds."""

import itertools

import numpy as np
import pytest

from dnnhw import golden, model, quant
from dnnhw.ir import Format, Graph, Layer, Shape
from dnnhw.layers.activation import Activation
from dnnhw.layers.add import Add
from dnnhw.layers.concat import Concat
from dnnhw.layers.conv import Conv
from dnnhw.layers.fc import FullyConnected
from dnnhw.layers.global_pool import GlobalAveragePool
from dnnhw.layers.pool import Pool
from dnnhw.model import Folding
from support.graphs import conv_graph, out_hw


# -- one-layer graphs -----------------------------------------------------------------------------


def fc_graph(in_shape, n_out, act=None, seed=0, **act_attrs):
    rng = np.random.default_rng(seed)
    out = Shape(n_out, 1, 1)
    layer = Layer("fc", "fc", ["x"], "y", attrs={"act": act, **act_attrs},
                  weight=rng.standard_normal((n_out, in_shape.size)) * 0.3,
                  bias=rng.standard_normal(n_out) * 0.1)
    graph = Graph("fc", "x", "y", {"x": in_shape, "y": out}, [layer], (1, *in_shape), (1, *out))
    return quant.quantize(graph, rng.standard_normal((4, *in_shape)))


def plain_graph(op, shapes, out_shape, fmt=Format(8, 4), **attrs):
    """Graph of one weightless layer reading tensors x0, x1, ... of `shapes`, formats set."""
    names = [f"x{k}" for k in range(len(shapes))]
    layer = Layer(op, op, names, "y", attrs)
    graph = Graph(op, names[0], "y", {**dict(zip(names, shapes)), "y": out_shape}, [layer],
                  (1, *shapes[0]), (1, *out_shape))
    graph.formats = {**{n: fmt for n in names}, "y": fmt}
    return graph


def assert_model_matches(graph, layer, folding, block):
    assert model.cycles_per_frame(graph, layer, folding) == block.cycles_per_frame, folding
    assert model.latency(graph, layer, folding) == block.latency, folding
    if len(layer.inputs) == 1:      # the network timing reproduces the layer's own latency
        assert model.network(graph, {layer.name: folding}).first_output == block.latency, folding


# -- conv -----------------------------------------------------------------------------------------


CONV_CASES = {   # name: conv_graph arguments and keywords
    "3x3_pad1_relu": ((Shape(4, 6, 7), 8, (3, 3), (1, 1), (1, 1, 1, 1)), {"act": "relu"}),
    "3x3_valid": ((Shape(2, 5, 5), 4, (3, 3), (1, 1), (0, 0, 0, 0)), {}),
    "kws_4x10_stride_1x2": ((Shape(1, 12, 16), 4, (4, 10), (1, 2), (1, 4, 2, 5)), {"act": "relu"}),
    "depthwise_stride2": ((Shape(4, 7, 7), 4, (3, 3), (2, 2), (0, 0, 1, 1)),
                          {"groups": 4, "act": "clamp", "lo": 0.0, "hi": 6.0}),
    "pointwise_no_window": ((Shape(6, 4, 5), 4, (1, 1), (1, 1), (0, 0, 0, 0)), {"bits": 16}),
    "pointwise_stride2": ((Shape(4, 6, 6), 6, (1, 1), (2, 2), (0, 0, 0, 0)), {}),
    "pointwise_padded": ((Shape(2, 3, 3), 2, (1, 1), (1, 1), (1, 1, 1, 1)), {}),
    "5x5_leaky": ((Shape(3, 9, 8), 4, (5, 5), (1, 1), (2, 2, 2, 2)), {"act": "leaky_relu", "alpha": 0.1}),
    "grouped_2": ((Shape(4, 6, 6), 6, (3, 3), (1, 1), (1, 1, 1, 1)), {"groups": 2}),
    "7x7_stride2": ((Shape(2, 11, 11), 4, (7, 7), (2, 2), (3, 3, 3, 3)), {"act": "relu"}),
    "2x2_stride2_big_pads": ((Shape(2, 4, 4), 2, (2, 2), (2, 2), (3, 0, 1, 2)), {}),
    "1xk_row": ((Shape(3, 1, 12), 3, (1, 3), (1, 1), (0, 1, 0, 1)), {"act": "leaky_relu", "alpha": 0.2}),
    "single_output": ((Shape(2, 3, 3), 3, (3, 3), (1, 1), (0, 0, 0, 0)), {}),
    "wide_16_channels": ((Shape(16, 4, 4), 16, (3, 3), (1, 1), (1, 1, 1, 1)), {}),
}


def test_conv_matches_blocks():
    """Every folding of every case; the matrix must include convs with and without a FIFO."""
    fifo_seen = set()
    for name, (args, kwargs) in CONV_CASES.items():
        graph = conv_graph(*args, **kwargs)[0]
        layer = graph.layers[0]
        for f in model.foldings(graph, layer):
            conv = Conv.from_layer(graph, layer, f.coarse_in, f.coarse_out, f.fine,
                                   coarse_group=f.coarse_group)
            assert_model_matches(graph, layer, f, conv)
            if conv.window is not None:
                fifo_seen.add(conv.fifo is not None)
    assert fifo_seen == {True, False}


def test_conv_pointwise_has_no_window():
    graph = conv_graph(*CONV_CASES["pointwise_no_window"][0])[0]
    layer = graph.layers[0]
    conv = Conv.from_layer(graph, layer, 3, 2, 1)
    assert conv.window is None and conv.fifo is None
    assert model.latency(graph, layer, Folding(3, 2, 1)) == conv.engine.latency


# -- fc -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("in_shape, n_out, kwargs", [
    (Shape(12, 1, 1), 6, {}),
    (Shape(4, 3, 2), 5, {"act": "relu"}),
    (Shape(8, 2, 2), 8, {"act": "leaky_relu", "alpha": 0.1}),
    (Shape(6, 1, 1), 4, {"act": "clamp", "lo": 0.0, "hi": 6.0}),
])
def test_fc_matches_blocks(in_shape, n_out, kwargs):
    graph = fc_graph(in_shape, n_out, **kwargs)
    layer = graph.layers[0]
    for f in model.foldings(graph, layer):
        assert f.fine == 1
        fc = FullyConnected.from_layer(graph, layer, f.coarse_in, f.coarse_out)
        assert_model_matches(graph, layer, f, fc)


# -- pooling --------------------------------------------------------------------------------------


POOL_CASES = [   # shape, kernel, stride, pads
    (Shape(4, 6, 6), (2, 2), (2, 2), (0, 0, 0, 0)),
    (Shape(6, 7, 5), (3, 3), (2, 2), (1, 1, 1, 1)),
    (Shape(2, 5, 9), (3, 2), (1, 3), (0, 1, 2, 0)),
    (Shape(8, 4, 4), (3, 3), (1, 1), (1, 1, 1, 1)),
]


@pytest.mark.parametrize("op", ["maxpool", "avgpool"])
@pytest.mark.parametrize("case", range(len(POOL_CASES)))
def test_pool_matches_blocks(op, case):
    shape, kernel, stride, pads = POOL_CASES[case]
    out = Shape(shape.c, *out_hw(shape, kernel, stride, pads))
    graph = plain_graph(op, [shape], out, kernel=kernel, stride=stride, pads=pads,
                        count_include_pad=False)
    layer = graph.layers[0]
    for f in model.foldings(graph, layer):
        pool = Pool(shape, kernel, stride, pads, 8, f.coarse_in, "max" if op == "maxpool" else "avg")
        assert_model_matches(graph, layer, f, pool)


@pytest.mark.parametrize("shape", [Shape(4, 3, 3), Shape(6, 1, 7), Shape(12, 5, 4), Shape(3, 1, 1)])
def test_global_pool_matches_blocks(shape):
    graph = plain_graph("global_avgpool", [shape], Shape(shape.c, 1, 1))
    layer = graph.layers[0]
    for f in model.foldings(graph, layer):
        assert_model_matches(graph, layer, f, GlobalAveragePool(shape, 8, f.coarse_in))


# -- elementwise ----------------------------------------------------------------------------------


ACT_ATTRS = {"relu": {}, "clamp": {"lo": 0.0, "hi": 6.0}, "leaky_relu": {"alpha": 0.1},
             "sigmoid": {}, "tanh": {}}


@pytest.mark.parametrize("kind", sorted(ACT_ATTRS))
def test_activation_matches_blocks(kind):
    shape, fmt_out = Shape(6, 3, 4), Format(8, 7)
    graph = plain_graph(kind, [shape], shape, **ACT_ATTRS[kind])
    graph.formats["y"] = fmt_out
    layer, fmt_in = graph.layers[0], graph.formats["x0"]
    extra = {}
    if kind == "clamp":
        extra["lo"], extra["hi"] = golden.clamp_bounds(0.0, 6.0, fmt_out)
    if kind == "leaky_relu":
        extra["alpha_q"] = golden.leaky_alpha(0.1)
    if kind in ("sigmoid", "tanh"):
        extra.update(frac_in=fmt_in.frac, frac_out=fmt_out.frac)
    for f in model.foldings(graph, layer):
        block = Activation(shape, fmt_in.bits, fmt_out.bits, f.coarse_in, kind, **extra)
        assert_model_matches(graph, layer, f, block)


@pytest.mark.parametrize("shape", [Shape(4, 3, 5), Shape(9, 2, 2)])
def test_add_matches_blocks(shape):
    graph = plain_graph("add", [shape, shape], shape)
    layer = graph.layers[0]
    for f in model.foldings(graph, layer):
        assert_model_matches(graph, layer, f, Add(shape, f.coarse_in, 8, 8, 8, (1, 2), 1))


@pytest.mark.parametrize("channels", [(4, 6), (2, 2, 8), (3, 5)])
def test_concat_matches_blocks(channels):
    shapes = [Shape(c, 3, 4) for c in channels]
    graph = plain_graph("concat", shapes, Shape(sum(channels), 3, 4))
    layer = graph.layers[0]
    lanes = [f.coarse_in for f in model.foldings(graph, layer)]
    assert lanes == [n for n in range(1, min(channels) + 1) if all(c % n == 0 for c in channels)]
    for f in model.foldings(graph, layer):
        block = Concat(shapes, f.coarse_in, [(8, 4)] * len(shapes), (8, 4))
        assert_model_matches(graph, layer, f, block)


# -- validity of foldings -------------------------------------------------------------------------


def _constructs(build):
    try:
        build()
    except ValueError:
        return False
    return True


def test_foldings_are_exactly_the_valid_ones():
    """For a grid of factors, the model accepts a folding iff the block constructs."""
    graph = conv_graph(*CONV_CASES["grouped_2"][0], **CONV_CASES["grouped_2"][1])[0]
    layer = graph.layers[0]
    valid = set(model.foldings(graph, layer))
    for ci, co, fine in itertools.product(range(1, 5), range(1, 5), range(1, 10)):
        f = Folding(ci, co, fine)
        ok = _constructs(lambda: Conv.from_layer(graph, layer, ci, co, fine))
        assert ok == (f in valid), f
        assert ok == _constructs(lambda: model.check(graph, layer, f)), f

    graph = fc_graph(Shape(4, 3, 2), 6)
    layer = graph.layers[0]
    valid = set(model.foldings(graph, layer))
    for ci, co in itertools.product(range(1, 9), range(1, 8)):
        f = Folding(ci, co)
        ok = _constructs(lambda: FullyConnected.from_layer(graph, layer, ci, co))
        assert ok == (f in valid), f
        assert ok == _constructs(lambda: model.check(graph, layer, f)), f

    shape = Shape(6, 4, 4)
    graph = plain_graph("maxpool", [shape], Shape(6, 2, 2), kernel=(2, 2), stride=(2, 2),
                        pads=(0, 0, 0, 0))
    layer = graph.layers[0]
    valid = set(model.foldings(graph, layer))
    for lanes in range(1, 8):
        ok = _constructs(lambda: Pool(shape, (2, 2), (2, 2), (0, 0, 0, 0), 8, lanes))
        assert ok == (Folding(lanes, lanes) in valid)
    with pytest.raises(ValueError):
        model.check(graph, layer, Folding(2, 3))
    with pytest.raises(ValueError):
        model.cycles_per_frame(graph, layer, Folding(1, 1, 2))


# -- the network ----------------------------------------------------------------------------------


def three_layer_graph():
    """x (3,8,8) → conv 3×3 pad 1 (8) → maxpool 2×2 → fc (10), quantized."""
    rng = np.random.default_rng(1)
    shapes = {"x": Shape(3, 8, 8), "a": Shape(8, 8, 8), "b": Shape(8, 4, 4), "y": Shape(10, 1, 1)}
    layers = [
        Layer("conv", "conv", ["x"], "a", {"kernel": (3, 3), "stride": (1, 1), "pads": (1, 1, 1, 1),
                                           "groups": 1, "act": "relu"},
              weight=rng.standard_normal((8, 3, 3, 3)) * 0.3, bias=rng.standard_normal(8) * 0.1),
        Layer("pool", "maxpool", ["a"], "b", {"kernel": (2, 2), "stride": (2, 2), "pads": (0, 0, 0, 0)}),
        Layer("fc", "fc", ["b"], "y", {"act": None},
              weight=rng.standard_normal((10, 128)) * 0.1, bias=rng.standard_normal(10) * 0.1),
    ]
    graph = Graph("net", "x", "y", shapes, layers, (1, 3, 8, 8), (1, 10))
    return quant.quantize(graph, rng.standard_normal((4, 3, 8, 8)))


def test_network_bottleneck_and_latency():
    graph = three_layer_graph()
    conv, pool, fc = graph.layers
    # unfolded: conv 64 px · 8·3·9 = 13824 cycles, pool 8·8·8 = 512, fc 10·128 = 1280
    perf = model.network(graph, {})
    assert (perf.bottleneck, perf.cycles_per_frame) == ("conv", 13824)
    assert perf.layers["pool"].cycles_per_frame == 512
    # the frame's last conv pixel leaves after ~13824 cycles; the fc needs it, then 10·128 steps
    assert 13824 + 1280 <= perf.latency <= 13824 + 1280 + 100
    # conv fully folded: window-bound at 10·10·3/3 = 100; fc now the slowest
    plan = {"conv": Folding(3, 8, 9), "pool": Folding(8, 8), "fc": Folding(1, 2)}
    perf = model.network(graph, plan)
    assert (perf.bottleneck, perf.cycles_per_frame) == ("fc", 640)
    assert perf.layers["conv"].cycles_per_frame == 100
    plan["fc"] = Folding(8, 10)
    perf = model.network(graph, plan)
    assert (perf.bottleneck, perf.cycles_per_frame) == ("conv", 100)
    # full rate everywhere, no converters: the first output is the sum of the layers' latencies
    blocks = [Conv.from_layer(graph, conv, 3, 8, 9), Pool(Shape(8, 8, 8), (2, 2), (2, 2), (0, 0, 0, 0),
                                                           graph.formats["a"].bits, 8),
              FullyConnected.from_layer(graph, fc, 8, 10)]
    assert perf.latency >= perf.first_output >= sum(b.latency for b in blocks)


def test_network_edges_converters_and_branch_fifos():
    """x → conv → a, x → relu → b, add(a, b): the add's inputs are queued as deep as their
    pixel timing needs, the early branch (the relu's) by the pixels the conv's window looks
    ahead; the conv's 1-lane output is widened to the add's 2 lanes."""
    graph = conv_graph(Shape(2, 5, 5), 2, (3, 3), (1, 1), (1, 1, 1, 1))[0]
    conv = graph.layers[0]
    conv.output = "a"
    graph.shapes["a"] = graph.shapes.pop("y")
    graph.layers += [Layer("relu", "relu", ["x"], "b"), Layer("add", "add", ["a", "b"], "y")]
    graph.shapes["b"] = graph.shapes["y"] = Shape(2, 5, 5)
    graph.formats["a"] = graph.formats["b"] = graph.formats["y"]
    plan = {"relu": Folding(2, 2), "add": Folding(2, 2)}
    perf = model.network(graph, plan)
    assert perf.bottleneck == "conv"
    by_reader = {(e.tensor, e.reader): e for e in perf.edges}
    assert by_reader["x", "conv"].fifo_depth == by_reader["x", "relu"].fifo_depth == 0  # the host
    assert (by_reader["a", "add"].lanes_from, by_reader["a", "add"].lanes_to) == (1, 2)
    # a row of 1-beat pixels + 4, and the pixels the relu's output waits for the conv's: the
    # window's row and pixel of lookahead and its pipeline
    row = 5
    assert by_reader["a", "add"].fifo_depth == row + 4 + 1
    waiting = by_reader["b", "add"].fifo_depth - row - 4
    assert row + 1 <= waiting <= 25 - row
    assert by_reader["y", None].fifo_depth == 0
    # the add waits for the conv's last pixel: after the conv's whole frame
    assert perf.latency > model.cycles_per_frame(graph, conv, Folding())
