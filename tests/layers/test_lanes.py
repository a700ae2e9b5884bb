# amaranth: UnusedElaboratable=no
"""LaneConverter: every pair of lane widths dividing 12 channels in amaranth.sim (exact order
under stalls, rate and latency without), cocotb + Verilator for two designs."""

import itertools

import numpy as np
import pytest

from dnnhw.ir import Shape
from dnnhw.layers.lanes import LaneConverter
from dnnhw.sim.amaranth_sim import run_stream_sim
from dnnhw.sim import run_stream_bench, to_beats


# -- helpers ------------------------------------------------------------------------------------



def check(shape, bits, lanes_in, lanes_out, frames, run, seed=0, **stalls):
    """Random frames back to back through the converter; the values must come out in order."""
    rng = np.random.default_rng(seed)
    xs = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), (frames, *shape))
    dut = LaneConverter(shape, bits, lanes_in, lanes_out)
    expected = np.concatenate([to_beats(x, lanes_out) for x in xs])
    result = run(dut, {"i": np.concatenate([to_beats(x, lanes_in) for x in xs])}, {"o": len(expected)},
                 seed=seed, **stalls)
    assert result.extra == {"o": 0}
    np.testing.assert_array_equal(result.outputs["o"], expected)
    return dut, result


def assert_timing(dut, result, shape, frames):
    """No stalls: the narrower side moves a beat every cycle; a frame takes C·H·W / min(lanes)."""
    lanes_in, lanes_out = dut.lanes_in, dut.lanes_out
    out, inp = np.array(result.out_cycles["o"]), np.array(result.in_cycles["i"])
    per_frame = shape.size // lanes_out
    ends = out[per_frame - 1::per_frame]
    assert len(ends) == frames
    assert (np.diff(ends) == shape.size // dut.lanes_per_cycle).all()
    if lanes_in <= lanes_out:
        assert (np.diff(inp) == 1).all()
    if lanes_out <= lanes_in:
        assert (np.diff(out) == 1).all()
    assert out[0] - inp[0] == dut.latency


def verilator(name):
    return lambda dut, inputs, outputs, **kw: run_stream_bench(dut, inputs, outputs, name=name, **kw)


LANES = (1, 2, 3, 4, 6, 12)
SHAPE = Shape(12, 2, 3)


@pytest.mark.parametrize("lanes_in, lanes_out", list(itertools.product(LANES, LANES)))
def test_convert_sim(lanes_in, lanes_out):
    check(SHAPE, 5, lanes_in, lanes_out, 2, run_stream_sim, seed=lanes_in, stall_in=0.3, stall_out=0.3)
    dut, result = check(SHAPE, 5, lanes_in, lanes_out, 3, run_stream_sim, seed=lanes_out)
    assert_timing(dut, result, SHAPE, 3)


@pytest.mark.parametrize("lanes_in, lanes_out, latency", [(1, 4, 4), (4, 1, 1), (2, 3, 4), (3, 2, 3),
                                                          (4, 6, 4), (6, 4, 3), (5, 5, 0)])
def test_latency_formula(lanes_in, lanes_out, latency):
    assert LaneConverter(60, 8, lanes_in, lanes_out).latency == latency


VERILATOR = [("lanes_1_to_4", Shape(8, 3, 2), 8, 1, 4), ("lanes_6_to_4", Shape(12, 2, 3), 8, 6, 4)]
VERILATOR_SLOW = [("lanes_4_to_1", Shape(8, 3, 2), 8, 4, 1), ("lanes_2_to_3", Shape(6, 3, 3), 16, 2, 3)]


def _verilator_case(name, shape, bits, lanes_in, lanes_out):
    check(shape, bits, lanes_in, lanes_out, 2, verilator(name), seed=3, stall_in=0.3, stall_out=0.3)
    dut, result = check(shape, bits, lanes_in, lanes_out, 3, verilator(name), seed=4)
    assert_timing(dut, result, shape, 3)


@pytest.mark.parametrize("name, shape, bits, lanes_in, lanes_out", VERILATOR, ids=[c[0] for c in VERILATOR])
def test_verilator(name, shape, bits, lanes_in, lanes_out):
    _verilator_case(name, shape, bits, lanes_in, lanes_out)


@pytest.mark.slow
@pytest.mark.parametrize("name, shape, bits, lanes_in, lanes_out", VERILATOR_SLOW,
                         ids=[c[0] for c in VERILATOR_SLOW])
def test_verilator_slow(name, shape, bits, lanes_in, lanes_out):
    _verilator_case(name, shape, bits, lanes_in, lanes_out)


def test_lanes_must_divide_channels():
    with pytest.raises(ValueError) as info:
        LaneConverter(Shape(6, 2, 2), 8, 2, 4)
    assert str(info.value) == "LaneConverter: lanes=4 must divide 6 channels"
