"""Tests of the ping-pong pixel buffer (dnnhw/layers/pixel_buffer.py) in amaranth.sim.

A writer streams pixels in with random stalls while a reader, a separate testbench, waits for a
full bank, reads its beats in a random order (checking each against the pixel written, and that
`data` holds while `en` is low) and releases it, on the cycle of its last read or later. The
writer never gets more than two pixels ahead of the reader; with an eager reader the buffer
takes one beat per cycle.
"""

import random

import pytest
from amaranth.hdl import signed, unsigned
from amaranth.lib import data
from amaranth.sim import Simulator

from dnnhw.layers.pixel_buffer import PixelBuffer


def _pixels(shape, lanes, beats, count, rng):
    """`count` pixels of `beats` beats, each `lanes` random integers of `shape`."""
    lo = -(1 << (shape.width - 1)) if shape.signed else 0
    hi = lo + (1 << shape.width)
    return [[[rng.randrange(lo, hi) for _ in range(lanes)] for _ in range(beats)]
            for _ in range(count)]


def run(shape, lanes, beats, *, count=6, stall_in=0.0, stall_out=0.0, release_late=0.5, seed=0):
    """Writer and reader as above, the reader releasing a bank a cycle after its last read
    with probability `release_late`; returns the cycle of every beat the writer put."""
    rng = random.Random(seed)
    dut = PixelBuffer(data.ArrayLayout(shape, lanes), beats)
    pixels = _pixels(shape, lanes, beats, count, rng)
    released, written, put_cycles = [0], [0], []

    async def writer(ctx):
        cycle = 0
        for pixel in pixels:
            for beat in pixel:
                while rng.random() < stall_in:
                    await ctx.tick()
                    cycle += 1
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload, beat)
                cycle += 1
                while not (await ctx.tick().sample(dut.i.ready))[-1]:
                    cycle += 1
                ctx.set(dut.i.valid, 0)
                put_cycles.append(cycle)
            written[0] += 1
            assert written[0] - released[0] <= 2, "the writer filled a bank not yet released"

    async def reader(ctx):
        for pixel in pixels:
            while not ctx.get(dut.full) or rng.random() < stall_out:
                await ctx.tick()
            same_cycle = rng.random() >= release_late
            order = rng.sample(range(beats), beats)
            for j, addr in enumerate(order):
                ctx.set(dut.addr, addr)
                ctx.set(dut.en, 1)
                ctx.set(dut.release, same_cycle and j == beats - 1)
                await ctx.tick()
                ctx.set(dut.en, 0)
                ctx.set(dut.release, 0)
                released[0] += same_cycle and j == beats - 1
                assert list(ctx.get(dut.data)) == pixel[addr]
            if rng.random() < stall_out:            # `data` holds while `en` is low
                ctx.set(dut.addr, order[0])
                await ctx.tick()
                assert list(ctx.get(dut.data)) == pixel[order[-1]]
            if not same_cycle:
                ctx.set(dut.release, 1)
                await ctx.tick()
                ctx.set(dut.release, 0)
                released[0] += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(writer)
    sim.add_testbench(reader)
    sim.run_until(1e-8 * (200 + 20 * count * beats))
    assert released[0] == count, f"the reader got {released[0]} of {count} pixels"
    return put_cycles


CASES = [(signed(8), 2, 3), (signed(8), 1, 1), (unsigned(5), 4, 4), (signed(16), 3, 7)]


@pytest.mark.parametrize("shape, lanes, beats", CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("seed", range(3))
def test_pixel_buffer_stalls(shape, lanes, beats, seed):
    run(shape, lanes, beats, stall_in=0.3, stall_out=0.4, seed=seed)


@pytest.mark.parametrize("shape, lanes, beats", CASES, ids=lambda v: str(v))
def test_pixel_buffer_one_beat_per_cycle(shape, lanes, beats):
    """An eager reader keeps up: the writer puts every beat of every pixel back to back."""
    cycles = run(shape, lanes, beats, release_late=0)
    assert cycles == list(range(1, len(cycles) + 1))
