"""`amaranth.sim` runs of stream blocks: quick, no build step, the same stall model and result
as the cocotb + Verilator bench (`dnnhw.sim.runner.run_stream_bench`)."""

import random

import numpy as np
from amaranth.hdl import ClockDomain, Module
from amaranth.lib import data
from amaranth.sim import Simulator

from .runner import BenchResult


__all__ = ["run_stream_sim", "stream_put", "stream_get"]


def _flatten(value):
    """A payload read back: nested `ArrayLayout` constants → a flat list of ints."""
    if isinstance(value, data.Const):
        return [v for element in value for v in np.atleast_1d(_flatten(element))]
    return int(value)


def run_stream_sim(dut, inputs, outputs, *, stall_in=0.0, stall_out=0.0, seed=0, drain=8,
                   timeout=None):
    """Drive `inputs` ({port: beats}) into `dut` and collect `outputs` ({port: beats}) under
    random stalls in `amaranth.sim`; payloads are set and read as lists (`ArrayLayout`s) or
    as plain values."""
    rng = random.Random(seed)
    got = {p: [] for p in outputs}
    cycles = {p: [] for p in [*inputs, *outputs]}
    extra = dict.fromkeys(outputs, 0)
    limit = timeout or 200 + 20 * (sum(map(len, inputs.values())) + sum(outputs.values()))
    total = [0]

    def as_payload(beat):
        return [int(v) for v in beat] if np.ndim(beat) else int(beat)

    async def bench(ctx):
        sent, presenting, cycle = dict.fromkeys(inputs, 0), dict.fromkeys(inputs, False), 0
        while (any(len(got[p]) < n for p, n in outputs.items())
               or any(sent[p] < len(beats) for p, beats in inputs.items())):
            assert cycle < limit, f"timeout: got { {p: len(v) for p, v in got.items()} } of {outputs}"
            for p, beats in inputs.items():        # valid stays up until the beat is taken
                if not presenting[p] and sent[p] < len(beats):
                    presenting[p] = rng.random() >= stall_in
                ctx.set(getattr(dut, p).valid, presenting[p])
                if presenting[p]:
                    ctx.set(getattr(dut, p).payload, as_payload(beats[sent[p]]))
            ready = {p: rng.random() >= stall_out for p in outputs}
            for p in outputs:
                ctx.set(getattr(dut, p).ready, ready[p])
            for p in inputs:
                if presenting[p] and ctx.get(getattr(dut, p).ready):
                    cycles[p].append(cycle)
                    sent[p], presenting[p] = sent[p] + 1, False
            for p in outputs:
                if ready[p] and ctx.get(getattr(dut, p).valid):
                    got[p].append(_flatten(ctx.get(getattr(dut, p).payload)))
                    cycles[p].append(cycle)
            await ctx.tick()
            cycle += 1
        total[0] = cycle
        for p, n in outputs.items():             # beats beyond the expected ones are extra
            extra[p] += max(len(got[p]) - n, 0)
            del got[p][n:]
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
                       {p: cycles[p] for p in inputs}, {p: cycles[p] for p in outputs}, total[0], extra)


async def stream_put(ctx, port, payload):
    """Offer one beat on `port` and wait until it is taken."""
    ctx.set(port.valid, 1)
    ctx.set(port.payload, payload)
    await ctx.tick().until(port.ready)
    ctx.set(port.valid, 0)


async def stream_get(ctx, port):
    """Take one beat from `port`; returns its payload."""
    ctx.set(port.ready, 1)
    payload, = await ctx.tick().sample(port.payload).until(port.valid)
    ctx.set(port.ready, 0)
    return payload
