"""The MLPerf Tiny reference architectures (tests/support/mlperf_tiny.py) as a user brings them:
exported by PyTorch's two exporters, planned for the Arty at 8 bits.

Default: every network and exporter loads and matches onnxruntime in float, and the DSE plans
it for `arty` (the MobileNet under -m slow): ResNet-8 and the DS-CNN on one accelerator, the DS-CNN's depthwise layers never
the bottleneck (several channels a beat where needed: coarse_group); the autoencoder and the
MobileNet, whose weights exceed the Arty's block RAM, in partitions, and on one accelerator on
the A7-100T.
Slow: `dnnhw build --verify` of each on `arty`, bit-exact under stalls, cycles per frame within
5 % of the model (benchmarks/mlperf_tiny.py records the figures).
"""

import json

import numpy as np
import onnx
import pytest

from dnnhw import dse, frontend, golden, quant
from dnnhw.boards import get_board
from dnnhw.build import builds_reloading
from support import mlperf_tiny
from support.cli import dnnhw

EXPORTERS = {"torchscript": False, "dynamo": True}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(ONNX path, calibration path) of every (network, exporter), exported once."""
    folder = tmp_path_factory.mktemp("mlperf_tiny")
    out = {}
    for net in mlperf_tiny.NETWORKS:
        calibration = folder / f"{net}_calib.npy"
        np.save(calibration, mlperf_tiny.frames(net))
        for exporter, dynamo in EXPORTERS.items():
            path = folder / f"{net}_{exporter}.onnx"
            onnx.save(mlperf_tiny.onnx_model(net, dynamo), path)
            out[net, exporter] = path, calibration
    return out


def _plan(path, calibration, board):
    q = quant.quantize(frontend.load(path), np.load(calibration), bits=8)
    board = get_board(board)
    return q, dse.design(q, board, reloading=builds_reloading(board))


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("net", mlperf_tiny.NETWORKS)
def test_loads_and_matches_onnxruntime(models, net, exporter):
    path, calibration = models[net, exporter]
    graph = frontend.load(path)
    frames = np.load(calibration)[:2]
    np.testing.assert_allclose(golden.run(graph, frames, fixed=False),
                               frontend.onnxruntime_outputs(path, graph, frames),
                               rtol=1e-4, atol=1e-4)


# Partitioned planning takes seconds: the autoencoder's and the MobileNet's of one exporter's
# graph, the MobileNet's (11 s) under -m slow.
@pytest.mark.parametrize("net, exporter", [
    pytest.param(net, exporter, marks=[pytest.mark.slow] if net == "vww" else [])
    for net in mlperf_tiny.NETWORKS for exporter in EXPORTERS
    if net in ("ic", "kws") or exporter == "dynamo"])
def test_plans_for_arty(models, net, exporter):
    q, found = _plan(*models[net, exporter], "arty")
    on_chip = not isinstance(found, dse.PartitionedExploration)
    assert on_chip == (net in ("ic", "kws"))
    if net == "kws":
        depthwise = [layer for layer in q.layers if layer.attrs.get("groups", 1) > 1]
        assert len(depthwise) == 4
        # the first runs at full rate one channel a beat; the later ones need whole groups
        assert any(found.plan[layer.name].coarse_group > 1 for layer in depthwise)
        assert found.perf.bottleneck not in [layer.name for layer in depthwise]


@pytest.mark.parametrize("net", ["ad", "vww"])
def test_too_large_for_arty_fits_the_a7_100(models, net):
    _, found = _plan(*models[net, "torchscript"], "arty-a7-100")
    assert not isinstance(found, dse.PartitionedExploration)


@pytest.mark.slow
@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("net", mlperf_tiny.NETWORKS)
def test_builds_bit_exact_on_arty(models, net, exporter, tmp_path):
    path, calibration = models[net, exporter]
    out = tmp_path / "build"
    dnnhw("build", path, "--board", "arty", "--calibration", calibration, "--out", out,
          "--no-synth", "--verify", "--frames", "3")
    verified = json.loads((out / "report.json").read_text())["verify"]
    assert verified["bit_exact"]
    for part in verified.get("partitions", [verified]):
        assert part["stalled_mismatches"] == 0
        predicted = part["predicted_cycles_per_frame"]
        assert abs(part["measured_cycles_per_frame"] / predicted - 1) <= 0.05
