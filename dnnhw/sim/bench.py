"""The stream harness in cocotb, as `dnnhw.sim.amaranth_sim` runs it in amaranth.sim: a producer
(`drive`) per input port and a consumer (`collect`) per output port, each a coroutine of its
own with the shared stall model (`dnnhw.sim.stalls`), recording every transfer and its cycle.
It runs until every input beat has been taken and every expected output beat has come out,
then `drain` cycles more with every output ready, counting beats offered beyond the expected.

Configured by the JSON file named in DNNHW_BENCH (written by `dnnhw.sim.runner`):
``{"inputs": {port: [word, ...]}, "outputs": {port: beats}, "stall_in", "stall_out", "seed",
"drain", "timeout"}``; words are the payloads packed as unsigned integers. Results go to the
JSON file named in DNNHW_BENCH_RESULT: ``{"outputs": {port: [word, ...]}, "out_cycles": {...},
"in_cycles": {...}, "cycles", "extra": {port: beats}}``.
"""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Combine, FallingEdge, First, ReadOnly, RisingEdge

from dnnhw.sim.stalls import Stalls


async def drive(clk, valid, ready, payload, words, stalls, cycles):
    """Producer: offer `words` in order, each when `stalls` lets it, valid held until it is
    taken; appends each transfer's cycle to `cycles`."""
    cycle, presenting = 0, False
    while len(cycles) < len(words):
        await FallingEdge(clk)
        presenting = presenting or not stalls()
        valid.value = int(presenting)
        if presenting:
            payload.value = words[len(cycles)]
        await ReadOnly()
        if presenting and int(ready.value):
            cycles.append(cycle)
            presenting = False
        await RisingEdge(clk)
        cycle += 1
    await FallingEdge(clk)
    valid.value = 0


async def collect(clk, valid, ready, payload, count, stalls, words, cycles, finished, drain):
    """Consumer: take `count` beats into `words` (their cycles into `cycles`), ready on every
    cycle `stalls` allows; then keep ready up until `finished()` and for `drain` more cycles.
    Returns the number of beats offered beyond `count`."""
    cycle = extra = drained = 0
    while True:
        await FallingEdge(clk)
        more = len(words) < count
        if not more and finished():
            if drained == drain:
                return extra
            drained += 1
        taking = not stalls() if more else True
        ready.value = int(taking)
        await ReadOnly()
        if taking and int(valid.value):
            if more:
                words.append(int(payload.value))
                cycles.append(cycle)
            else:
                extra += 1
        await RisingEdge(clk)
        cycle += 1


@cocotb.test()
async def stream_bench(dut):
    with open(os.environ["DNNHW_BENCH"]) as f:
        cfg = json.load(f)
    inputs = {port: [int(w) for w in words] for port, words in cfg["inputs"].items()}
    wanted = cfg["outputs"]
    sig = {port: [getattr(dut, f"{port}__{name}") for name in ("valid", "ready", "payload")]
           for port in [*inputs, *wanted]}
    got = {port: [] for port in wanted}
    cycles = {port: [] for port in [*inputs, *wanted]}
    extra = {}

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    for port in inputs:
        sig[port][0].value = 0
    for port in wanted:
        sig[port][1].value = 0
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0

    def finished():
        return (all(len(cycles[p]) == len(w) for p, w in inputs.items())
                and all(len(got[p]) >= n for p, n in wanted.items()))

    async def consumer(port):
        extra[port] = await collect(dut.clk, *sig[port], wanted[port],
                                    Stalls(cfg["stall_out"], cfg["seed"], port), got[port],
                                    cycles[port], finished, cfg["drain"])

    tasks = [cocotb.start_soon(drive(dut.clk, *sig[port], words,
                                     Stalls(cfg["stall_in"], cfg["seed"], port), cycles[port]))
             for port, words in inputs.items()]
    tasks += [cocotb.start_soon(consumer(port)) for port in wanted]
    timeout = ClockCycles(dut.clk, cfg["timeout"])
    if await First(Combine(*tasks), timeout) is timeout:
        raise AssertionError(f"timeout after {cfg['timeout']} cycles: got "
                             f"{ {p: len(v) for p, v in got.items()} } of {wanted}, sent "
                             f"{ {p: len(cycles[p]) for p in inputs} }")

    with open(os.environ["DNNHW_BENCH_RESULT"], "w") as f:
        json.dump({"outputs": got,
                   "in_cycles": {p: cycles[p] for p in inputs},
                   "out_cycles": {p: cycles[p] for p in wanted},
                   "cycles": 1 + max((c[-1] for c in cycles.values() if c), default=-1),
                   "extra": extra}, f)
