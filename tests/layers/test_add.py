# amaranth: UnusedElaboratable=no
"""Add against golden: amaranth.sim for a matrix of formats (left and right output shifts,
saturation) and lane counts, cocotb + Verilator for two designs with rate and latency asserted."""

import itertools

import numpy as np
import pytest

from dnnhw import golden
from dnnhw.ir import Format, Graph, Layer, Shape
from dnnhw.layers.add import Add
from dnnhw.sim.amaranth_sim import run_stream_sim
from dnnhw.sim import run_stream_bench, to_beats


# -- helpers ------------------------------------------------------------------------------------



def add_graph(shape, fmt_a, fmt_b, fmt_out):
    graph = Graph("t", "a", "y", {"a": shape, "b": shape, "y": shape},
                  [Layer("add", "add", ["a", "b"], "y")], (1, *shape), (1, *shape))
    graph.formats = {"a": fmt_a, "b": fmt_b, "y": fmt_out}
    return graph


def golden_add(graph, a, b):
    # golden.run_fixed seeds only graph.input: run the add layer on both inputs directly
    return golden.run_layer(graph, graph.layers[0], [a, b])


def check(shape, lanes, fmts, frames, run, seed=0, **stalls):
    """Run `frames` frame pairs back to back through Add; compare with golden."""
    fmt_a, fmt_b, fmt_out = fmts
    graph = add_graph(shape, fmt_a, fmt_b, fmt_out)
    rng = np.random.default_rng(seed)
    pairs = [(rng.integers(fmt_a.min, fmt_a.max + 1, tuple(shape)),
              rng.integers(fmt_b.min, fmt_b.max + 1, tuple(shape))) for _ in range(frames)]
    dut = Add.from_formats(shape, lanes, fmt_a, fmt_b, fmt_out)
    inputs = {"i0": np.concatenate([to_beats(a, lanes) for a, _ in pairs]),
              "i1": np.concatenate([to_beats(b, lanes) for _, b in pairs])}
    expected = np.concatenate([to_beats(golden_add(graph, a, b), lanes) for a, b in pairs])
    result = run(dut, inputs, {"o": len(expected)}, seed=seed, **stalls)
    assert result.extra == {"o": 0}
    np.testing.assert_array_equal(result.outputs["o"], expected)
    return dut, result


def verilator(name):
    return lambda dut, inputs, outputs, **kw: run_stream_bench(dut, inputs, outputs, name=name, **kw)


# (fmt_a, fmt_b, fmt_out): the output shift top - frac_out is right, left or none
FORMATS = {
    "right": (Format(8, 4), Format(8, 6), Format(8, 3)),
    "right_neg_frac": (Format(8, -2), Format(8, 1), Format(8, -1)),
    "left": (Format(8, 2), Format(6, 3), Format(12, 5)),
    "left_saturating": (Format(8, 2), Format(8, 0), Format(8, 4)),
    "none": (Format(8, 5), Format(8, 5), Format(8, 5)),
    "right_saturating_16": (Format(16, 10), Format(8, 2), Format(6, 8)),
    "wide": (Format(16, 12), Format(16, 3), Format(16, 9)),
    # a quantized model's scales: multipliers, and an output range narrowed by a zero point
    "scaled": (Format(9, 7, 1.3716, 0, 255), Format(9, 8, 1.6929, 0, 255),
               Format(9, 6, 1.0153, -128 - 35, 127 - 35)),
    "scaled_by_pow2": (Format(8, 4), Format(9, 8, 1.6929, 0, 255), Format(8, 5, 1.25)),
}


@pytest.mark.parametrize("fmts, lanes", list(itertools.product(FORMATS, (1, 2, 4))), ids=str)
def test_add_sim(fmts, lanes):
    check(Shape(4, 3, 5), lanes, FORMATS[fmts], 2, run_stream_sim, seed=lanes, stall_in=0.3, stall_out=0.3)


def test_formats_cover_shifts():
    shifts = [max(a.frac, b.frac) - o.frac for a, b, o in FORMATS.values() if not o.scaled]
    assert min(shifts) < 0 and 0 in shifts and max(shifts) > 0


VERILATOR = [("add_right_l2", Shape(4, 5, 6), 2, "right"),
             ("add_left_sat_l1", Shape(3, 4, 5), 1, "left_saturating")]
VERILATOR_SLOW = [("add_scaled_l2", Shape(4, 3, 4), 2, "scaled"),
                  ("add_wide_l4", Shape(8, 3, 4), 4, "wide"),
                  ("add_right_sat_l2", Shape(2, 6, 5), 2, "right_saturating_16")]


def _verilator_case(name, shape, lanes, fmts):
    check(shape, lanes, FORMATS[fmts], 2, verilator(name), seed=3, stall_in=0.3, stall_out=0.3)
    dut, result = check(shape, lanes, FORMATS[fmts], 3, verilator(name), seed=4)
    out = np.array(result.out_cycles["o"])
    assert (np.diff(out) == 1).all()                         # one beat per cycle
    ends = out[dut.cycles_per_frame - 1::dut.cycles_per_frame]
    assert len(ends) == 3 and (np.diff(ends) == dut.cycles_per_frame).all()
    assert out[0] - result.in_cycles["i0"][0] == dut.latency == (2 if dut.scaled else 1)
    assert result.in_cycles["i0"] == result.in_cycles["i1"]  # joined beat by beat


@pytest.mark.parametrize("name, shape, lanes, fmts", VERILATOR, ids=[c[0] for c in VERILATOR])
def test_verilator(name, shape, lanes, fmts):
    _verilator_case(name, shape, lanes, fmts)


@pytest.mark.slow
@pytest.mark.parametrize("name, shape, lanes, fmts", VERILATOR_SLOW, ids=[c[0] for c in VERILATOR_SLOW])
def test_verilator_slow(name, shape, lanes, fmts):
    _verilator_case(name, shape, lanes, fmts)


def test_inputs_joined_under_stalls():
    """Each input transfers only together with the other."""
    _, result = check(Shape(2, 4, 4), 1, FORMATS["right"], 1, run_stream_sim, seed=9, stall_in=0.5, stall_out=0.2)
    assert result.in_cycles["i0"] == result.in_cycles["i1"]


def test_lanes_must_divide_channels():
    with pytest.raises(ValueError) as info:
        Add(Shape(6, 2, 2), 4, 8, 8, 8, (1, 1), 0)
    assert str(info.value) == "Add: lanes=4 must divide 6 channels"
