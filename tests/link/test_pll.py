"""The board top's PLL: the dividers `pll.plan` picks for ECP5 and iCE40 (exact where the
arithmetic allows, within each PLL's ranges, the nearest otherwise), and the board top they make:
the PLL primitive in the design, the clock constraint at its frequency, the UART divisor
following it."""

import pytest

from dnnhw.accel import Accelerator
from dnnhw.boards import get_board
from dnnhw.errors import UserError
from dnnhw.link import pll
from dnnhw.link.top import BoardTop, baud_for, board_clock
from support.onnx_models import tiny_network


@pytest.mark.parametrize("family, f_in, f_out, made", [
    ("ecp5", 25e6, 100e6, 100e6), ("ecp5", 25e6, 70e6, 70e6), ("ecp5", 48e6, 96e6, 96e6),
    ("ecp5", 25e6, 66e6, 65.625e6), ("ice40", 12e6, 24e6, 24e6), ("ice40", 12e6, 48e6, 48e6),
    ("ice40", 12e6, 30e6, 30e6), ("xc7", 100e6, 150e6, 150e6), ("xc7", 100e6, 133e6, 400e6 / 3)])
def test_plans(family, f_in, f_out, made):
    p = pll.plan(family, f_in, f_out)
    assert p.f_out == pytest.approx(made)
    if family == "ecp5":
        refdiv, fbdiv, opdiv = p.dividers
        assert p.f_out == pytest.approx(f_in * fbdiv / refdiv) and 400e6 <= p.vco <= 800e6
        assert p.vco == pytest.approx(p.f_out * opdiv) and f_in / refdiv >= 3.125e6
    elif family == "xc7":
        divide, mult, out_divide = p.dividers
        assert 10e6 <= f_in / divide <= 450e6 and 600e6 <= p.vco <= 1200e6
        assert p.vco == pytest.approx(f_in / divide * mult) == pytest.approx(p.f_out * out_divide)
    else:
        divr, divf, divq = p.dividers
        pfd = f_in / (divr + 1)
        assert 10e6 <= pfd <= 133e6 and 533e6 <= pfd * (divf + 1) <= 1066e6
        assert p.f_out == pytest.approx(pfd * (divf + 1) / 2 ** divq)


def test_below_and_refusals():
    assert pll.plan("ecp5", 25e6, 70.7e6, below=True).f_out <= 70.7e6
    assert pll.plan("ecp5", 25e6, 70.7e6).f_out > pll.plan("ecp5", 25e6, 70.7e6, below=True).f_out
    with pytest.raises(UserError, match=r"^the ice40 PLL cannot make 5 MHz from 12 MHz or less "
                                        r"\(its settings run from 16.125 MHz\)$"):
        pll.plan("ice40", 12e6, 5e6, below=True)
    with pytest.raises(UserError, match="no PLL for the gowin family"):
        pll.plan("gowin", 27e6, 50e6)


@pytest.fixture(scope="module")
def accel(tmp_path_factory):
    return Accelerator(tiny_network(tmp_path_factory.mktemp("tiny"))[0])


@pytest.mark.parametrize("board, mhz, primitive, constraints", [
    ("ulx3s-12f", 50, "EHXPLLL", "top.lpf"), ("icebreaker", 24, "SB_PLL40_PAD", "top.pcf"),
    ("arty", 150, "MMCME2_BASE", "top.xdc")])
def test_board_top_runs_from_the_pll(accel, board, mhz, primitive, constraints):
    board = get_board(board)
    top = BoardTop(accel, board, clock_mhz=mhz)
    assert top.clock_hz == mhz * 1e6 and top.baud == baud_for(top.clock_hz)
    assert top.link.divisor == round(top.clock_hz / top.baud)
    files = board.platform_class()().prepare(top, name="top").files
    assert any(primitive in text for name, text in files.items() if name.endswith((".il", ".v")))
    if constraints == "top.xdc":        # Vivado derives the MMCM's clock from the oscillator's
        assert "create_clock" in files[constraints] and "pll_clock" not in files[constraints]
        return
    wanted = {"top.lpf": f'FREQUENCY NET "pll.pll_clock" {mhz * 1e6:.1f} HZ;',
              "top.pcf": f"set_frequency pll.pll_clock {mhz:.1f}"}[constraints]
    assert wanted in files[constraints], files[constraints]     # nextpnr's clock constraint


def test_oscillator_without_pll(accel):
    board = get_board("ulx3s-12f")
    assert board_clock(board) == (25e6, None) and board_clock(board, 25) == (25e6, None)
    assert BoardTop(accel, board).pll is None
    assert board_clock(get_board("arty"), 100) == (100e6, None)
