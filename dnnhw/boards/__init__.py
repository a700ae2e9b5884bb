"""The board registry: device, resource budget, default clock, Amaranth platform, host link.

Resources are the device's totals in DESIGN.md's units: `bram` counts RAMB18 equivalents on
Xilinx 7-series, DP16KD blocks on ECP5 and 4 Kbit SB_RAM40_4K blocks on iCE40; `lut` counts
LUT6 on 7-series and LUT4 on ECP5 and iCE40.
"""

import importlib
from dataclasses import asdict, dataclass

from ..errors import UserError


__all__ = ["Board", "BOARDS", "DEFAULT_BOARD", "get_board"]


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
    clock_mhz: float        # the accelerator's clock: the board's oscillator (no PLL yet)
    host_link: str          # "uart" or "axi-stream"
    platform: str | None    # "module:Class" in amaranth_boards, None for DSE-only targets

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


_AB = "amaranth_boards."
BOARDS = {b.name: b for b in [
    Board("arty", "Digilent Arty A7-35T", "xc7", "xc7a35ticsg324-1L",
          20800, 41600, 90, 100, 100.0, "uart", _AB + "arty_a7:ArtyA7_35Platform"),
    Board("arty-a7-100", "Digilent Arty A7-100T", "xc7", "xc7a100ticsg324-1L",
          63400, 126800, 240, 270, 100.0, "uart", _AB + "arty_a7:ArtyA7_100Platform"),
    Board("ulx3s-12f", "Radiona ULX3S, LFE5U-12F", "ecp5", "LFE5U-12F-6BG381C",
          12288, 12288, 28, 32, 25.0, "uart", _AB + "ulx3s:ULX3S_12F_Platform"),
    Board("ulx3s-25f", "Radiona ULX3S, LFE5U-25F", "ecp5", "LFE5U-25F-6BG381C",
          24288, 24288, 28, 56, 25.0, "uart", _AB + "ulx3s:ULX3S_25F_Platform"),
    Board("ulx3s-45f", "Radiona ULX3S, LFE5U-45F", "ecp5", "LFE5U-45F-6BG381C",
          43848, 43848, 72, 108, 25.0, "uart", _AB + "ulx3s:ULX3S_45F_Platform"),
    Board("ulx3s-85f", "Radiona ULX3S, LFE5U-85F", "ecp5", "LFE5U-85F-6BG381C",
          83640, 83640, 156, 208, 25.0, "uart", _AB + "ulx3s:ULX3S_85F_Platform"),
    Board("orangecrab-25f", "Orange Crab r0.2, LFE5U-25F", "ecp5", "LFE5U-25F-8MG285C",
          24288, 24288, 28, 56, 48.0, "uart", _AB + "orangecrab_r0_2:OrangeCrabR0_2_25FPlatform"),
    Board("icebreaker", "1BitSquared iCEBreaker, iCE40UP5K", "ice40", "iCE40UP5K-SG48",
          5280, 5280, 8, 30, 12.0, "uart", _AB + "icebreaker:ICEBreakerPlatform"),
    Board("pynq-z1", "Digilent PYNQ-Z1, Zynq-7020", "xc7", "xc7z020clg400-1",
          53200, 106400, 220, 280, 100.0, "axi-stream", None),
    Board("zc706", "Xilinx ZC706, Zynq-7045", "xc7", "xc7z045ffg900-2",
          218600, 437200, 900, 1090, 200.0, "axi-stream", None),
]}

DEFAULT_BOARD = "arty"


def get_board(name):
    try:
        return BOARDS[name]
    except KeyError:
        raise UserError(f"unknown board '{name}' (known: {', '.join(BOARDS)})") from None
