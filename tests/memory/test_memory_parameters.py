"""The memory blocks without simulation: parameter errors by their exact message, the AXI
signatures' members and Verilog port names, and `timing`'s burst split and rates."""

import random

import pytest
from amaranth.back import verilog

from dnnhw.memory import timing
from dnnhw.memory.axi import AxiLiteSignature, AxiSignature
from dnnhw.memory.control import ControlRegisters
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
