"""The board registry: device, resource budget, default clock, Amaranth platform, host link.

Resources are the device's totals in DESIGN.md's units: `bram` counts RAMB18 equivalents on
Xilinx 7-series, DP16KD blocks on ECP5 and 4 Kbit SB_RAM40_4K blocks on iCE40; `lut` counts
LUT6 on 7-series and LUT4 on ECP5 and iCE40.

A board's `memory` (its DRAM, as partitions and weight loading see it) and `reconfiguration_s`
carry the figures the partitioned model uses (`dnnhw.schedule`), each with where it comes from
(`../shared/notes/offchip.md` has the longer story).
"""

import importlib
from dataclasses import asdict, dataclass

from ..errors import UserError


__all__ = ["Memory", "Board", "BOARDS", "DEFAULT_BOARD", "get_board"]


@dataclass(frozen=True)
class Memory:
    """A board's DRAM as the accelerator reaches it.

    Attributes
    ----------
    kind : str
        What it is: "ps-ddr3" (the Zynq processing system's controller), "pl-ddr3" or "sdram"
        (a controller in the fabric).
    bytes : int
        Capacity.
    peak_bytes_per_s : float
        The accelerator's peak bandwidth to it, both directions together.
    efficiency : float
        The fraction of the peak a stream of bursts sustains.
    port_bits : int
        Data width of the accelerator's memory port.
    survives_reconfiguration : bool
        Whether its contents outlive loading another bitstream (true where the controller is
        outside the fabric): only then can partitions pass feature maps through it.
    source : str
        Where the figures come from.
    """
    kind: str
    bytes: int
    peak_bytes_per_s: float
    efficiency: float
    port_bits: int
    survives_reconfiguration: bool
    source: str

    @property
    def bytes_per_s(self):
        """The sustained bandwidth: peak × efficiency."""
        return self.peak_bytes_per_s * self.efficiency


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    family: str             # "xc7", "ecp5" or "ice40": the Yosys synthesis family
    part: str
    lut: int
    ff: int
    dsp: int
    bram: int
    clock_mhz: float        # the default clock: the oscillator (ECP5, iCE40: --clock sets a PLL)
    host_link: str          # "uart" or "axi-stream"
    platform: str | None    # "module:Class" in amaranth_boards, None for DSE-only targets
    memory: Memory | None = None
    reconfiguration_s: float | None = None    # loading one full bitstream, as the host does it
    reconfiguration_source: str = ""

    @property
    def resources(self):
        return {"lut": self.lut, "ff": self.ff, "dsp": self.dsp, "bram": self.bram}

    @property
    def open_flow(self):
        """True where Yosys and nextpnr go all the way to a bitstream."""
        return self.family in ("ecp5", "ice40")

    def platform_class(self):
        if self.platform is None:
            raise UserError(f"board '{self.name}' is a design-space-exploration target only: "
                            "amaranth-boards has no platform for it")
        module, cls = self.platform.split(":")
        return getattr(importlib.import_module(module), cls)

    def summary(self):
        return {**asdict(self), "open_flow": self.open_flow}


_ZYNQ = ("PS DDR3 through the S_AXI_HP ports (64-bit, 1.2 GB/s per port and direction, "
         "UG585 'Theoretical Bandwidth'); sustained about 75 % of peak (UG585 section 22.3)")
_PYNQ_MEMORY = Memory("ps-ddr3", 512 << 20, 2.1e9, 0.75, 64, True,
                      "512 MB DDR3, 16-bit at 1050 MT/s (Digilent PYNQ-Z1 manual); " + _ZYNQ)
_ZC706_MEMORY = Memory("ps-ddr3", 1 << 30, 4.264e9, 0.75, 64, True,
                       "1 GB DDR3, 32-bit at 1066 MT/s: 4,264 MB/s (UG585); " + _ZYNQ)
_ARTY_MEMORY = Memory("pl-ddr3", 256 << 20, 1.6e9, 0.75, 128, False,
                      "256 MB DDR3L, 16-bit (MT41K128M16) at 800 MT/s through LiteDRAM's "
                      "arty.yml (100 MHz, 128-bit AXI port); the controller is in the fabric "
                      "and has no self-refresh, so a reconfiguration loses the contents")
_ULX3S_MEMORY = Memory("sdram", 32 << 20, 1e8, 0.75, 16, False,
                       "32 MB SDR SDRAM, 16-bit (MT48LC16M16) through LiteDRAM at 50 MHz, 1:1: "
                       "100 MB/s; the controller is in the fabric, so a reconfiguration loses "
                       "the contents")
_JTAG_ARTY = ("xc7a35t full bitstream 17,536,096 bit (UG470) over JTAG at its 66 Mb/s maximum "
              "(UG909): a lower bound, from the host")
_JTAG_ECP5 = ("{} B uncompressed ECP5 bitstream (ecppack) over USB-JTAG at about 0.66 MB/s "
              "(pico-dirtyJtag#43), from the host")


_AB = "amaranth_boards."
BOARDS = {b.name: b for b in [
    Board("arty", "Digilent Arty A7-35T", "xc7", "xc7a35ticsg324-1L",
          20800, 41600, 90, 100, 100.0, "uart", _AB + "arty_a7:ArtyA7_35Platform",
          memory=_ARTY_MEMORY, reconfiguration_s=0.266, reconfiguration_source=_JTAG_ARTY),
    Board("arty-a7-100", "Digilent Arty A7-100T", "xc7", "xc7a100ticsg324-1L",
          63400, 126800, 240, 270, 100.0, "uart", _AB + "arty_a7:ArtyA7_100Platform",
          memory=_ARTY_MEMORY, reconfiguration_s=0.464,
          reconfiguration_source=_JTAG_ARTY.replace("xc7a35t", "xc7a100t").replace("17,536,096", "30,606,304")),
    Board("ulx3s-12f", "Radiona ULX3S, LFE5U-12F", "ecp5", "LFE5U-12F-6BG381C",
          12288, 12288, 28, 32, 25.0, "uart", _AB + "ulx3s:ULX3S_12F_Platform",
          memory=_ULX3S_MEMORY, reconfiguration_s=0.88,
          reconfiguration_source=_JTAG_ECP5.format("582,369")),
    Board("ulx3s-25f", "Radiona ULX3S, LFE5U-25F", "ecp5", "LFE5U-25F-6BG381C",
          24288, 24288, 28, 56, 25.0, "uart", _AB + "ulx3s:ULX3S_25F_Platform",
          memory=_ULX3S_MEMORY, reconfiguration_s=0.88,
          reconfiguration_source=_JTAG_ECP5.format("582,369")),
    Board("ulx3s-45f", "Radiona ULX3S, LFE5U-45F", "ecp5", "LFE5U-45F-6BG381C",
          43848, 43848, 72, 108, 25.0, "uart", _AB + "ulx3s:ULX3S_45F_Platform",
          memory=_ULX3S_MEMORY, reconfiguration_s=1.56,
          reconfiguration_source=_JTAG_ECP5.format("1,032,325")),
    Board("ulx3s-85f", "Radiona ULX3S, LFE5U-85F", "ecp5", "LFE5U-85F-6BG381C",
          83640, 83640, 156, 208, 25.0, "uart", _AB + "ulx3s:ULX3S_85F_Platform",
          memory=_ULX3S_MEMORY, reconfiguration_s=2.92,
          reconfiguration_source=_JTAG_ECP5.format("1,927,725")),
    Board("orangecrab-25f", "Orange Crab r0.2, LFE5U-25F", "ecp5", "LFE5U-25F-8MG285C",
          24288, 24288, 28, 56, 48.0, "uart", _AB + "orangecrab_r0_2:OrangeCrabR0_2_25FPlatform"),
    Board("icebreaker", "1BitSquared iCEBreaker, iCE40UP5K", "ice40", "iCE40UP5K-SG48",
          5280, 5280, 8, 30, 12.0, "uart", _AB + "icebreaker:ICEBreakerPlatform",
          reconfiguration_s=0.14,
          reconfiguration_source="104,090 B (icepack) into the FPGA by iceprog -S over the FT2232H's 6 MHz SPI (0.75 MB/s): a lower bound, from the host"),
    Board("pynq-z1", "Digilent PYNQ-Z1, Zynq-7020", "xc7", "xc7z020clg400-1",
          53200, 106400, 220, 280, 100.0, "axi-stream", None,
          memory=_PYNQ_MEMORY, reconfiguration_s=0.025,
          reconfiguration_source="xc7z020 bitstream 4.05 MB through the PCAP at the 161 MB/s fpgaConvNet's ZC706 figure implies (the port's bound is 10 ms)"),
    Board("zc706", "Xilinx ZC706, Zynq-7045", "xc7", "xc7z045ffg900-2",
          218600, 437200, 900, 1090, 200.0, "axi-stream", None,
          memory=_ZC706_MEMORY, reconfiguration_s=0.08255,
          reconfiguration_source="fpgaConvNet's platform figure (82.55 ms, a plausible PCAP load of the 13.3 MB xc7z045 bitstream; the port's bound is 33 ms)"),
]}

DEFAULT_BOARD = "arty"


def get_board(name):
    try:
        return BOARDS[name]
    except KeyError:
        raise UserError(f"unknown board '{name}' (known: {', '.join(BOARDS)})") from None
