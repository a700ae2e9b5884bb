"""The memory blocks without simulation: parameter errors by their exact message, the AXI
signatures' members and Verilog port names, and `timing`'s burst split, rates and run
model."""

import random

import pytest
from amaranth.back import verilog

from dnnhw.memory import timing
from dnnhw.memory.axi import AxiLiteSignature, AxiSignature
from amaranth.hdl import Module, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from dnnhw.layers.common import pixel_layout
from dnnhw.memory.control import ControlRegisters
from dnnhw.memory.top import MemoryAccelerator
from dnnhw.memory.reader import AxiReader
from dnnhw.memory.writer import AxiWriter


# blocks whose constructor raised are never elaborated; in a run of the whole folder some are
# freed inside a test, whose warning capture then reports them despite conftest's filter
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


@pytest.mark.parametrize("block", [AxiReader, AxiWriter])
@pytest.mark.parametrize("args, kwargs, message", [
    ((32, 48), {}, "data width 48 is not a power of two from 8 to 1024 bits"),
    ((32, 2048), {}, "data width 2048 is not a power of two from 8 to 1024 bits"),
    ((8, 64), {}, "address width 8 is outside 12 to 64 bits"),
    ((65, 64), {}, "address width 65 is outside 12 to 64 bits"),
    ((32, 64), {"max_burst": 300}, "burst length 300 exceeds AXI4's 256 beats"),
    ((32, 64), {"max_burst": 0}, "burst length must be at least 1, got 0"),
    ((32, 64), {"outstanding": 0}, "outstanding requests must be at least 1, got 0"),
    ((32, 64), {"id_width": -1}, "ID width must be 0 or more, got -1"),
])
def test_burst_master_errors(block, args, kwargs, message):
    with pytest.raises(ValueError) as error:
        block(*args, **kwargs)
    assert str(error.value) == f"{block.__name__}: {message}"


def test_reader_fifo_error():
    with pytest.raises(ValueError) as error:
        AxiReader(32, 64, max_burst=16, fifo_depth=8)
    assert str(error.value) == "AxiReader: FIFO depth 8 is less than the burst length 16"


@pytest.mark.parametrize("args, kwargs, message", [
    ((), {"address_bits": 48}, "buffer addresses must be 32 or 64 bits, got 48"),
    ((), {"mode_bits": 25}, "a MODE of 25 bits does not fit CONTROL bits 8 to 31"),
    ((["in put"],), {}, "buffer name 'in put' is not an identifier"),
    ((["input", "weights", "input"],), {}, "buffer 'input' is listed twice"),
    ((), {"address_width": 4}, "address width 4 is too small for the register map's 0x1c bytes"),
])
def test_control_errors(args, kwargs, message):
    with pytest.raises(ValueError) as error:
        ControlRegisters(*args, **kwargs)
    assert str(error.value) == f"ControlRegisters: {message}"


def test_port_names():
    """The Verilog ports cocotbext-axi finds with the prefix "m_axi_" (or "s_axil_")."""
    ports = verilog.convert(AxiReader(32, 64, id_width=2), name="reader", emit_src=False)
    for name in ["arid", "araddr", "arlen", "arsize", "arburst", "arvalid", "arready", "rid",
                 "rdata", "rresp", "rlast", "rvalid", "rready"]:
        assert f" m_axi__{name};" in ports, name
    assert "awaddr" not in ports and "m_axi__arid" not in verilog.convert(
        AxiReader(32, 64), name="reader", emit_src=False)
    ports = verilog.convert(ControlRegisters(), name="control", emit_src=False)
    for name in AxiLiteSignature(12).members:
        assert f" s_axil__{name};" in ports, name


def test_signatures():
    both = AxiSignature(32, 64, 4)
    assert both == AxiSignature(32, 64, 4) and both != AxiSignature(32, 64, 4, write=False)
    assert set(AxiSignature(32, 64, read=False).members) | set(
        AxiSignature(32, 64, write=False).members) == set(AxiSignature(32, 64).members)
    assert AxiSignature(40, 128).members["wstrb"].shape == 16
    assert AxiSignature(40, 128).members["araddr"].shape == 40
    assert both.members["arid"].shape == 4 and "arid" not in AxiSignature(32, 64).members
    assert AxiLiteSignature(12) == AxiLiteSignature(12, 32) != AxiLiteSignature(12, 64)
    assert repr(AxiSignature(32, 64, 0, write=False)) == "AxiSignature(32, 64, 0, read)"
    with pytest.raises(ValueError) as error:
        AxiSignature(32, 64, read=False, write=False)
    assert str(error.value) == ("AxiSignature: a port needs its read channels, its write "
                                "channels or both")


def test_bursts():
    assert timing.bursts(0x0FE8, 40, 64, 16) == [(0x0FE8, 3), (0x1000, 16), (0x1080, 16),
                                                 (0x1100, 5)]
    assert timing.bursts(0x0F00, 64, 64, 256) == [(0x0F00, 32), (0x1000, 32)]
    assert timing.bursts(0x1004, 2, 64, 16) == [(0x1000, 2)]       # low bits ignored
    assert timing.bursts(0x0, 100, 1024, 256) == [(0x0, 32), (0x1000, 32), (0x2000, 32),
                                                   (0x3000, 4)]
    assert timing.bursts(0x40, 0, 64, 16) == []
    rng = random.Random(0)
    for _ in range(200):
        width, burst = rng.choice([8, 32, 64, 256]), rng.randint(1, 256)
        address, beats = rng.randrange(0, 1 << 20, width // 8), rng.randint(1, 3000)
        got = timing.bursts(address, beats, width, burst)
        assert sum(b for _, b in got) == beats and got[0][0] == address
        assert all(b <= burst and a % 4096 + b * width // 8 <= 4096 for a, b in got)
        assert all(a + b * width // 8 == c for (a, b), (c, _) in zip(got, got[1:]))


def test_rates():
    assert timing.read_rate(latency=2) == 1 == timing.write_rate(latency=2)
    assert timing.read_rate(latency=2, bandwidth=0.25) == 0.25
    # one outstanding burst of 16 and 26 cycles of latency: 16 beats per 26 + 15 + 3 cycles
    assert timing.read_rate(outstanding=1, latency=26) == 16 / 44
    assert timing.write_rate(outstanding=1, latency=26) == 16 / 43
    # a deeper FIFO lets the outstanding count bind instead of the credits
    assert timing.read_rate(outstanding=1, fifo_depth=32, latency=26) == 16 / 42
    assert timing.read_cycles(0, 0, 64, latency=2) == 0 == timing.write_cycles(0, 0, 64, latency=2)


class _Streams(wiring.Component):
    """Ports only, nothing behind them, for the top's checks: `i`, `o` and optionally `w` of
    the given shapes."""

    def __init__(self, i, o, w=None, load_beats=None):
        members = {"i": In(stream.Signature(i)), "o": Out(stream.Signature(o))}
        if w is not None:
            members["w"] = In(stream.Signature(w))
        if load_beats is not None:
            self.load_beats = load_beats
        super().__init__(members)

    def elaborate(self, platform):
        return Module()


SIZES = {"input_elements": 12, "output_elements": 12}


@pytest.mark.parametrize("accel, kwargs, message", [
    (_Streams(unsigned(8), pixel_layout(8, 2)), SIZES,
     "the accelerator needs a stream member 'i' (In) of pixels, an ArrayLayout of signed "
     "elements"),
    (_Streams(pixel_layout(8, 2), pixel_layout(8, 2)), {},
     "give input_elements and output_elements for an accelerator without a graph"),
    (_Streams(pixel_layout(8, 2), pixel_layout(8, 2), unsigned(72), 4), SIZES,
     "weight words of 72 bits do not fit the 64-bit bus"),
])
def test_top_errors(accel, kwargs, message):
    with pytest.raises(ValueError) as error:
        MemoryAccelerator(accel, **kwargs)
    assert str(error.value) == f"MemoryAccelerator: {message}"


def test_top_errors_from_its_blocks():
    with pytest.raises(ValueError) as error:
        MemoryAccelerator(_Streams(pixel_layout(8, 5), pixel_layout(8, 2)), **SIZES)
    assert str(error.value) == "WordsToLanes: lanes=5 must divide the frame's 12 elements"


def test_top_weights_port():
    """`m_axi_weights` only with both `w` and `load_beats`."""
    plain = MemoryAccelerator(_Streams(pixel_layout(8, 2), pixel_layout(16, 3)), **SIZES)
    assert "m_axi_weights" not in plain.signature.members and plain.load_beats == 0
    assert (plain.bits_in, plain.lanes_in, plain.bits_out, plain.lanes_out) == (8, 2, 16, 3)
    assert (plain.input_words, plain.output_words) == (2, 3)
    assert "m_axi_weights" not in MemoryAccelerator(
        _Streams(pixel_layout(8, 2), pixel_layout(8, 2), unsigned(8)), **SIZES).signature.members
    top = MemoryAccelerator(_Streams(pixel_layout(8, 2), pixel_layout(8, 2), unsigned(8), 9),
                            **SIZES)
    assert top.signature.members["m_axi_weights"].signature == AxiSignature(32, 64, write=False)
    assert (top.load_bits, top.load_beats) == (8, 9)
    assert top.offsets == {"control": 0, "status": 4, "batch": 8, "input": 0x10,
                           "output": 0x14, "weights": 0x18}


def test_run_model_bounds():
    """`run_cycles` by hand: compute-bound, read-bound and write-bound."""
    common = dict(cycles_per_frame=100, latency=102, first_output=25, input_address=0,
                  input_words=32, input_beats=64, output_address=0x8000, output_words=32,
                  output_beats=64, data_width=64, read_latency=2, write_latency=2)
    lead, tail = 1 + 1 + 2 + 2 + 1, 1 + 2 + 1
    assert timing.run_cycles(4, input_wait=11, **common) == lead + 11 + 3 * 100 + 102 + tail
    slow_reads = timing.run_cycles(4, read_bandwidth=0.125, **common)
    read = timing.read_cycles(0, 128, 64, latency=2, bandwidth=0.125)
    assert slow_reads == 1 + read + 1 + 1 + (102 - 63) + tail
    slow_writes = timing.run_cycles(4, write_bandwidth=0.125, **common)
    write = timing.write_cycles(0x8000, 128, 64, latency=2, bandwidth=0.125)
    assert slow_writes == lead + 25 + 1 + 1 + write - 2
