"""A serial-line bench: cocotb drives a design's `rx` the way a host's UART does and decodes what
it sends on `tx`.

The host side sends `segments` one after the other. A segment waits until `wait_rx` bytes have
come back in all (a host waiting for its answer), then `gap` more cycles, then sends its bytes
back to back as 8N1 frames (`stop` = 0 makes every stop bit low: framing errors). Its bit time is
`divisor` clock periods × (1 + `skew`), a host whose clock is off by `skew`, and its frames start
at times unrelated to the clock edges. The bench decodes `tx` at exactly `divisor` cycles per
bit, sampling the middle of each bit after a falling edge. It runs until `expect` bytes came
back, then `drain` more cycles, in which nothing more may come (`extra`).

`run_serial_bench` builds a component with ports `rx` and `tx` with Verilator and runs it here.
Cocotb configuration and result travel in the JSON files named by DNNHW_SERIAL_BENCH and
DNNHW_SERIAL_BENCH_RESULT: the result holds the received `bytes`, the cycle each started
(`starts`), the indices of those whose stop bit was low (`framing_errors`), and `extra`.
"""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import Event, FallingEdge, First, RisingEdge, Timer
from cocotb.utils import get_sim_time


__all__ = ["run_serial_bench", "PERIOD_PS"]

#: The clock period of the bench.
PERIOD_PS = 10_000


@cocotb.test()
async def serial_bench(dut):
    with open(os.environ["DNNHW_SERIAL_BENCH"]) as f:
        cfg = json.load(f)
    bit_ps = cfg["divisor"] * PERIOD_PS
    host_bit_ps = round(bit_ps * (1 + cfg["skew"]))
    deadline = cfg["timeout"] * PERIOD_PS
    got = {"bytes": [], "starts": [], "framing_errors": []}
    enough = Event()

    async def host():
        await Timer(PERIOD_PS * 5 + 3_300, unit="ps")     # off the clock edges
        for segment in cfg["segments"]:
            while len(got["bytes"]) < segment.get("wait_rx", 0):
                if get_sim_time("ps") > deadline:
                    raise AssertionError(f"timeout: {len(got['bytes'])} of the {segment['wait_rx']} "
                                         f"bytes a segment waits for came back: "
                                         f"{bytes(got['bytes']).hex(' ')}")
                await Timer(bit_ps, unit="ps")
            if segment.get("gap"):
                await Timer(segment["gap"] * PERIOD_PS, unit="ps")
            for byte in segment["bytes"]:
                for bit in [0, *((byte >> i) & 1 for i in range(8)), segment.get("stop", 1)]:
                    dut.rx.value = bit
                    await Timer(host_bit_ps, unit="ps")
                dut.rx.value = 1

    async def listen():
        while True:
            await FallingEdge(dut.tx)
            start = get_sim_time("ps")
            await Timer(bit_ps // 2, unit="ps")
            if int(dut.tx.value):
                raise AssertionError(f"tx: a glitch, not a start bit, at cycle {start // PERIOD_PS}")
            byte = 0
            for i in range(8):
                await Timer(bit_ps, unit="ps")
                byte |= int(dut.tx.value) << i
            await Timer(bit_ps, unit="ps")
            if not int(dut.tx.value):
                got["framing_errors"].append(len(got["bytes"]))
            got["bytes"].append(byte)
            got["starts"].append(start // PERIOD_PS)
            if len(got["bytes"]) >= cfg["expect"]:
                enough.set()

    dut.rx.value = 1
    cocotb.start_soon(Clock(dut.clk, PERIOD_PS, unit="ps").start())
    dut.rst.value = 1
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    cocotb.start_soon(listen())
    sender = cocotb.start_soon(host())
    await sender
    if len(got["bytes"]) < cfg["expect"]:
        await First(enough.wait(), Timer(max(deadline - get_sim_time("ps"), 1), unit="ps"))
    await Timer(cfg["drain"] * PERIOD_PS, unit="ps")
    received = len(got["bytes"])
    if received < cfg["expect"]:
        raise AssertionError(f"timeout: {received} of {cfg['expect']} bytes came back: "
                             f"{bytes(got['bytes']).hex(' ')}")
    got["extra"] = received - cfg["expect"]
    with open(os.environ["DNNHW_SERIAL_BENCH_RESULT"], "w") as f:
        json.dump(got, f)


def run_serial_bench(component, name, divisor, segments, expect, *, skew=0.0, drain=None,
                     timeout=None):
    """Run `component` (ports `rx`, `tx`) on the serial-line bench; returns the result dict.

    `segments` are dicts as the module docstring says; `drain` defaults to two byte times,
    `timeout` (cycles from the start until `expect` bytes are back) to 40 byte times per byte
    sent or expected.
    Raises AssertionError when the bench fails or times out.
    """
    from ..sim.runner import run_json_test, verilate

    byte_cycles = 10 * divisor
    sent = sum(len(s["bytes"]) for s in segments)
    runner, build_dir = verilate(component, name)
    return run_json_test(runner, build_dir, name, "dnnhw.link.serial_bench", "DNNHW_SERIAL_BENCH", {
        "divisor": divisor, "skew": skew, "segments": segments, "expect": expect,
        "drain": 2 * byte_cycles if drain is None else drain,
        "timeout": timeout or 40 * byte_cycles * (sent + expect) + 10_000})
