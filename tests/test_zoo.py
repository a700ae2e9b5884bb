"""End-to-end acceptance on the network zoo (tests/support/zoo.py): each network built for arty with
`dnnhw build`, then simulated with `dnnhw verify`: bit-exact against the golden model, cycles per
frame within 5 % and batch-1 latency within 10 % of the model's prediction. The builds run with
`-m slow` (tests/test_build.py builds and verifies digits by default); loading and quantizing
every network is fast.
"""

import json

import numpy as np
import onnx
import pytest

from dnnhw import frontend, golden, quant
from support import zoo
from support.cli import dnnhw

#: Networks quick enough for the default suite (tens of seconds each, Verilator compile included).
QUICK = ()         # tests/test_build.py builds and verifies digits by default


def _save(name, folder):
    """The network's ONNX model and calibration frames saved in `folder`: (model path, frames
    path, frames)."""
    model, frames = zoo.NETWORKS[name]()
    path, calibration = folder / f"{name}.onnx", folder / f"{name}_calib.npy"
    onnx.save(model, path)
    np.save(calibration, frames)
    return path, calibration, frames


@pytest.mark.parametrize("name", zoo.NETWORKS)
def test_zoo_network_loads_and_quantizes(name, tmp_path):
    path, _, frames = _save(name, tmp_path)
    assert frames.dtype == np.float32 and frames.ndim >= 2 and len(frames) >= 8
    graph = frontend.load(path)
    assert tuple(graph.onnx_input_shape) == (1, *frames.shape[1:])
    # the frontend's float graph computes what onnxruntime computes
    sample = frames[:4]
    reference = frontend.onnxruntime_outputs(path, graph, sample)
    float_path = golden.run(graph, sample, fixed=False)
    assert np.allclose(float_path, reference, rtol=1e-4, atol=1e-4 * np.abs(reference).max())
    q = quant.quantize(graph, frames, bits=8)
    assert all(layer.output in q.formats for layer in q.layers)
    assert all(layer.wq is not None for layer in q.layers if layer.op in ("conv", "fc"))
    assert np.all(np.isfinite(golden.run(q, sample)))


@pytest.mark.parametrize("name", [name if name in QUICK else pytest.param(name, marks=pytest.mark.slow)
                                  for name in zoo.NETWORKS])
def test_zoo_network_builds_and_verifies(name, tmp_path):
    path, calibration, _ = _save(name, tmp_path)
    folder = tmp_path / f"{name}-arty"
    built = dnnhw("build", path, "--board", "arty", "--no-synth", "--calibration", calibration,
                  "--out", folder)
    assert built.returncode == 0, built.stderr
    report = json.loads((folder / "report.json").read_text())
    assert report["synth"] is None
    assert all(report["predicted"]["resources"][k] <= 0.8 * report["budget"][k]
               for k in ("lut", "ff", "dsp", "bram"))

    verified = dnnhw("verify", folder, "--frames", "4")
    out = json.loads((folder / "verify.json").read_text())
    assert verified.returncode == 0, (verified.stderr, out)
    assert out["bit_exact"] and out["frames"] == 4, out
    assert out["mismatches"] == 0 and out["stalled_mismatches"] == 0, out
    assert out["measured_cycles_per_frame"] == pytest.approx(out["predicted_cycles_per_frame"],
                                                             rel=0.05), out
    assert out["measured_latency_cycles"] == pytest.approx(out["predicted_latency_cycles"],
                                                           rel=0.10), out
