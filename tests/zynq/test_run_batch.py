"""The Zynq host driver's `run_batch` on simulated hardware: each partition's memory top
(board/dnnhw_memory_top.v of a `dnnhw build` for pynq-z1) in cocotb + Verilator stands in for
its bitstream, cocotbext-axi's `AxiLiteMaster` performs the driver's register steps, and one
`AxiRam` image is the DRAM, carried from partition to partition as a reconfiguration keeps the
processing system's DDR. The network's outputs must be golden's, bit for bit."""

import json
import os

import cocotb
import numpy as np
import onnx
import pytest
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam, AxiReadBus
from cocotbext.axi.axi_ram import AxiRamRead

from dnnhw import golden, record
from dnnhw.memory import layout
from dnnhw.sim import verilate_text
from dnnhw.sim.runner import run_json_test
from dnnhw.zynq.board import MEMORY_TOP
from dnnhw.zynq.driver import BatchRunner, Write
from support import onnx_models
from support.cli import dnnhw
from test_build_axis import tiny_onnx


@cocotb.test()
async def driver_steps(dut):
    """$DNNHW_ZYNQ's steps on the memory top, its DRAM image before; the image after to
    ..._RESULT."""
    with open(os.environ["DNNHW_ZYNQ"]) as f:
        cfg = json.load(f)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    image = bytes.fromhex(cfg["image"])
    ram = AxiRam(AxiBus.from_prefix(dut, "m_axi_"), dut.clk, dut.rst, size=len(image))
    if cfg["weights"]:
        AxiRamRead(AxiReadBus.from_prefix(dut, "m_axi_weights_"), dut.clk, dut.rst,
                   size=len(image), mem=ram.mem)
    ram.write(0, image)
    host = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "control_"), dut.clk, dut.rst)
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    for kind, offset, value in cfg["steps"]:
        if kind == "write":
            await host.write_dword(offset, value)
        else:
            while not await host.read_dword(offset) & value:
                pass
    with open(os.environ["DNNHW_ZYNQ_RESULT"], "w") as f:
        json.dump({"image": ram.read(0, len(image)).hex()}, f)


class SimulatedBoard(BatchRunner):
    """`BatchRunner` on simulations: `program` compiles a partition's memory top, `execute`
    runs the steps on it with the DRAM image, which it then takes back."""

    def __init__(self, dram_bytes):
        self.dram = bytearray(dram_bytes)
        self.programmed = []

    def program(self, folder):
        text = (folder / "board" / f"{MEMORY_TOP}.v").read_text()
        self.runner, self.build_dir = verilate_text(text, MEMORY_TOP)
        self.weights = "m_axi_weights__araddr" in text
        self.programmed.append(folder.name)

    def execute(self, steps):
        steps = [("write" if isinstance(s, Write) else "poll", *s) for s in steps]
        result = run_json_test(self.runner, self.build_dir, MEMORY_TOP, __name__, "DNNHW_ZYNQ",
                               {"image": self.dram.hex(), "steps": steps,
                                "weights": self.weights})
        self.dram[:] = bytes.fromhex(result["image"])

    def put(self, offset, data):
        assert offset + len(data) <= len(self.dram), "the batch needs more than the DRAM area"
        self.dram[offset:offset + len(data)] = data

    def get(self, offset, size):
        return bytes(self.dram[offset:offset + size])


@pytest.mark.slow          # reloading is bit-exact by default in tests/test_build_partitions
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_run_batch_of_a_reloading_build_on_simulated_pynq(tmp_path):
    """128-96-64 MLP on 2 % of the pynq-z1: partition 1 reloads gemm0 in two chunks (two runs
    with weight loads over the second AXI port, joined by the host), partition 2 reads the
    joined tensor; 3 frames."""
    net = tmp_path / "reload.onnx"
    onnx.save(onnx_models.vgg([], [96, 64], in_shape=(128, 1, 1), name="reload"), net)
    out = tmp_path / "build"
    result = dnnhw("build", net, "--board", "pynq-z1", "--cap", "0.02", "--no-synth",
                   "--out", out)
    assert result.returncode == 0, result.stderr
    tcl = (out / "partition-1" / "board" / "block_design.tcl").read_text()
    assert "Master /accelerator/m_axi_weights " in tcl and "ps7/S_AXI_HP1]" in tcl
    assert "m_axi_weights" not in (out / "partition-2" / "board" / "block_design.tcl").read_text()
    board = SimulatedBoard(1 << 17)
    assert_runs_like_golden(board, out, 3)
    assert board.programmed == ["partition-1", "partition-2"] and board.used <= 1 << 17


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_run_batch_of_a_residual_block_cut_on_simulated_pynq(tmp_path):
    """The residual network cut inside its block on 2 % of the pynq-z1: the packed skip and
    branch cross the DRAM between the partitions' memory tops; 2 frames."""
    net = tmp_path / "residual.onnx"
    onnx.save(onnx_models.residual(), net)
    out = tmp_path / "build"
    result = dnnhw("build", net, "--board", "pynq-z1", "--cap", "0.02", "--no-synth",
                   "--out", out)
    assert result.returncode == 0, result.stderr
    schedule = json.loads((out / "schedule.json").read_text())
    assert any(p["input_shape"][0] > 8 for p in schedule["partitions"][1:])
    board = SimulatedBoard(1 << 20)                 # two buffers of 256 packed frames
    assert_runs_like_golden(board, out, 2)


def test_run_batch_of_a_single_design_build(tmp_path):
    """A network that fits: no schedule.json, one design run over the batch."""
    out = tmp_path / "build"
    result = dnnhw("build", tiny_onnx(tmp_path / "tiny.onnx"), "--board", "pynq-z1", "--no-synth",
                   "--out", out)
    assert result.returncode == 0, result.stderr
    board = SimulatedBoard(1 << 14)
    assert_runs_like_golden(board, out, 2)
    assert board.programmed == ["build"]


def assert_runs_like_golden(board, out, frames):
    """`board.run_batch` of the build in `out` on random frames gives golden's outputs."""
    graph = record.read_graph(out / "design")
    rng = np.random.default_rng(0)
    fmt = graph.formats[graph.input]
    xs = rng.integers(fmt.min, fmt.max + 1, (frames, *graph.shapes[graph.input]))
    got = board.run_batch(out, layout.stream_order(xs))
    want = np.stack([golden.run_fixed(graph, x)[graph.output] for x in xs])
    np.testing.assert_array_equal(got, layout.stream_order(want))
