# amaranth: UnusedElaboratable=no
"""Slice against golden: amaranth.sim over ranges at the start, middle and end of the channels,
narrowing and lane counts, under random stalls; cocotb + Verilator for two, with the rate (a beat
taken every cycle, the kept ones offered) and latency asserted; pack then slice is the identity."""

import numpy as np
import pytest

from dnnhw import golden
from dnnhw.ir import Format, Graph, Layer, Shape
from dnnhw.layers.slice import Slice
from dnnhw.sim import run_stream_bench, to_beats
from dnnhw.sim.amaranth_sim import run_stream_sim


def slice_graph(shape, start, stop, bits_in, fmt_out):
    c, h, w = shape
    graph = Graph("t", "x", "y", {"x": Shape(c, h, w), "y": Shape(stop - start, h, w)},
                  [Layer("slice", "slice", ["x"], "y",
                         {"start": start, "stop": stop, "format": (fmt_out.bits, fmt_out.frac)})],
                  (1, c, h, w), (1, stop - start, h, w))
    graph.formats = {"x": Format(bits_in, 0), "y": fmt_out}
    return graph


def check(shape, start, stop, lanes, bits_in, fmt_out, frames, run, seed=0, **stalls):
    """`frames` frames through Slice, values within the output's bits; compare with golden."""
    graph = slice_graph(shape, start, stop, bits_in, fmt_out)
    rng = np.random.default_rng(seed)
    xs = [rng.integers(fmt_out.min, fmt_out.max + 1, shape) for _ in range(frames)]
    dut = Slice(Shape(*shape), start, stop, lanes, bits_in, fmt_out.bits)
    expected = np.concatenate([to_beats(golden.run_fixed(graph, x)["y"], lanes) for x in xs])
    result = run(dut, {"i": np.concatenate([to_beats(x, lanes) for x in xs])},
                 {"o": len(expected)}, seed=seed, **stalls)
    assert result.extra == {"o": 0}
    np.testing.assert_array_equal(result.outputs["o"], expected)
    return dut, result


# (C, H, W), start, stop, lanes, input bits, output format
CASES = {
    "head_l2": ((8, 3, 4), 0, 4, 2, 8, Format(8, 5)),
    "tail_l2_narrowing": ((12, 2, 3), 6, 12, 2, 16, Format(8, 3)),
    "middle_l1": ((5, 3, 2), 1, 3, 1, 8, Format(6, -1)),
    "all_l4": ((8, 2, 2), 0, 8, 4, 8, Format(8, 7)),
    "one_beat_l3": ((9, 2, 3), 3, 6, 3, 12, Format(12, 0)),
}


@pytest.mark.parametrize("case", CASES)
def test_slice_sim(case):
    check(*CASES[case], 2, run_stream_sim, seed=1, stall_in=0.3, stall_out=0.3)


def _verilator_case(case):
    name = f"slice_{case}"
    run = lambda dut, i, o, **kw: run_stream_bench(dut, i, o, name=name, **kw)
    check(*CASES[case], 2, run, seed=3, stall_in=0.3, stall_out=0.3)
    dut, result = check(*CASES[case], 3, run, seed=4)
    shape, start, stop, lanes = CASES[case][:4]
    beats, kept = shape[0] // lanes, (stop - start) // lanes
    taken = np.array(result.in_cycles["i"])
    assert (np.diff(taken) == 1).all()                        # every input beat in one cycle
    assert dut.cycles_per_frame == len(taken) // 3 == shape[1] * shape[2] * beats
    out = np.array(result.out_cycles["o"])
    assert out[0] - taken[start // lanes] == dut.latency == 1
    assert len(out) == 3 * shape[1] * shape[2] * kept


@pytest.mark.parametrize("case", ["tail_l2_narrowing", "middle_l1"])
def test_verilator(case):
    _verilator_case(case)


def test_pack_then_slice_is_the_identity():
    """A concat with ``pack`` keeps each tensor's integers; slices give them back."""
    from dnnhw.ops import get
    fa, fb = Format(8, 5), Format(16, 2)
    shapes = {"a": Shape(2, 2, 2), "b": Shape(4, 2, 2), "p": Shape(6, 2, 2)}
    graph = Graph("t", "a", "p", shapes, [Layer("pack", "concat", ["a", "b"], "p", {"pack": True})],
                  (1, 2, 2, 2), (1, 6, 2, 2))
    graph.formats = {"a": fa, "b": fb}
    layer = graph.layers[0]
    graph.formats["p"] = get("concat").output_format(graph, layer, 16, None)
    assert graph.formats["p"] == Format(16, 0)
    rng = np.random.default_rng(0)
    a, b = rng.integers(fa.min, fa.max + 1, (2, 2, 2)), rng.integers(fb.min, fb.max + 1, (4, 2, 2))
    packed = golden.run_layer(graph, layer, [a, b])
    np.testing.assert_array_equal(packed, np.concatenate([a, b]))
    cut = slice_graph((6, 2, 2), 2, 6, 16, fb)
    np.testing.assert_array_equal(golden.run_fixed(cut, packed)["y"], b)


@pytest.mark.parametrize("args", [((Shape(6, 2, 2), 1, 4, 2, 8, 8)), ((Shape(6, 2, 2), 4, 8, 2, 8, 8)),
                                  ((Shape(6, 2, 2), 2, 2, 1, 8, 8))])
def test_errors(args):
    with pytest.raises(ValueError, match="Slice: channels"):
        Slice(*args)
