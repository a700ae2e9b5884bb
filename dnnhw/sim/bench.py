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

With ``"phases": [{"inputs": ..., "outputs": ...}, ...]`` instead of inputs and outputs, the
phases run one after another in one simulation (each from the cycle the one before finished,
its cycles counted from there, its stalls seeded by seed + its index): a weight load, then the
frames computed with those weights, then the next load. The result is then
``{"phases": [result, ...]}``, each as above. `timeout` applies to each phase.
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


async def run_phase(dut, sig, phase, cfg, index):
    """One phase: its inputs driven and its outputs collected at once, as the module says; the
    cycles counted from the phase's first cycle. Returns the phase's result."""
    inputs = {port: [int(w) for w in words] for port, words in phase["inputs"].items()}
    wanted = phase["outputs"]
    got = {port: [] for port in wanted}
    cycles = {port: [] for port in [*inputs, *wanted]}
    extra = {}
    seed = cfg["seed"] + index

    def finished():
        return (all(len(cycles[p]) == len(w) for p, w in inputs.items())
                and all(len(got[p]) >= n for p, n in wanted.items()))

    async def consumer(port):
        extra[port] = await collect(dut.clk, *sig[port], wanted[port],
                                    Stalls(cfg["stall_out"], seed, port), got[port],
                                    cycles[port], finished, cfg["drain"])

    tasks = [cocotb.start_soon(drive(dut.clk, *sig[port], words,
                                     Stalls(cfg["stall_in"], seed, port), cycles[port]))
             for port, words in inputs.items()]
    tasks += [cocotb.start_soon(consumer(port)) for port in wanted]
    timeout = ClockCycles(dut.clk, cfg["timeout"])
    if await First(Combine(*tasks), timeout) is timeout:
        raise AssertionError(f"timeout after {cfg['timeout']} cycles in phase {index}: got "
                             f"{ {p: len(v) for p, v in got.items()} } of {wanted}, sent "
                             f"{ {p: len(cycles[p]) for p in inputs} }")
    return {"outputs": got,
            "in_cycles": {p: cycles[p] for p in inputs},
            "out_cycles": {p: cycles[p] for p in wanted},
            "cycles": 1 + max((c[-1] for c in cycles.values() if c), default=-1),
            "extra": extra}


@cocotb.test()
async def stream_bench(dut):
    with open(os.environ["DNNHW_BENCH"]) as f:
        cfg = json.load(f)
    phases = cfg.get("phases") or [{"inputs": cfg["inputs"], "outputs": cfg["outputs"]}]
    inputs = {port for phase in phases for port in phase["inputs"]}
    outputs = {port for phase in phases for port in phase["outputs"]}
    sig = {port: [getattr(dut, f"{port}__{name}") for name in ("valid", "ready", "payload")]
           for port in [*inputs, *outputs]}

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    for port in inputs:
        sig[port][0].value = 0
    for port in outputs:
        sig[port][1].value = 0
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0

    results = [await run_phase(dut, sig, phase, cfg, index) for index, phase in enumerate(phases)]
    with open(os.environ["DNNHW_BENCH_RESULT"], "w") as f:
        json.dump({"phases": results} if "phases" in cfg else results[0], f)
