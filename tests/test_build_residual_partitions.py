"""Partitions cut inside residual blocks, built and verified as a user would: the tensors live
at a cut travel packed (`dnnhw.partition`), each partition bit-exact in the chained simulation,
and (under ``-m slow``) weights reloading beside a skip that passes through."""

import json

import onnx
import pytest

from dnnhw import record
from support import onnx_models
from support.cli import dnnhw


def test_partitions_cut_inside_a_residual_block_chain_bit_exact(tmp_path):
    """On 2.5 % of the pynq-z1 the residual network is cut inside its block: the skip tensor
    and the side branch travel packed between the two partitions, the second slices them
    apart; the chained simulation is bit-exact and each partition's cycles are the model's.
    (On 2 % the skip also passes through a middle partition: `tests/zynq/test_run_batch.py`.)"""
    net = tmp_path / "residual.onnx"
    onnx.save(onnx_models.residual(), net)
    out = tmp_path / "build"
    result = dnnhw("build", net, "--board", "pynq-z1", "--cap", "0.025", "--no-synth", "--out", out)
    assert result.returncode == 0, result.stderr
    schedule = json.loads((out / "schedule.json").read_text())
    parts = schedule["partitions"]
    assert len(parts) >= 2
    packed = [p for p in parts[1:] if p["input_shape"][0] > 8]      # the skip and the branch
    assert packed, [p["input_shape"] for p in parts]
    for before, after in zip(parts, parts[1:]):
        assert before["output_shape"] == after["input_shape"]
    second = record.read_graph(out / "partition-2" / "design")
    assert second.layers[0].op == "slice"
    result = dnnhw("verify", out, "--frames", "4")
    assert result.returncode == 0, result.stderr
    verified = json.loads((out / "verify.json").read_text())
    assert verified["bit_exact"] and verified["chained"]
    for part in verified["partitions"]:
        assert part["bit_exact"]
        assert part["measured_cycles_per_frame"] == part["predicted_cycles_per_frame"]
        assert part["measured_latency_cycles"] == pytest.approx(part["predicted_latency_cycles"],
                                                               rel=0.05)



@pytest.mark.slow
def test_reloading_inside_a_residual_block_is_bit_exact(tmp_path):
    """A ResNet block of 32 channels at 16 bits on 3 % of the pynq-z1: both of its convs are
    partitions of their own, each reloading its filters in two chunks, with the skip tensor
    passing through beside them; every chunk writes the skip's 32 channels, then its own, and
    the chained simulation is bit-exact with the batch's cycles the model's within 1 %."""
    net = tmp_path / "resnet.onnx"
    onnx.save(onnx_models.resnet(blocks=(1,), widths=(32,), classes=10, in_shape=(3, 16, 16),
                                 name="resnet_w32"), net)
    out = tmp_path / "build"
    result = dnnhw("build", net, "--board", "pynq-z1", "--cap", "0.03", "--bits", "16",
                   "--no-synth", "--out", out)
    assert result.returncode == 0, result.stderr
    schedule = json.loads((out / "schedule.json").read_text())
    shared = [p for p in schedule["partitions"] if p.get("shared_channels")]
    assert len(shared) >= 1 and all(p["reload"] > 1 and p["shared_channels"] == 32 for p in shared)
    result = dnnhw("verify", out, "--frames", "4")
    assert result.returncode == 0, result.stderr
    verified = json.loads((out / "verify.json").read_text())
    assert verified["bit_exact"]
    for part in verified["partitions"]:
        if part.get("chunks", 1) > 1:
            assert part["measured_batch_cycles"] == pytest.approx(part["predicted_batch_cycles"],
                                                                 rel=0.01)
