"""`ControlRegisters` in cocotb + Verilator, driven by cocotbext-axi's `AxiLiteMaster`: every
register after reset, writes read back and seen by the design, START as a one-cycle pulse
with the MODE written with it, BUSY and the sticky DONE, WSTRB byte writes, AW and W in
either order, unmapped and read-only offsets. One cocotb run (`control_bench`) per build."""

import itertools
import json
import os

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from dnnhw.memory.control import ControlRegisters
from dnnhw.sim import verilate
from dnnhw.sim.runner import run_json_test


# -- cocotb side --------------------------------------------------------------------------------


class _Pins:
    """Per-cycle record of the design-facing `start` pulses (cycle, mode) and of the AW and W
    handshakes' cycles."""

    def __init__(self, dut):
        self.dut, self.cycle = dut, 0
        self.starts, self.handshakes = [], {"aw": [], "w": []}
        cocotb.start_soon(self._watch())

    async def _watch(self):
        dut = self.dut
        while True:
            await ReadOnly()
            if int(dut.start.value):
                self.starts.append([self.cycle, int(dut.mode.value)])
            for channel, cycles in self.handshakes.items():
                if int(getattr(dut, f"s_axil__{channel}valid").value) and int(
                        getattr(dut, f"s_axil__{channel}ready").value):
                    cycles.append(self.cycle)
            await RisingEdge(dut.clk)
            self.cycle += 1


async def _pulse_done(dut):
    await FallingEdge(dut.clk)
    dut.done.value = 1
    await FallingEdge(dut.clk)
    dut.done.value = 0


@cocotb.test()
async def control_bench(dut):
    """The host's view ($DNNHW_CONTROL_BENCH: offsets, buffer names) as a log of reads."""
    with open(os.environ["DNNHW_CONTROL_BENCH"]) as f:
        cfg = json.load(f)
    offsets, buffers, words = cfg["offsets"], cfg["buffers"], cfg["address_bits"] // 32
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.done.value = 0
    dut.rst.value = 1
    host = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil_"), dut.clk, dut.rst)
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    pins = _Pins(dut)
    log = {"reset": [await host.read_dword(offset) for offset in offsets.values()]}

    values = {name: (0x1234_5678_9ABC_DEF0 * (k + 3)) % (1 << cfg["address_bits"])
              for k, name in enumerate(buffers)}
    for pause, name in zip(itertools.cycle(["aw", "w", None]), buffers):
        channel = getattr(host.write_if, f"{pause}_channel") if pause else None
        if channel:           # hold AW (or W) back a few cycles: the other arrives first
            channel.set_pause_generator(itertools.chain([True] * 5, itertools.repeat(False)))
        for word in range(words):
            await host.write_dword(offsets[name] + 4 * word,
                                   values[name] >> 32 * word & 0xFFFF_FFFF)
    await host.write_dword(offsets["batch"], 0xCAFE_0010)
    log["buffers"] = {}
    for name in buffers:
        log["buffers"][name] = 0
        for word in range(words):
            log["buffers"][name] |= await host.read_dword(offsets[name] + 4 * word) << 32 * word
    log["written"] = {name: hex(v) for name, v in values.items()}
    log["pins"] = {name: int(getattr(dut, f"{name}_address").value) for name in buffers}
    log["batch"] = [await host.read_dword(offsets["batch"]), int(dut.batch.value)]

    await host.write(offsets["batch"] + 1, b"\x77")               # one byte: WSTRB 0b0010
    log["batch_byte"] = await host.read_dword(offsets["batch"])
    await host.write_dword(0xFC, 0xFFFF_FFFF)                     # unmapped
    await host.write_dword(offsets["status"], 0xFFFF_FFFF)        # read-only
    log["unmapped"] = await host.read_dword(0xFC)

    mode = (1 << cfg["mode_bits"]) - 2
    await host.write_dword(offsets["control"], mode << 8 | 1)
    log["control_after_start"] = await host.read_dword(offsets["control"])
    log["status_running"] = [await host.read_dword(offsets["status"]), int(dut.busy.value)]
    await _pulse_done(dut)
    log["status_done"] = [await host.read_dword(offsets["status"]), await host.read_dword(
        offsets["status"]), await host.read_dword(offsets["status"])]
    await host.write_dword(offsets["control"], (mode - 2) << 8 | 1)
    log["status_restarted"] = await host.read_dword(offsets["status"])
    await _pulse_done(dut)
    await host.write_dword(offsets["control"], mode << 8)         # MODE only: no start
    log["status_end"] = await host.read_dword(offsets["status"])
    log["control_end"] = await host.read_dword(offsets["control"])
    for _ in range(4):
        await RisingEdge(dut.clk)
    log["starts"], log["handshakes"] = pins.starts, pins.handshakes
    with open(os.environ["DNNHW_CONTROL_BENCH_RESULT"], "w") as f:
        json.dump(log, f)


# -- pytest side --------------------------------------------------------------------------------


@pytest.mark.parametrize("buffers, address_bits, mode_bits", [
    (("input", "output", "weights"), 32, 8),
    (("input", "output", "weights", "bias"), 64, 4),
])
def test_control_registers(buffers, address_bits, mode_bits):
    regs = ControlRegisters(buffers, address_bits=address_bits, mode_bits=mode_bits)
    name = f"control_{len(buffers)}x{address_bits}"
    runner, build_dir = verilate(regs, name)
    log = run_json_test(runner, build_dir, name, __name__, "DNNHW_CONTROL_BENCH", {
        "offsets": regs.offsets, "buffers": list(buffers), "address_bits": address_bits,
        "mode_bits": mode_bits})
    stride = address_bits // 8
    assert regs.offsets == {"control": 0, "status": 4, "batch": 8,
                            **{b: 0x10 + stride * k for k, b in enumerate(buffers)}}
    assert set(log["reset"]) == {0}
    assert {n: int(v, 16) for n, v in log["written"].items()} == log["buffers"] == log["pins"]
    assert log["batch"] == [0xCAFE_0010] * 2
    assert log["batch_byte"] == 0xCAFE_7710
    assert log["unmapped"] == 0
    mode = (1 << mode_bits) - 2
    assert log["control_after_start"] == mode << 8                 # START reads 0
    assert log["status_running"] == [0b01, 1]                      # BUSY
    assert log["status_done"] == [0b10] * 3                        # DONE, sticky
    assert log["status_restarted"] == 0b01                         # START clears DONE
    assert log["status_end"] == 0b10 and log["control_end"] == mode << 8
    # two starts, each one cycle long, MODE already the value written with START
    assert [m for _, m in log["starts"]] == [mode, mode - 2]
    assert log["starts"][1][0] - log["starts"][0][0] > 1
    # AW and W of a write taken in either order
    pairs = list(zip(log["handshakes"]["aw"], log["handshakes"]["w"], strict=True))
    assert any(aw < w for aw, w in pairs) and any(w < aw for aw, w in pairs)
