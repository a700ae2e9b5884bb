# amaranth: UnusedElaboratable=no
"""LaneConverter: every pair of lane widths dividing 12 channels in amaranth.sim (exact order
under stalls, rate and latency without), cocotb + Verilator for two designs."""

import itertools
import random

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from dnnhw.ir import Shape
from dnnhw.layers.lanes import LaneConverter
from dnnhw.sim import BenchResult, run_stream_bench, to_beats


# -- helpers ------------------------------------------------------------------------------------

def simulate(dut, inputs, outputs, *, stall_in=0.0, stall_out=0.0, seed=0, drain=8):
    """amaranth.sim twin of `run_stream_bench`, with the same stall model and result."""
    rng = random.Random(seed)
    got = {p: [] for p in outputs}
    cycles = {p: [] for p in [*inputs, *outputs]}
    extra = dict.fromkeys(outputs, 0)
    limit = 200 + 20 * (sum(map(len, inputs.values())) + sum(outputs.values()))

    async def bench(ctx):
        sent, presenting, cycle = dict.fromkeys(inputs, 0), dict.fromkeys(inputs, False), 0
        while any(len(got[p]) < n for p, n in outputs.items()):
            assert cycle < limit, f"timeout: got { {p: len(v) for p, v in got.items()} } of {outputs}"
            for p, beats in inputs.items():
                if not presenting[p] and sent[p] < len(beats):
                    presenting[p] = rng.random() >= stall_in
                ctx.set(getattr(dut, p).valid, presenting[p])
                if presenting[p]:
                    ctx.set(getattr(dut, p).payload, [int(v) for v in beats[sent[p]]])
            ready = {p: rng.random() >= stall_out for p in outputs}
            for p in outputs:
                ctx.set(getattr(dut, p).ready, ready[p])
            for p in inputs:
                if presenting[p] and ctx.get(getattr(dut, p).ready):
                    cycles[p].append(cycle)
                    sent[p], presenting[p] = sent[p] + 1, False
            for p in outputs:
                if ready[p] and ctx.get(getattr(dut, p).valid):
                    got[p].append(list(ctx.get(getattr(dut, p).payload)))
                    cycles[p].append(cycle)
            await ctx.tick()
            cycle += 1
        for p in inputs:
            ctx.set(getattr(dut, p).valid, 0)
        for _ in range(drain):
            for p in outputs:
                ctx.set(getattr(dut, p).ready, 1)
                extra[p] += ctx.get(getattr(dut, p).valid)
            await ctx.tick()

    top = Module()                      # a clock domain even for a design of wires
    top.domains.sync = ClockDomain()
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return BenchResult({p: np.array(v, dtype=np.int64) for p, v in got.items()},
                       {p: cycles[p] for p in inputs}, {p: cycles[p] for p in outputs}, 0, extra)


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
    check(SHAPE, 5, lanes_in, lanes_out, 2, simulate, seed=lanes_in, stall_in=0.3, stall_out=0.3)
    dut, result = check(SHAPE, 5, lanes_in, lanes_out, 3, simulate, seed=lanes_out)
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
