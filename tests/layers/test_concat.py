# amaranth: UnusedElaboratable=no
"""Concat against golden: amaranth.sim for several input counts, channel counts, formats and lane
counts, cocotb + Verilator for two designs with rate and latency asserted."""


import numpy as np
import pytest

from dnnhw import golden
from dnnhw.ir import Format, Graph, Layer, Shape
from dnnhw.layers.concat import Concat
from dnnhw.sim.amaranth_sim import run_stream_sim
from dnnhw.sim import run_stream_bench, to_beats


# -- helpers ------------------------------------------------------------------------------------



def concat_graph(channels, h, w, formats, fmt_out):
    names = [f"x{k}" for k in range(len(channels))]
    shapes = {n: Shape(c, h, w) for n, c in zip(names, channels)}
    out = Shape(sum(channels), h, w)
    graph = Graph("t", names[0], "y", {**shapes, "y": out},
                  [Layer("concat", "concat", names, "y")], (1, *shapes[names[0]]), (1, *out))
    graph.formats = {**dict(zip(names, formats)), "y": fmt_out}
    return graph


def check(channels, hw, lanes, formats, fmt_out, frames, run, seed=0, **stalls):
    """Run `frames` frames of every input back to back through Concat; compare with golden."""
    graph = concat_graph(channels, *hw, formats, fmt_out)
    layer = graph.layers[0]
    rng = np.random.default_rng(seed)
    xs = [[rng.integers(f.min, f.max + 1, (c, *hw)) for c, f in zip(channels, formats)]
          for _ in range(frames)]
    dut = Concat([graph.shapes[t] for t in layer.inputs], lanes, formats, fmt_out)
    inputs = {f"i{k}": np.concatenate([to_beats(x[k], lanes) for x in xs]) for k in range(len(channels))}
    # golden.run_fixed seeds only graph.input: run the concat layer on all inputs directly
    expected = np.concatenate([to_beats(golden.run_layer(graph, layer, x), lanes) for x in xs])
    result = run(dut, inputs, {"o": len(expected)}, seed=seed, **stalls)
    assert result.extra == {"o": 0}
    np.testing.assert_array_equal(result.outputs["o"], expected)
    return dut, result


def verilator(name):
    return lambda dut, inputs, outputs, **kw: run_stream_bench(dut, inputs, outputs, name=name, **kw)


Q = Format
# channels per input, (H, W), lanes, input formats, output format
CASES = {
    "three_l2": ((2, 4, 6), (3, 4), 2, [Q(8, 4), Q(8, 6), Q(8, 2)], Q(8, 3)),
    "three_l1_odd": ((1, 3, 2), (2, 5), 1, [Q(8, 4), Q(6, 1), Q(12, 9)], Q(8, 3)),
    "two_same": ((4, 4), (3, 3), 4, [Q(8, 5), Q(8, 5)], Q(8, 5)),
    "two_l2_saturating": ((2, 6), (4, 2), 2, [Q(16, 2), Q(8, -1)], Q(6, 1)),
    "one_l3": ((6,), (2, 3), 3, [Q(8, 3)], Q(4, 0)),
    "four_l1": ((1, 1, 2, 1), (3, 2), 1, [Q(8, 0), Q(8, 1), Q(8, 2), Q(8, 3)], Q(8, 1)),
    # a quantized model's scales: input 0 at the output's scale, input 1 multiplied by its ratio,
    # clipped to the output's range (an int8 zero point's)
    "scaled_l2": ((2, 4), (3, 3), 2, [Q(9, 8, 1.94724, 0, 255), Q(9, 7, 1.5031, 0, 255)],
                  Q(9, 8, 1.94724, -20, 235)),
}


@pytest.mark.parametrize("case", CASES)
def test_concat_sim(case):
    check(*CASES[case], 2, run_stream_sim, seed=1, stall_in=0.3, stall_out=0.3)


def test_cases_cover_shifts():
    shifts = [f.frac - out.frac for *_, fmts, out in CASES.values() for f in fmts
              if not out.scaled]
    assert min(shifts) < 0 and 0 in shifts and max(shifts) > 0


VERILATOR = ["three_l2", "two_l2_saturating"]
VERILATOR_SLOW = ["three_l1_odd", "four_l1", "scaled_l2"]


def _verilator_case(case):
    name = f"concat_{case}"
    check(*CASES[case], 2, verilator(name), seed=3, stall_in=0.3, stall_out=0.3)
    dut, result = check(*CASES[case], 3, verilator(name), seed=4)
    out = np.array(result.out_cycles["o"])
    assert (np.diff(out) == 1).all()                          # one beat per cycle
    ends = out[dut.cycles_per_frame - 1::dut.cycles_per_frame]
    assert len(ends) == 3 and (np.diff(ends) == dut.cycles_per_frame).all()
    assert out[0] - result.in_cycles["i0"][0] == dut.latency == 1


@pytest.mark.parametrize("case", VERILATOR)
def test_verilator(case):
    _verilator_case(case)


@pytest.mark.slow
@pytest.mark.parametrize("case", VERILATOR_SLOW)
def test_verilator_slow(case):
    _verilator_case(case)


@pytest.mark.parametrize("args, message", [
    (([Shape(2, 3, 3), Shape(3, 3, 3)], 2, [(8, 0), (8, 0)], (8, 0)),
     "Concat: lanes=2 must divide the channels of every input, got 2, 3"),
    (([Shape(2, 3, 3), Shape(2, 3, 4)], 1, [(8, 0), (8, 0)], (8, 0)),
     "Concat: inputs must have the same height and width, got 2x3x3, 2x3x4"),
    (([Shape(2, 3, 3), Shape(2, 3, 3)], 1, [(8, 0)], (8, 0)), "Concat: 2 inputs but 1 formats"),
])
def test_errors(args, message):
    with pytest.raises(ValueError) as info:
        Concat(*args)
    assert str(info.value) == message
