"""Several networks on one chip (`dnnhw.multi`, f-CNNx): names and targets, the allocation of a
board between networks, a build of two networks verified in one simulation, and the refusals;
the digits network beside a narrower variant on arty (slow)."""

import dataclasses
import json

import numpy as np
import onnx
import pytest

from dnnhw import dse, multi, quant
from dnnhw.boards import get_board
from dnnhw.errors import UserError
from dnnhw.frontend import load
from support import onnx_models
from support.cli import DIGITS, assert_user_error, dnnhw
from support.onnx_models import tiny_network


@pytest.fixture
def two(tmp_path):
    """The tiny classifier and a conv + batchnorm + relu, as ONNX files and quantized graphs."""
    tiny, _ = tiny_network(tmp_path)
    onnx.save(onnx_models.conv_bn_relu(), tmp_path / "features.onnx")
    features = load(tmp_path / "features.onnx")
    frames = np.random.default_rng(3).standard_normal((8, *features.input_frame_shape))
    return tmp_path, [tiny, quant.quantize(features, frames, bits=8)]


def test_names_and_targets(tmp_path):
    assert multi.network_names([tmp_path / "a.onnx", tmp_path / "x" / "b.onnx"]) == ["a", "b"]
    with pytest.raises(UserError, match="two networks are named a"):
        multi.network_names([tmp_path / "a.onnx", tmp_path / "x" / "a.onnx"])
    assert multi.parse_named(["a=1e5", "b=20"], ["a", "b"]) == {"a": 1e5, "b": 20.0}
    assert multi.parse_named(None, ["a"], "--weight") == {}
    for item, fragment in [("c=5", "no network named c"), ("a=0", "VALUE > 0"),
                           ("a", "NAME=VALUE"), ("a=x", "NAME=VALUE")]:
        with pytest.raises(UserError, match=fragment):
            multi.parse_named([item], ["a", "b"])


def _total(found):
    return {k: sum(f.resources[k] for f in found) for k in dse.KINDS}


@pytest.mark.parametrize("dsp", [8, 40])
def test_allocation_meets_targets_within_one_budget(two, dsp):
    _, graphs = two
    board = dataclasses.replace(get_board("arty"), name="small", dsp=dsp, lut=6000, bram=20)
    names = ["tiny", "features"]
    alone = [dse.explore(g, board) for g in graphs]
    target = 0.5 * board.clock_mhz * 1e6 / alone[0].perf.cycles_per_frame
    chosen = multi.allocate(graphs, names, board, {"tiny": target})
    clock = board.clock_mhz * 1e6
    fps = [clock / f.perf.cycles_per_frame for f in chosen.found]
    assert fps[0] >= target and chosen.scale >= 1
    assert chosen.reference == [target, chosen.fastest[1] / 2]
    assert all(f >= chosen.scale * r * (1 - 1e-9) for f, r in zip(fps, chosen.reference))
    assert chosen.resources == _total(chosen.found)
    assert all(chosen.resources[k] <= chosen.limit[k] for k in dse.KINDS)
    free = multi.allocate(graphs, names, board, {})      # no targets: shares of the fastest
    assert free.reference == [f / 2 for f in free.fastest]
    assert all(free.resources[k] <= free.limit[k] for k in dse.KINDS)
    weighted = multi.allocate(graphs, names, board, {}, weights={"tiny": 3})
    assert weighted.reference == [3 * weighted.fastest[0] / 4, weighted.fastest[1] / 4]
    assert weighted.found[0].perf.cycles_per_frame <= free.found[0].perf.cycles_per_frame


def test_targets_that_cannot_be_met_say_which(two):
    _, graphs = two
    board = dataclasses.replace(get_board("arty"), name="small", dsp=8, lut=6000, bram=20)
    clock = board.clock_mhz * 1e6
    fastest = [clock / dse.explore(g, board).perf.cycles_per_frame for g in graphs]
    with pytest.raises(UserError, match=r"out of reach on small even alone: tiny"):
        multi.allocate(graphs, ["tiny", "features"], board, {"tiny": 2 * fastest[0]})
    with pytest.raises(UserError, match="do not fit small together at their targets"):
        multi.allocate(graphs, ["tiny", "features"], board,
                       {"tiny": fastest[0], "features": fastest[1]})


def test_build_and_verify_two_networks_in_one_simulation(two):
    folder, _ = two
    out = folder / "build"
    result = dnnhw("build", folder / "tiny.onnx", folder / "features.onnx", "--board", "arty",
                   "--target-fps", "tiny=2e6", "--no-synth", "--verify", "--frames", "6",
                   "--out", out)
    assert result.returncode == 0, result.stderr
    assert "tiny + features → arty" in result.stdout and "target 2,000,000 fps met" in result.stdout
    report = json.loads((out / "report.json").read_text())
    v = report["verify"]
    assert v["bit_exact"] and [n["name"] for n in v["networks"]] == ["tiny", "features"]
    for network, checked in zip(report["networks"], v["networks"]):
        assert checked["frames"] == 6 and checked["stalled_frames"] == 3
        assert checked["measured_cycles_per_frame"] == pytest.approx(
            network["predicted"]["cycles_per_frame"], rel=0.05)
    assert report["networks"][0]["predicted"]["fps"] >= 2e6 and report["networks"][0]["met"]
    assert {p.name for p in (out / "design").iterdir()} == {
        "net0", "net1", "multi.json", "design.json"}
    assert "Allocation" in (out / "report.html").read_text()
    again = dnnhw("verify", out, "--frames", "3")
    assert again.returncode == 0 and again.stdout.startswith("tiny: 3 frames: bit-exact")


def test_refusals(two):
    folder, _ = two
    nets = [folder / "tiny.onnx", folder / "features.onnx"]
    for args, fragment in [(["--cascade", "4,8"], "--cascade"),
                           (["--layer-bits", "auto"], "--layer-bits"),
                           (["--data", folder / "x.npy"], "--data"),
                           (["--objective", "latency"], "--objective"),
                           (["--target-fps", "tiny=1e12"], "out of reach")]:
        assert_user_error(dnnhw("build", *nets, *args, "--no-synth", "--out", folder / "b"),
                          fragment)
    assert_user_error(dnnhw("build", nets[0], "--target-fps", "tiny=5", "--no-synth"),
                      "for several networks")
    assert not (folder / "b").exists()
    assert not any(p.name.startswith(".") for p in folder.iterdir())


@pytest.mark.slow
def test_digits_beside_a_narrower_variant_on_arty(tmp_path):
    """Two networks with different targets on arty: both met and bit-exact in one simulation,
    and an infeasible pair refused in one line."""
    nets = [DIGITS / "digits.onnx", DIGITS / "variants" / "digits_w4.onnx"]
    common = ["--board", "arty", "--calibration", DIGITS / "digits_calib.npy", "--no-synth"]
    result = dnnhw("build", *nets, *common, "--target-fps", "digits=100000",
                   "--target-fps", "digits_w4=200000", "--verify", "--out", tmp_path / "b")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["verify"]["bit_exact"] and all(n["met"] for n in report["networks"])
    assert_user_error(dnnhw("build", *nets, *common, "--target-fps", "digits=190000",
                            "--target-fps", "digits_w4=700000", "--out", tmp_path / "c"),
                      "do not fit arty together")
