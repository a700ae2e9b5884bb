"""Timing closure in `build` (`build._closed_timing`) with place-and-route stood in for: a
clock the design misses is lowered to the PLL's fastest setting a margin below the fmax nextpnr
reached, until it is met (three runs at most), and the notes say what was asked and achieved.
`test_board.py` runs it with nextpnr."""

import pytest

from dnnhw import build
from dnnhw.boards import get_board
from dnnhw.link.pll import plan
from dnnhw.toolchain import board as board_module


def _place_and_route(monkeypatch, fmaxes):
    """board_flow reaching `fmaxes` in turn; returns the clocks it was run at."""
    clocks = []

    def board_flow(accel, board, folder, progress, clock_mhz, seeds=(), client=None):
        fmax = fmaxes[len(clocks)]
        clocks.append(clock_mhz)
        return {}, {"fmax_mhz": fmax, "clock_mhz": round(clock_mhz), "timing_met": fmax >= clock_mhz}, []

    monkeypatch.setattr(board_module, "board_flow", board_flow)
    return clocks


def test_lowered_until_met(monkeypatch, tmp_path):
    clocks = _place_and_route(monkeypatch, [108.2, 106.0])
    notes = []
    _, pnr, _ = build._closed_timing(None, get_board("ulx3s-12f"), tmp_path, 150, notes)
    second = plan("ecp5", 25e6, 0.97 * 108.2e6, below=True).f_out / 1e6
    assert clocks == [150, second] and second <= 0.97 * 108.2
    assert pnr["clock_mhz"] == pytest.approx(second) and pnr["timing_met"]
    assert notes[0].startswith("timing: nextpnr reached 108.2 MHz of the 150 MHz asked; placed "
                               "and routed again at")
    assert notes[-1].startswith(f"timing: met at {second:.4g} MHz (nextpnr: 106 MHz)")


def test_met_at_once(monkeypatch, tmp_path):
    clocks = _place_and_route(monkeypatch, [130.0])
    notes = []
    _, pnr, _ = build._closed_timing(None, get_board("icebreaker"), tmp_path, 24, notes)
    assert clocks == [24] and notes == [] and pnr["clock_mhz"] == 24


def test_gives_up_after_three_runs(monkeypatch, tmp_path):
    clocks = _place_and_route(monkeypatch, [80.0, 60.0, 40.0])
    notes = []
    _, pnr, _ = build._closed_timing(None, get_board("ulx3s-85f"), tmp_path, 100, notes)
    assert len(clocks) == 3 and not pnr["timing_met"]
    assert notes[-1].startswith(f"timing: {clocks[-1]:.4g} MHz still fails (nextpnr: 40 MHz) "
                                "after 3 place-and-route runs")
