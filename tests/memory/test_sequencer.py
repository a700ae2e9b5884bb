"""`RunSequencer` in amaranth.sim: the commands of a run, DONE after the masters go idle, a
START during a run ignored, the weight load only with MODE bit 0."""

import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from dnnhw.memory.sequencer import RunSequencer
from dnnhw.sim.amaranth_sim import PERIOD


pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def simulate(dut, testbench):
    top = Module()
    top.domains.sync = ClockDomain()
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(PERIOD)
    sim.add_testbench(testbench)
    sim.run()


async def pulse(ctx, signal):
    ctx.set(signal, 1)
    await ctx.tick()
    ctx.set(signal, 0)


def test_a_run():
    """{address, batch · words} to each master the cycle after START, held until taken; DONE
    the first cycle every command is taken and every `busy` is low; START while running
    ignored; no weight command without `load`."""
    dut = RunSequencer(32, 64, input_words=5, output_words=7, load_beats=3)
    seen = []

    async def testbench(ctx):
        ctx.set(dut.batch, 4)
        ctx.set(dut.input_address, 0x100)
        ctx.set(dut.output_address, 0x800)
        ctx.set(dut.weights_address, 0x2000)
        ctx.set(dut.load, 1)
        await pulse(ctx, dut.start)
        ctx.set(dut.load, 0)
        assert ctx.get(dut.running)
        for port, address, beats in [(dut.input, 0x100, 20), (dut.output, 0x800, 28),
                                     (dut.weights, 0x2000, 3)]:
            assert ctx.get(port.valid)
            assert ctx.get(port.payload.address) == address
            assert ctx.get(port.payload.beats) == beats
        ctx.set(dut.input.ready, 1)                 # the reader takes its command at once
        ctx.set(dut.input_busy, 1)
        await ctx.tick()
        ctx.set(dut.input.ready, 0)
        for _ in range(3):                          # the writer and loader take theirs later
            assert ctx.get(dut.output.valid) and not ctx.get(dut.done)
            await ctx.tick()
        ctx.set(dut.output.ready, 1)
        ctx.set(dut.weights.ready, 1)
        ctx.set(dut.output_busy, 1)
        ctx.set(dut.weights_busy, 1)
        await ctx.tick()
        ctx.set(dut.output.ready, 0)
        ctx.set(dut.weights.ready, 0)
        await pulse(ctx, dut.start)                 # ignored: a run is on
        assert not ctx.get(dut.output.valid)
        for busy in [dut.input_busy, dut.weights_busy, dut.output_busy]:
            assert not ctx.get(dut.done)
            await ctx.tick()
            ctx.set(busy, 0)
        seen.append(ctx.get(dut.done))              # the cycle the last master goes idle
        await ctx.tick()
        seen.append(ctx.get(dut.done))              # a pulse
        assert not ctx.get(dut.running)

        ctx.set(dut.batch, 0)                       # no load, a batch of 0: done at once
        await pulse(ctx, dut.start)
        assert ctx.get(dut.input.payload.beats) == 0
        assert not ctx.get(dut.weights.valid)
        ctx.set(dut.input.ready, 1)
        ctx.set(dut.output.ready, 1)
        await ctx.tick()
        seen.append(ctx.get(dut.done))

    simulate(dut, testbench)
    assert seen == [1, 0, 1]


def test_without_a_weights_port():
    dut = RunSequencer(32, 64, input_words=1, output_words=1)
    assert "weights" not in dut.signature.members
    assert "weights_busy" not in dut.signature.members
