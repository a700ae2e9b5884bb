"""The board top's clock: a PLL from the board's oscillator to the frequency asked for.

`plan(family, f_in, f_out)` chooses the dividers of the family's PLL (ECP5 `EHXPLLL`, iCE40
`SB_PLL40_PAD`, 7-series `MMCME2_BASE`) that come nearest to `f_out` within the PLL's ranges,
and `PLL` instantiates it and drives the `sync` domain, held in reset until the PLL locks.
"""

from dataclasses import dataclass

from amaranth.hdl import ClockSignal, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import ResetSynchronizer

from ..errors import UserError


__all__ = ["PLL_FAMILIES", "PLLPlan", "plan", "PLL"]


PLL_FAMILIES = ("ecp5", "ice40", "xc7")


@dataclass(frozen=True)
class PLLPlan:
    """The dividers of one PLL setting and the frequencies they make (Hz)."""
    family: str
    f_in: float
    f_out: float
    vco: float
    dividers: tuple         # ECP5: (CLKI_DIV, CLKFB_DIV, CLKOP_DIV); iCE40: (DIVR, DIVF, DIVQ);
                            # 7-series: (DIVCLK_DIVIDE, CLKFBOUT_MULT_F, CLKOUT0_DIVIDE_F)

    @property
    def filter_range(self):
        """iCE40's loop filter setting for its phase detector's frequency."""
        pfd = self.f_in / (self.dividers[0] + 1) / 1e6
        return next(k for k, top in enumerate((17, 26, 44, 66, 101, 134), 1) if pfd < top)


def _ecp5(f_in, f_out):
    """EHXPLLL, feedback from CLKOP: f_out = f_in·CLKFB_DIV/CLKI_DIV, the VCO f_out·CLKOP_DIV
    in 400..800 MHz (the highest CLKOP_DIV that stays in it), the phase detector f_in/CLKI_DIV
    at least 3.125 MHz (Lattice TN1263)."""
    for refdiv in range(1, 129):
        if f_in / refdiv < 3.125e6:
            break
        for fbdiv in range(1, 81):
            out = f_in * fbdiv / refdiv
            opdiv = min(int(800e6 // out), 128) if 3.125e6 <= out <= 400e6 else 0
            if opdiv and out * opdiv >= 400e6:
                yield PLLPlan("ecp5", f_in, out, out * opdiv, (refdiv, fbdiv, opdiv))


def _ice40(f_in, f_out):
    """SB_PLL40, simple feedback: the phase detector f_in/(DIVR+1) in 10..133 MHz, the VCO
    its (DIVF+1) times in 533..1066 MHz, f_out the VCO over 2**DIVQ, 16..275 MHz (iCE40 sysCLOCK
    PLL guide)."""
    for divr in range(16):
        pfd = f_in / (divr + 1)
        if not 10e6 <= pfd <= 133e6:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533e6 <= vco <= 1066e6:
                continue
            for divq in range(1, 7):
                out = vco / (1 << divq)
                if 16e6 <= out <= 275e6:
                    yield PLLPlan("ice40", f_in, out, vco, (divr, divf, divq))


def _xc7(f_in, f_out):
    """MMCME2_BASE at speed grade -1: the phase detector f_in/DIVCLK_DIVIDE in 10..450 MHz, the
    VCO its CLKFBOUT_MULT_F times in 600..1200 MHz, f_out the VCO over CLKOUT0_DIVIDE_F
    (integer settings; DS181)."""
    for divide in range(1, 107):
        pfd = f_in / divide
        if pfd < 10e6:
            break
        if pfd > 450e6:
            continue
        for mult in range(2, 65):
            vco = pfd * mult
            if 600e6 <= vco <= 1200e6:
                for out_divide in range(1, 129):
                    yield PLLPlan("xc7", f_in, vco / out_divide, vco, (divide, mult, out_divide))


def plan(family, f_in, f_out, below=False):
    """The PLL setting nearest `f_out` (Hz) from an `f_in` oscillator, or with `below` the
    fastest at most `f_out` (a clock the design must meet); ties go to the higher VCO.

    Raises
    ------
    UserError
        If the family has no PLL here, or none of its settings is near enough (the message
        gives the range it can make).
    """
    settings = {"ecp5": _ecp5, "ice40": _ice40, "xc7": _xc7}.get(family)
    if settings is None:
        raise UserError(f"no PLL for the {family} family in dnnhw's board tops")
    found = [p for p in settings(f_in, f_out) if not below or p.f_out <= f_out * (1 + 1e-9)]
    if not found:
        made = [p.f_out for p in settings(f_in, f_out)]
        raise UserError(f"the {family} PLL cannot make {f_out / 1e6:g} MHz from "
                        f"{f_in / 1e6:g} MHz" + (f" or less (its settings run from "
                                                 f"{min(made) / 1e6:g} MHz)" if made else ""))
    return min(found, key=lambda p: (abs(p.f_out - f_out), -p.vco))


class PLL(wiring.Component):
    """Drives the `sync` domain (which its parent defines) from `plan`'s PLL on the board
    oscillator `clock_in` (for iCE40, the oscillator's pad, which SB_PLL40_PAD takes directly),
    in reset until the PLL locks.

    Parameters
    ----------
    setting : PLLPlan
    clock_in : the oscillator's input (ECP5: a 1-bit signal; iCE40: its I/O port)
    """

    def __init__(self, setting, clock_in):
        self.setting, self.clock_in = setting, clock_in
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        clock = Signal(name="pll_clock")
        locked = Signal(name="pll_locked")
        m.d.comb += ClockSignal("sync").eq(clock)
        p = self.setting
        if p.family == "ecp5":
            refdiv, fbdiv, opdiv = p.dividers
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_FREQUENCY_PIN_CLKI=f"{p.f_in / 1e6:g}", a_FREQUENCY_PIN_CLKOP=f"{p.f_out / 1e6:g}",
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
                a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
                p_CLKI_DIV=refdiv, p_CLKFB_DIV=fbdiv, p_CLKOP_DIV=opdiv,
                p_CLKOP_CPHASE=opdiv - 1, p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
                i_RST=0, i_STDBY=0, i_CLKI=self.clock_in, i_CLKFB=clock,
                i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
                i_PLLWAKESYNC=0, i_ENCLKOP=0,
                o_CLKOP=clock, o_LOCK=locked)
        elif p.family == "xc7":
            divide, mult, out_divide = p.dividers
            feedback, unbuffered = Signal(name="mmcm_feedback"), Signal(name="mmcm_clock")
            m.submodules.pll = Instance(
                "MMCME2_BASE",
                p_CLKIN1_PERIOD=round(1e9 / p.f_in, 3), p_DIVCLK_DIVIDE=divide,
                p_CLKFBOUT_MULT_F=float(mult), p_CLKOUT0_DIVIDE_F=float(out_divide),
                i_CLKIN1=self.clock_in, i_CLKFBIN=feedback, o_CLKFBOUT=feedback,
                i_RST=0, i_PWRDWN=0, o_CLKOUT0=unbuffered, o_LOCKED=locked)
            m.submodules.bufg = Instance("BUFG", i_I=unbuffered, o_O=clock)
        else:
            divr, divf, divq = p.dividers
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                p_FEEDBACK_PATH="SIMPLE", p_DIVR=divr, p_DIVF=divf, p_DIVQ=divq,
                p_FILTER_RANGE=p.filter_range,
                i_PACKAGEPIN=self.clock_in, i_RESETB=1, i_BYPASS=0,
                o_PLLOUTGLOBAL=clock, o_LOCK=locked)
        m.submodules.reset = ResetSynchronizer(~locked, domain="sync")
        if platform is not None and p.family != "xc7":     # Vivado derives the MMCM's clock
            platform.add_clock_constraint(clock, p.f_out)
        return m
