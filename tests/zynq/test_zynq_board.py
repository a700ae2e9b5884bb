"""The Zynq board folder of a `dnnhw build` for pynq-z1: the wrapper's ports carry the names
Vivado infers AXI interfaces from, it elaborates with the memory top (Verilator lint), and the
block design script connects every interface the wrapper has to the processing system."""

import re
import subprocess

from dnnhw.sim.runner import setup_environment
from dnnhw.zynq.board import MEMORY_TOP, ZYNQ_TOP
from dnnhw.zynq.driver import CONTROL_ADDRESS
from support.cli import dnnhw
from test_build_axis import module_ports, tiny_onnx


def ansi_ports(verilog, name):
    """{port: (direction, width)} of module `name`, declared in ANSI style, in `verilog`."""
    header = verilog[verilog.index(f"module {name} ("):]
    header = header[:header.index(");")]
    return {port: (direction, int(msb) + 1 if msb else 1) for direction, msb, port in
            re.findall(r"^\s*(input|output)\s+wire\s+(?:\[(\d+):0\]\s*)?(\w+),?$", header, re.M)}


def test_zynq_board_folder(tmp_path):
    folder = tmp_path / "build"
    result = dnnhw("build", tiny_onnx(tmp_path / "tiny.onnx"), "--board", "pynq-z1", "--no-synth",
                   "--out", folder)
    assert result.returncode == 0, result.stderr
    board = folder / "board"
    inner = module_ports((board / f"{MEMORY_TOP}.v").read_text(), MEMORY_TOP)
    outer = ansi_ports((board / f"{ZYNQ_TOP}.v").read_text(), ZYNQ_TOP)
    prefixes = {"control": "s_axi_control", "m_axi": "m_axi_data"}
    want = {"aclk": ("input", 1), "aresetn": ("input", 1)}
    want.update({f"{prefixes[bus]}_{signal}": port for name, port in inner.items()
                 if name not in ("clk", "rst") for bus, signal in [name.split("__", 1)]})
    assert outer == want
    assert outer["m_axi_data_araddr"] == ("output", 32)
    assert outer["m_axi_data_rdata"] == ("input", 64)
    assert outer["s_axi_control_awaddr"] == ("input", 12)

    setup_environment()
    lint = subprocess.run(["verilator", "--lint-only", "-Wno-fatal", "-Wno-lint", "-Wno-style",
                           "--top-module", ZYNQ_TOP, board / f"{ZYNQ_TOP}.v",
                           board / f"{MEMORY_TOP}.v"], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stderr

    tcl = (board / "block_design.tcl").read_text()
    assert "-part xc7z020clg400-1" in tcl
    assert f"-reference {ZYNQ_TOP} accelerator" in tcl
    assert re.search(r"Master /ps7/M_AXI_GP0 .*accelerator/s_axi_control\]", tcl)
    assert "Master /accelerator/m_axi_data " in tcl and "ps7/S_AXI_HP0]" in tcl
    assert "HP1" not in tcl and "m_axi_weights" not in tcl     # no weight load port
    assert "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {100}" in tcl
    assert f"-offset 0x{CONTROL_ADDRESS:08X} -range 4K" in tcl
    assert "dnnhw_zynq.bit" in tcl
