"""The board flow as `dnnhw build` runs it: open boards to a placed design and a bitstream."""

import json

import onnx
import pytest

from support import onnx_models
from support.cli import dnnhw


@pytest.mark.slow
@pytest.mark.parametrize("board, bitstream", [("icebreaker", "top.bin"), ("ulx3s-12f", "top.bit")])
def test_small_mlp_places_and_gets_a_bitstream(tmp_path, board, bitstream):
    """An MLP (64 → 32 → 10) in its UART board top: Yosys, nextpnr and the packer run through."""
    path = tmp_path / "mlp.onnx"
    onnx.save(onnx_models.mlp(), path)
    out = tmp_path / "build"
    result = dnnhw("build", path, "--board", board, "--out", out)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    pnr, synth = report["pnr"], report["synth"]
    assert pnr["fmax_mhz"] > 0 and pnr["timing_met"], pnr
    assert pnr["bitstream"] == f"board/{bitstream}" and (out / pnr["bitstream"]).stat().st_size > 0
    assert synth["dsp"] >= 1 and all(synth[k] <= report["budget"][k] for k in report["budget"])


@pytest.mark.slow
@pytest.mark.parametrize("board, asked", [("ulx3s-12f", 150), ("icebreaker", 24)])
def test_pll_clock_closed_by_place_and_route(tmp_path, board, asked):
    """The MLP from its board's PLL: at the clock asked where nextpnr meets it, else at a
    lower one it meets (the ULX3S' 12F does not reach 150 MHz), the report at that clock."""
    path = tmp_path / "mlp.onnx"
    onnx.save(onnx_models.mlp(), path)
    out = tmp_path / "build"
    result = dnnhw("build", path, "--board", board, "--clock", asked, "--out", out)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    pnr = report["pnr"]
    assert pnr["timing_met"] and pnr["fmax_mhz"] >= report["clock_mhz"] == pnr["clock_mhz"]
    assert report["clock_mhz"] <= asked and report["clock_mhz"] > 12
    assert any(note.startswith(f"clock: {asked} MHz asked") for note in report["notes"])


@pytest.mark.slow
def test_two_seeds_at_once_on_a_local_dask_cluster(tmp_path):
    """`build --jobs 2`: nextpnr places the top with seeds 1 and 2 at once, the better kept."""
    path = tmp_path / "mlp.onnx"
    onnx.save(onnx_models.mlp(), path)
    out = tmp_path / "build"
    result = dnnhw("build", path, "--board", "ulx3s-12f", "--jobs", 2, "--out", out)
    assert result.returncode == 0, result.stderr
    pnr = json.loads((out / "report.json").read_text())["pnr"]
    seeds = pnr["seeds"]
    assert [s["seed"] for s in seeds] == [1, 2] and sum(s["kept"] for s in seeds) == 1
    assert pnr["fmax_mhz"] == max(s["fmax_mhz"] for s in seeds)
    assert (out / pnr["bitstream"]).exists() and not list((out).glob("board.seed*"))
