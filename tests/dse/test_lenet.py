"""fpgaConvNet's LeNet reference: at 16-bit words on the xc7a35t budget (90 DSP, 100 BRAM18,
100 MHz, all of it, as fpgaConvNet budgets) its model and greedy optimizer predict 4608 cycles
per frame; dnnhw's plan must need ≤ 3840 (1.2× better), simulation must confirm it, and Yosys
must find that it fits. The LUT model under-predicts whole designs full of 16-bit logic
multipliers by about 20 % (docs/dse.md): the first plan for the whole budget is too large, and
the build plans again with the shortfall held back."""

import json

import numpy as np
import onnx
import pytest

from support import zoo
from support.cli import dnnhw


@pytest.mark.slow
def test_lenet_beats_fpgaconvnet_in_simulation(tmp_path):
    model, frames = zoo.lenet()
    onnx.save(model, tmp_path / "lenet.onnx")
    np.save(tmp_path / "calib.npy", frames)
    out = tmp_path / "lenet-arty"
    result = dnnhw("build", tmp_path / "lenet.onnx", "--board", "arty", "--bits", "16", "--cap", "1",
                   "--calibration", tmp_path / "calib.npy", "--verify", "--frames", "4", "--out", out)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["predicted"]["cycles_per_frame"] <= 3840
    assert report["predicted"]["resources"]["dsp"] <= 90 and report["predicted"]["resources"]["bram"] <= 100
    assert report["synth"]["lut"] <= 20800 and report["synth"]["dsp"] <= 90     # it really fits
    verified = json.loads((out / "verify.json").read_text())
    assert verified["bit_exact"]
    assert verified["measured_cycles_per_frame"] <= 3840
