# amaranth: UnusedElaboratable=no
"""StreamFIFO: order kept under stalls, capacity, rate and latency; cocotb + Verilator for the
buffered and the unbuffered queue, amaranth.sim for depths and a generic payload."""


import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from amaranth.lib import data
from amaranth.sim import Simulator

from dnnhw.layers.fifo import StreamFIFO
from dnnhw.sim import run_stream_bench
from dnnhw.sim.amaranth_sim import run_stream_sim, stream_get, stream_put


# -- helpers ------------------------------------------------------------------------------------


def check(bits, lanes, depth, buffered, beats, run, seed=0, **stalls):
    rng = np.random.default_rng(seed)
    x = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), (beats, lanes))
    dut = StreamFIFO(bits, lanes, depth, buffered)
    result = run(dut, {"i": x}, {"o": beats}, seed=seed, **stalls)
    assert result.extra == {"o": 0}
    np.testing.assert_array_equal(result.outputs["o"], x)
    return dut, result


def assert_timing(dut, result, interval):
    """No stalls: a beat every `interval` cycles on both sides, each offered `latency` cycles
    after it went in."""
    inp, out = np.array(result.in_cycles["i"]), np.array(result.out_cycles["o"])
    assert (np.diff(inp) == interval).all() and (np.diff(out) == interval).all()
    assert (out - inp == dut.latency).all()


def verilator(name):
    return lambda dut, inputs, outputs, **kw: run_stream_bench(dut, inputs, outputs, name=name, **kw)


@pytest.mark.parametrize("buffered, depth, interval", [
    (True, 1, 2), (True, 2, 2), (True, 3, 1), (True, 8, 1), (True, 5, 1),
    (False, 1, 2), (False, 2, 1), (False, 7, 1),
])
def test_fifo_sim(buffered, depth, interval):
    check(7, 3, depth, buffered, 150, run_stream_sim, seed=depth, stall_in=0.3, stall_out=0.4)
    dut, result = check(7, 3, depth, buffered, 40, run_stream_sim, seed=depth + 1)
    assert_timing(dut, result, interval)


@pytest.mark.parametrize("buffered", [True, False])
@pytest.mark.parametrize("depth", [1, 2, 5])
def test_capacity(buffered, depth):
    """With the output held off the queue takes exactly `depth` beats."""
    dut = StreamFIFO(8, 1, depth, buffered)
    taken = []

    async def testbench(ctx):
        ctx.set(dut.i.valid, 1)
        for cycle in range(3 * depth + 6):
            ctx.set(dut.i.payload, [len(taken)])
            if ctx.get(dut.i.ready):
                taken.append(cycle)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    assert len(taken) == depth


def test_generic_layout():
    layout = data.StructLayout({"value": signed(12), "last": unsigned(1)})
    dut = StreamFIFO(None, None, 4, layout=layout)
    beats = [{"value": v, "last": v % 3 == 0} for v in (-5, 7, 2047, -2048, 0, 3, 1)]
    got = []

    async def producer(ctx):
        for beat in beats:
            await stream_put(ctx, dut.i, beat)

    async def consumer(ctx):
        for _ in beats:
            for _ in range(2):
                await ctx.tick()
            value = await stream_get(ctx, dut.o)
            got.append({"value": value.value, "last": bool(value.last)})

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    assert got == beats


VERILATOR = [("fifo_buffered_d4", 8, 2, 4, True), ("fifo_unbuffered_d3", 6, 1, 3, False)]
VERILATOR_SLOW = [("fifo_buffered_d64", 16, 4, 64, True), ("fifo_buffered_d2", 8, 1, 2, True)]


def _verilator_case(name, bits, lanes, depth, buffered):
    check(bits, lanes, depth, buffered, 400, verilator(name), seed=3, stall_in=0.3, stall_out=0.3)
    check(bits, lanes, depth, buffered, 300, verilator(name), seed=5, stall_in=0.0, stall_out=0.7)
    dut, result = check(bits, lanes, depth, buffered, 100, verilator(name), seed=4)
    assert_timing(dut, result, 1 if depth >= (3 if buffered else 2) else 2)


@pytest.mark.parametrize("name, bits, lanes, depth, buffered", VERILATOR, ids=[c[0] for c in VERILATOR])
def test_verilator(name, bits, lanes, depth, buffered):
    _verilator_case(name, bits, lanes, depth, buffered)


@pytest.mark.slow
@pytest.mark.parametrize("name, bits, lanes, depth, buffered", VERILATOR_SLOW,
                         ids=[c[0] for c in VERILATOR_SLOW])
def test_verilator_slow(name, bits, lanes, depth, buffered):
    _verilator_case(name, bits, lanes, depth, buffered)


def test_depth_at_least_one():
    with pytest.raises(ValueError) as info:
        StreamFIFO(8, 1, 0)
    assert str(info.value) == "StreamFIFO: depth must be at least 1, got 0"
