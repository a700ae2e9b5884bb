# amaranth: UnusedElaboratable=no
"""Fork: every output gets every beat once, in order, whatever the stalls on each side;
cocotb + Verilator for one design (rate and latency asserted), amaranth.sim for the rest."""


import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from amaranth.lib import data
from amaranth.sim import Simulator

from dnnhw.layers.fork import Fork
from dnnhw.sim import run_stream_bench
from dnnhw.sim.amaranth_sim import run_stream_sim, stream_get, stream_put


# -- helpers ------------------------------------------------------------------------------------


def check(bits, lanes, n, beats, run, seed=0, **stalls):
    rng = np.random.default_rng(seed)
    x = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), (beats, lanes))
    dut = Fork(bits, lanes, n)
    result = run(dut, {"i": x}, {f"o{k}": beats for k in range(n)}, seed=seed, **stalls)
    assert result.extra == {f"o{k}": 0 for k in range(n)}
    for k in range(n):
        np.testing.assert_array_equal(result.outputs[f"o{k}"], x)
    return dut, result


def assert_timing(dut, result, n):
    """No stalls: a beat per cycle on every port, offered on the outputs in the cycle it arrives."""
    inp = np.array(result.in_cycles["i"])
    assert (np.diff(inp) == 1).all()
    for k in range(n):
        assert result.out_cycles[f"o{k}"] == result.in_cycles["i"]
    assert dut.latency == 0


def verilator(name):
    return lambda dut, inputs, outputs, **kw: run_stream_bench(dut, inputs, outputs, name=name, **kw)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_fork_sim(n):
    check(6, 2, n, 200, run_stream_sim, seed=n, stall_in=0.2, stall_out=0.5)
    dut, result = check(6, 2, n, 50, run_stream_sim, seed=n)
    assert_timing(dut, result, n)


def test_outputs_take_beats_at_different_times():
    """o1 is held off for 10 cycles: o0 takes the first beat once, then the input waits for o1."""
    dut = Fork(8, 1, 2)
    got = {0: [], 1: []}

    async def producer(ctx):
        for v in range(6):
            await stream_put(ctx, dut.i, [v])

    def consumer(k, wait):
        async def testbench(ctx):
            for _ in range(wait):
                await ctx.tick()
            for _ in range(6):
                got[k].append(list(await stream_get(ctx, getattr(dut, f"o{k}")))[0])
        return testbench

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer(0, 0))
    sim.add_testbench(consumer(1, 10))
    sim.run()
    assert got == {0: list(range(6)), 1: list(range(6))}


def test_generic_layout():
    layout = data.StructLayout({"value": signed(12), "last": unsigned(1)})
    dut = Fork(None, None, 2, layout=layout)
    beats = [{"value": v, "last": v % 3 == 0} for v in (-5, 7, 2047, -2048, 0)]
    got = {0: [], 1: []}

    async def producer(ctx):
        for beat in beats:
            await stream_put(ctx, dut.i, beat)

    def consumer(k):
        async def testbench(ctx):
            for _ in beats:
                value = await stream_get(ctx, getattr(dut, f"o{k}"))
                got[k].append({"value": value.value, "last": bool(value.last)})
        return testbench

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    for k in (0, 1):
        sim.add_testbench(consumer(k))
    sim.run()
    assert got == {0: beats, 1: beats}


VERILATOR = [("fork_3x2_q8", 8, 2, 3)]
VERILATOR_SLOW = [("fork_1x4_q16", 16, 4, 1), ("fork_2x1_q5", 5, 1, 2)]


def _verilator_case(name, bits, lanes, n):
    check(bits, lanes, n, 300, verilator(name), seed=3, stall_in=0.3, stall_out=0.3)
    check(bits, lanes, n, 300, verilator(name), seed=5, stall_in=0.0, stall_out=0.6)
    dut, result = check(bits, lanes, n, 100, verilator(name), seed=4)
    assert_timing(dut, result, n)


@pytest.mark.parametrize("name, bits, lanes, n", VERILATOR, ids=[c[0] for c in VERILATOR])
def test_verilator(name, bits, lanes, n):
    _verilator_case(name, bits, lanes, n)


@pytest.mark.slow
@pytest.mark.parametrize("name, bits, lanes, n", VERILATOR_SLOW, ids=[c[0] for c in VERILATOR_SLOW])
def test_verilator_slow(name, bits, lanes, n):
    _verilator_case(name, bits, lanes, n)


def test_needs_an_output():
    with pytest.raises(ValueError) as info:
        Fork(8, 1, 0)
    assert str(info.value) == "Fork: needs at least 1 output, got n=0"
