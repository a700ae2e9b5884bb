"""The stream harness in `amaranth.sim`: quick, no build step, the same stall model
(`dnnhw.sim.stalls`) and the same `BenchResult` as the cocotb + Verilator bench
(`dnnhw.sim.bench`), so a design and seed give the same transfers in both.

`drive` (a producer) and `collect` (a consumer) are testbenches of their own, one per port;
`run_stream_sim` runs one of them on every stream port it is given. `stream_put` and
`stream_get` move single beats, for tests that script the handshake themselves.
"""

import numpy as np
from amaranth.hdl import ClockDomain, Module, Value
from amaranth.sim import Simulator

from .runner import BenchResult
from .stalls import Stalls, default_timeout
from .streams import element_shape, pack, unpack


__all__ = ["run_stream_sim", "drive", "collect", "stream_put", "stream_get"]

#: The clock period (seconds) of `run_stream_sim`.
PERIOD = 1e-8


async def drive(ctx, port, words, stalls, cycles):
    """Producer: offer `words` (payloads as unsigned integers) on stream `port` in order, each
    when `stalls` lets it, valid held until it is taken; appends each transfer's cycle to
    `cycles`."""
    cycle = 0
    for word in words:
        while stalls():
            await ctx.tick()
            cycle += 1
        ctx.set(port.valid, 1)
        ctx.set(Value.cast(port.payload), word)
        ready = 0
        while not ready:
            _, _, ready = await ctx.tick().sample(port.ready)
            cycle += 1
        cycles.append(cycle - 1)
        ctx.set(port.valid, 0)


async def collect(ctx, port, count, stalls, words, cycles, finished, drain):
    """Consumer: take `count` beats from stream `port` into `words` (their cycles into `cycles`),
    ready on every cycle `stalls` allows; then keep ready up until `finished()` and for `drain`
    more cycles. Returns the number of beats offered beyond `count`."""
    cycle = extra = drained = 0
    while True:
        more = len(words) < count
        if not more and finished():
            if drained == drain:
                return extra
            drained += 1
        ready = not stalls() if more else 1
        ctx.set(port.ready, ready)
        _, _, valid, word = await ctx.tick().sample(port.valid, Value.cast(port.payload))
        if ready and valid:
            if more:
                words.append(word)
                cycles.append(cycle)
            else:
                extra += 1
        cycle += 1


def run_stream_sim(dut, inputs, outputs, *, stall_in=0.0, stall_out=0.0, seed=0, drain=16,
                   timeout=None):
    """Drive `inputs` ({port: (beats, elements) ints}) into `dut` and collect `outputs`
    ({port: number of beats}) under random stalls (`Stalls(stall_in, seed, port)` on inputs,
    `stall_out` on outputs). Runs until every input beat is taken and every expected output
    beat came, then `drain` cycles; raises AssertionError after `timeout` cycles."""
    shapes = {p: element_shape(getattr(dut, p).payload.shape()) for p in [*inputs, *outputs]}
    words = {p: [pack(beat, shapes[p][1]) for beat in np.asarray(beats).reshape(len(beats), -1)]
             for p, beats in inputs.items()}
    got = {p: [] for p in outputs}
    cycles = {p: [] for p in [*inputs, *outputs]}
    extra = {}
    limit = timeout or default_timeout(inputs, outputs)

    def finished():
        return (all(len(cycles[p]) == len(w) for p, w in words.items())
                and all(len(got[p]) >= n for p, n in outputs.items()))

    def producer(p):
        async def testbench(ctx):
            await drive(ctx, getattr(dut, p), words[p], Stalls(stall_in, seed, p), cycles[p])
        return testbench

    def consumer(p):
        async def testbench(ctx):
            extra[p] = await collect(ctx, getattr(dut, p), outputs[p], Stalls(stall_out, seed, p),
                                     got[p], cycles[p], finished, drain)
        return testbench

    async def watchdog(ctx):
        await ctx.delay(limit * PERIOD)
        raise AssertionError(f"timeout after {limit} cycles: got "
                             f"{ {p: len(v) for p, v in got.items()} } of {outputs}, sent "
                             f"{ {p: len(cycles[p]) for p in inputs} }")

    top = Module()                      # a clock domain even for a design of wires
    top.domains.sync = ClockDomain()
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(PERIOD)
    for p in inputs:
        sim.add_testbench(producer(p))
    for p in outputs:
        sim.add_testbench(consumer(p))
    sim.add_testbench(watchdog, background=True)
    sim.run()
    outputs_ = {p: np.array([unpack(w, *shapes[p]) for w in got[p]], dtype=np.int64)
                .reshape(len(got[p]), shapes[p][0]) for p in outputs}
    total = 1 + max((c[-1] for c in cycles.values() if c), default=-1)
    return BenchResult(outputs_, {p: cycles[p] for p in inputs}, {p: cycles[p] for p in outputs},
                       total, extra)


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
