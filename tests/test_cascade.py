"""build --cascade (`dnnhw.cascade`): the threshold, the rate model and the split of the board
on a tiny classifier, a build and its verification through the command line, and the errors;
the digits cascade against 8 bits alone (slow)."""

import json

import numpy as np
import onnx
import pytest

from dnnhw import cascade, cli, dse, golden, model
from dnnhw.boards import get_board
from dnnhw.build import link_reserve
from dnnhw.errors import UserError
from dnnhw.frontend import load
from support import onnx_models
from support.cli import DIGITS, assert_user_error, dnnhw
from support.onnx_models import tiny_network


@pytest.fixture
def tiny(tmp_path):
    """The tiny classifier's ONNX file, frames and labels (the float network's top-1 on most
    frames, another class on every fifth), as .npy files, and its two stages at 4 and 8 bits."""
    _, calibration = tiny_network(tmp_path)
    graph = load(tmp_path / "tiny.onnx")
    frames = np.random.default_rng(9).standard_normal((60, *graph.input_frame_shape))
    labels = golden.run(graph, frames, fixed=False).argmax(axis=1)
    labels[::5] = (labels[::5] + 1) % 6
    np.save(tmp_path / "calib.npy", calibration)
    np.save(tmp_path / "x.npy", frames)
    np.save(tmp_path / "y.npy", labels)
    first, second = cascade.stages(graph, calibration, 4, 8)
    return tmp_path, frames, labels, first, second


def test_parse_pair():
    assert cascade.parse_pair("4,8") == (4, 8)
    for text, fragment in [("4", "two word lengths"), ("8,4", "narrower"), ("a,8", "LOW,HIGH"),
                           ("2,8", "outside the supported")]:
        with pytest.raises(UserError, match=fragment):
            cascade.parse_pair(text)


def test_stages_share_the_input_format(tiny):
    *_, first, second = tiny
    assert first.formats[first.input] == second.formats[second.input]
    assert {first.formats[layer.output].bits for layer in first.layers} == {4}
    assert {second.formats[layer.output].bits for layer in second.layers} == {8}


@pytest.mark.parametrize("tolerance", [0.0, 0.05, 1.0])
def test_threshold_is_the_smallest_within_tolerance(tiny, tolerance):
    _, frames, labels, first, second = tiny
    chosen = cascade.choose_threshold(first, second, frames, labels, tolerance)
    assert chosen.metric == "accuracy" and chosen.frames == len(frames)
    assert chosen.cascade >= chosen.second - tolerance - 1e-12
    assert all(t["score"] < chosen.second - tolerance for t in chosen.sweep[:-1])
    if tolerance == 1.0:
        assert chosen.threshold == 0 and chosen.recompute == 0
    # what the sweep says is what the golden cascade does
    xs = [golden.quantize(golden.input_to_chw(first, f), first.formats[first.input])
          for f in frames]
    out = np.stack([golden.run_cascade(first, second, chosen.threshold, x) for x in xs])
    assert np.mean(out[:, -1] == 2) == chosen.recompute
    assert np.mean(out[:, :-1].argmax(axis=1) == labels) == chosen.cascade


def test_threshold_without_labels_is_agreement_with_the_second_stage(tiny):
    _, frames, _, first, second = tiny
    chosen = cascade.choose_threshold(first, second, frames, None, 0.0)
    assert chosen.metric == "agreement" and chosen.second == 1.0 and chosen.cascade == 1.0


def test_rate():
    assert cascade.rate(50, 400, 0.1, 64, 10) == pytest.approx(0.1 * 400 + 0.9 * 64)
    assert cascade.rate(300, 400, 0.1, 64, 10) == 300          # the first stage binds
    assert cascade.rate(2, 3, 0.0, 4, 10) == 11                # the output's classes + 1 beats
    assert cascade.rate(100, 20, 1.0, 64, 10) == 100           # the queue: a beat a cycle


def test_split_shares_the_budget(tiny):
    *_, first, second = tiny
    board = get_board("arty")
    reserve = link_reserve(second, board)
    parts = cascade.split(first, second, board, 0.3, reserve=reserve)
    used = {k: parts.first.resources[k] + parts.second.resources[k] + parts.overhead[k]
            + reserve[k] for k in dse.KINDS}
    limit = dse.search.budget(board, dse.DEFAULT_CAP)
    assert all(used[k] <= limit[i] for i, k in enumerate(dse.KINDS))
    assert parts.cycles <= min(t["cycles"] for t in parts.tried) + 1e-9
    layer = first.layers[0]
    lanes = model.in_lanes(layer, parts.first.plan[layer.name])
    assert parts.cycles == cascade.rate(
        parts.first.perf.cycles_per_frame, parts.second.perf.cycles_per_frame, 0.3,
        first.shapes[first.input].size // lanes, 6)


def test_build_and_verify(tiny):
    folder, *_ = tiny
    out = folder / "build"
    result = dnnhw("build", folder / "tiny.onnx", "--board", "arty", "--cascade", "4,8",
                   "--calibration", folder / "calib.npy", "--data", folder / "x.npy",
                   "--labels", folder / "y.npy", "--tolerance", "0.02", "--no-synth", "--verify",
                   "--out", out)
    assert result.returncode == 0, result.stderr
    assert "cascade 4,8" in result.stdout and "bit-exact on 60 frames" in result.stdout
    report = json.loads((out / "report.json").read_text())
    facts, v = report["cascade"], report["verify"]
    assert v["bit_exact"] and v["frames"] == 60 and v["stalled_mismatches"] == 0
    assert v["recompute"] == facts["recompute"]          # the same frames
    assert v["accuracy"]["hardware"] == facts["accuracy"]["cascade"]
    assert facts["accuracy"]["cascade"] >= facts["accuracy"]["second"] - 0.02
    assert v["predicted_at_measured_recompute"] == report["predicted"]["cycles_per_frame"]
    assert json.loads((out / "verify.json").read_text()) == v
    page = (out / "report.html").read_text()
    assert "Threshold" in page and "Split of the board" in page
    assert {p.name for p in (out / "design").iterdir()} == {
        "first", "second", "cascade.json", "design.json", "frames.npy"}


def _refused(capsys, *args):
    """`dnnhw.cli.main` in this process: exit status 2 and one line (its text)."""
    status = cli.main([str(a) for a in args])
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith("dnnhw: error: "), lines
    return lines[0]


def test_refusals(tiny, tmp_path, capsys):
    folder, *_ = tiny
    net, data = folder / "tiny.onnx", ["--data", folder / "x.npy"]
    assert_user_error(dnnhw("build", net, "--cascade", "4,8", "--board", "arty", "--no-synth"),
                      "--cascade needs --data")
    for args, fragment in [
            (["--cascade", "8,4", *data], "narrower"),
            (["--cascade", "4,8", "--bits", "6", *data], "--bits"),
            (["--cascade", "4,8", "--layer-bits", "auto", *data], "--layer-bits"),
            (["--cascade", "4,8", "--objective", "latency", *data], "--objective latency"),
            (["--cascade", "4,8", "--board", "pynq-z1", *data], "AXI4-Stream"),
            (["--tolerance", "0.1", *data], "--cascade")]:
        assert fragment in _refused(capsys, "build", net, *args)
    assert "--cascade" in _refused(capsys, "build", "--plan", folder / "x", "--cascade", "4,8")
    onnx.save(onnx_models.conv_bn_relu(), tmp_path / "features.onnx")
    assert "needs a classifier" in _refused(capsys, "build", tmp_path / "features.onnx",
                                            "--cascade", "4,8", "--out", tmp_path / "f", *data)
    assert not any(p.name.startswith(".") for p in (*folder.iterdir(), *tmp_path.iterdir()))


@pytest.mark.slow
def test_digits_cascade_beats_eight_bits_alone(tmp_path):
    """The acceptance figure: the 4,8 cascade of the digits network on arty keeps the 8-bit
    accuracy within the tolerance on the 300 held-out digits, is bit-exact, and runs faster in
    simulation than the DSE's best 8-bit design measured alike."""
    data = ["--calibration", DIGITS / "digits_calib.npy", "--data", DIGITS / "digits_x.npy",
            "--labels", DIGITS / "digits_y.npy"]
    for name, extra in (("cascade", ["--cascade", "4,8"]), ("single", [])):
        result = dnnhw("build", DIGITS / "digits.onnx", "--board", "arty", *data, *extra,
                       "--no-synth", "--verify", "--out", tmp_path / name)
        assert result.returncode == 0, result.stderr
    both = {name: json.loads((tmp_path / name / "report.json").read_text())
            for name in ("cascade", "single")}
    c, s = both["cascade"]["verify"], both["single"]["verify"]
    assert c["bit_exact"] and s["bit_exact"] and c["frames"] == 300
    assert c["accuracy"]["hardware"] >= s["accuracy"]["hardware"] - 0.01
    assert c["measured_cycles_per_frame"] < s["measured_cycles_per_frame"]
