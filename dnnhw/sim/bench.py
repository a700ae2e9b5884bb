"""The cocotb test every stream block runs under: drive input beats with random valid gaps,
take output beats with random ready gaps, record every transfer and the cycle it happened in.
It runs until every input beat has been taken and every expected output beat has come out.

Configured by the JSON file named in DNNHW_BENCH (written by `dnnhw.sim.runner`):
``{"inputs": {port: [[word, ...]]...}, "outputs": {port: beats}, "stall_in", "stall_out",
"seed", "timeout"}``; words are the payloads packed as unsigned integers. Results go to the JSON
file named in DNNHW_BENCH_RESULT: ``{"outputs": {port: [word, ...]}, "out_cycles": {...},
"in_cycles": {...}, "cycles"}``.
"""

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge


@cocotb.test()
async def stream_bench(dut):
    with open(os.environ["DNNHW_BENCH"]) as f:
        cfg = json.load(f)
    rng = random.Random(cfg["seed"])
    inputs = {port: [int(w) for w in words] for port, words in cfg["inputs"].items()}
    wanted = cfg["outputs"]
    sig = {name: getattr(dut, name) for port in [*inputs, *wanted]
           for name in (f"{port}__valid", f"{port}__ready", f"{port}__payload")}
    sent = {port: 0 for port in inputs}
    presenting = {port: False for port in inputs}
    got = {port: [] for port in wanted}
    in_cycles = {port: [] for port in inputs}
    out_cycles = {port: [] for port in wanted}
    ready = {port: False for port in wanted}

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    for port in inputs:
        sig[f"{port}__valid"].value = 0
    for port in wanted:
        sig[f"{port}__ready"].value = 0
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0

    cycle = 0
    while (any(len(got[p]) < n for p, n in wanted.items())
           or any(sent[p] < len(words) for p, words in inputs.items())):
        if cycle > cfg["timeout"]:
            raise AssertionError(f"timeout after {cycle} cycles: got "
                                 f"{ {p: len(v) for p, v in got.items()} } of {wanted}, sent {sent}")
        await FallingEdge(dut.clk)
        for port, words in inputs.items():      # valid stays up until the beat is taken
            if not presenting[port] and sent[port] < len(words):
                presenting[port] = rng.random() >= cfg["stall_in"]
            sig[f"{port}__valid"].value = int(presenting[port])
            if presenting[port]:
                sig[f"{port}__payload"].value = words[sent[port]]
        for port in wanted:
            ready[port] = rng.random() >= cfg["stall_out"]
            sig[f"{port}__ready"].value = int(ready[port])
        await ReadOnly()
        for port in inputs:
            if presenting[port] and int(sig[f"{port}__ready"].value):
                in_cycles[port].append(cycle)
                sent[port] += 1
                presenting[port] = False
        for port in wanted:
            if ready[port] and int(sig[f"{port}__valid"].value):
                got[port].append(int(sig[f"{port}__payload"].value))
                out_cycles[port].append(cycle)
        await RisingEdge(dut.clk)
        cycle += 1

    # beats beyond the expected ones, now and in a few more cycles, are extra
    extra = {port: max(len(got[port]) - n, 0) for port, n in wanted.items()}
    got = {port: beats[:wanted[port]] for port, beats in got.items()}
    for _ in range(cfg.get("drain", 0)):
        await FallingEdge(dut.clk)
        for port in inputs:
            sig[f"{port}__valid"].value = 0
        for port in wanted:
            sig[f"{port}__ready"].value = 1
        await ReadOnly()
        for port in wanted:
            extra[port] += int(sig[f"{port}__valid"].value)
        await RisingEdge(dut.clk)

    with open(os.environ["DNNHW_BENCH_RESULT"], "w") as f:
        json.dump({"outputs": got,
                   "out_cycles": out_cycles, "in_cycles": in_cycles, "cycles": cycle,
                   "extra": extra}, f)
