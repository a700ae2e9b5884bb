"""--layer-bits auto (`dnnhw.precision`): the search on the digits network with a planner whose
speed follows the widths (fast), the options' errors, and the real DSE through the command line
(slow)."""

import json

import numpy as np
import pytest

from dnnhw import frontend, golden, precision, quant
from dnnhw.boards import get_board
from support.cli import DIGITS, assert_user_error, dnnhw


class _WidthPlanner:
    """Cycles per frame that fall with the weighted layers' bits (a layer's cost ~ MACs × bits
    × bits), and a shortfall that is their excess over a budget: what the DSE would say,
    without the DSE."""

    clock_mhz = 100.0

    def _load(self, q):
        return sum(layer.wq.bits ** 2 * max(q.out_shape(layer)) for layer in q.layers
                   if layer.wq is not None)

    def cycles(self, q):
        return 1 << max(int(np.ceil(np.log2(self._load(q) / 64))), 0)

    def shortfall(self, q, cycles):
        return max(self._load(q) / 64 / (cycles / 2) - 1, 0.0)


@pytest.fixture(scope="module")
def digits():
    graph = frontend.load(DIGITS / "digits.onnx")
    calibration = quant.load_frames(graph, DIGITS / "digits_calib.npy")
    frames = quant.load_frames(graph, DIGITS / "digits_x.npy")[:100]
    return graph, calibration, frames, np.load(DIGITS / "digits_y.npy")[:100]


def test_choice_is_within_tolerance_and_no_slower_than_uniform(digits, monkeypatch):
    graph, calibration, frames, labels = digits
    monkeypatch.setattr(precision, "_Planner", lambda *args: _WidthPlanner())
    tolerance = 0.02
    choice = precision.choose(graph, calibration, frames, labels, 8, tolerance, get_board("arty"))
    assert choice.reference_bits == 8 and choice.metric == "accuracy"
    assert choice.score >= choice.reference - tolerance
    assert all(choice.fps >= u["fps"] for u in choice.uniform if u["fps"] is not None)
    assert all(step["score"] >= choice.reference - tolerance for step in choice.steps)
    # the choice is what it says: quantized so, it scores what the search measured
    q = quant.quantize(graph, calibration, bits=choice.bits, layer_bits=choice.layer_bits)
    assert precision.top1_score(golden.run(q, frames), labels) == choice.score
    assert all(quant.MIN_BITS <= b < choice.bits for b in choice.layer_bits.values())


def test_agreement_without_labels(digits, monkeypatch):
    graph, calibration, frames, _ = digits
    monkeypatch.setattr(precision, "_Planner", lambda *args: _WidthPlanner())
    choice = precision.choose(graph, calibration, frames[:40], None, 6, 0.05, get_board("arty"))
    assert choice.metric == "agreement" and choice.score >= choice.reference - 0.05


@pytest.mark.parametrize("args, fragment", [
    (["--layer-bits", "auto"], "needs --data"),
    (["--layer-bits", "auto", "--layer-bits", "/0/Conv=4"], "give no LAYER=BITS"),
    (["--tolerance", "0.02"], "--layer-bits auto or --cascade may lose"),
    (["--layer-bits", "auto", "--tolerance", "-1", "--data", DIGITS / "digits_x.npy"],
     "at least 0"),
])
def test_bad_options(args, fragment):
    assert_user_error(dnnhw("explore", DIGITS / "digits.onnx", *args), fragment)


def test_inspect_refuses_auto():
    assert_user_error(dnnhw("inspect", DIGITS / "digits.onnx", "--layer-bits", "auto"),
                      "build and explore")


@pytest.mark.slow
def test_explore_auto_beats_uniform_bits():
    """On the arty, the digits network at mixed widths is faster than at 8 bits throughout
    and than at any uniform width within the tolerance, at no less than their accuracy."""
    result = dnnhw("explore", DIGITS / "digits.onnx", "--calibration", DIGITS / "digits_calib.npy",
                   "--layer-bits", "auto", "--data", DIGITS / "digits_x.npy",
                   "--labels", DIGITS / "digits_y.npy", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    chosen = out["precision"]
    assert chosen["layer_bits"] and out["predicted"]["fps"] == chosen["fps"]
    uniform = [u for u in chosen["uniform"] if u["fps"] is not None]
    assert all(chosen["fps"] > u["fps"] for u in uniform)
    assert chosen["score"] >= chosen["reference"]
