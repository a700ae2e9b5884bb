"""A whole convolution layer, SlidingWindow → ConvEngine, against golden in cocotb + Verilator:
bit-exact under random stalls, frames back to back, rate and latency as the docstring states."""

import numpy as np
import pytest

from dnnhw import golden
from dnnhw.ir import Shape
from dnnhw.layers.conv import Conv
from dnnhw.sim import from_beats, run_stream_bench, to_beats
from support.graphs import conv_graph


CASES = {   # name: graph arguments, folding (coarse_in, coarse_out, fine[, logic multipliers])
    "3x3_pad1_relu": ((Shape(4, 6, 7), 8, (3, 3), (1, 1), (1, 1, 1, 1)), {"act": "relu"}, (2, 4, 3)),
    "kws_4x10_stride_1x2": ((Shape(1, 12, 16), 4, (4, 10), (1, 2), (1, 4, 2, 5)), {"act": "relu"}, (1, 2, 5)),
    "depthwise_stride2": ((Shape(4, 7, 7), 4, (3, 3), (2, 2), (0, 0, 1, 1)), {"groups": 4, "act": "clamp", "lo": 0.0, "hi": 6.0}, (1, 1, 9)),
    "pointwise_no_window": ((Shape(6, 4, 5), 4, (1, 1), (1, 1), (0, 0, 0, 0)), {"bits": 16}, (3, 2, 1)),
    "logic_multipliers_16bit": ((Shape(2, 5, 5), 4, (3, 3), (1, 1), (1, 1, 1, 1)), {"bits": 16}, (2, 2, 3, 7)),
}
SLOW_CASES = {
    "5x5_leaky": ((Shape(3, 9, 8), 4, (5, 5), (1, 1), (2, 2, 2, 2)), {"act": "leaky_relu", "alpha": 0.1}, (3, 1, 5)),
    "grouped_2": ((Shape(4, 6, 6), 6, (3, 3), (1, 1), (1, 1, 1, 1)), {"groups": 2}, (2, 3, 9)),
    "7x7_stride2_full_fold": ((Shape(2, 11, 11), 4, (7, 7), (2, 2), (3, 3, 3, 3)), {"act": "relu"}, (2, 4, 49)),
    "logic_multipliers_4bit": ((Shape(3, 6, 6), 3, (3, 3), (1, 1), (1, 1, 1, 1)), {"bits": 4}, (3, 3, 1, 9)),
}


def check(name, args, kwargs, folding, stall):
    graph, frames = conv_graph(*args, **kwargs)
    layer = graph.layers[0]
    ci, co, fine, *logic = folding
    conv = Conv.from_layer(graph, layer, coarse_in=ci, coarse_out=co, fine=fine,
                           logic_multipliers=logic[0] if logic else 0)
    fmt = graph.formats["x"]
    xs = [golden.quantize(f, fmt) for f in frames[:3]]
    want = [golden.run_fixed(graph, x)["y"] for x in xs]
    beats = np.concatenate([to_beats(x, ci) for x in xs])
    per_frame = graph.shapes["y"].size // co
    result = run_stream_bench(conv, {"i": beats}, {"o": per_frame * len(xs)}, name=f"conv_{name}",
                              stall_in=stall, stall_out=stall, seed=1)
    assert result.extra == {"o": 0}
    got = result.outputs["o"].reshape(len(xs), per_frame, co)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(from_beats(g, tuple(graph.shapes["y"])), w)
    return conv, result, per_frame


@pytest.mark.parametrize("name", sorted(CASES))
def test_conv_layer(name):
    args, kwargs, folding = CASES[name]
    check(name, args, kwargs, folding, stall=0.3)
    conv, result, per_frame = check(name, args, kwargs, folding, stall=0.0)
    ends = result.out_cycles["o"][per_frame - 1::per_frame]
    assert ends[2] - ends[1] == conv.cycles_per_frame
    assert result.out_cycles["o"][0] - result.in_cycles["i"][0] == conv.latency


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SLOW_CASES))
def test_conv_layer_slow(name):
    args, kwargs, folding = SLOW_CASES[name]
    check(name, args, kwargs, folding, stall=0.3)
