"""Whole networks composed by `Accelerator`, bit-exact against golden in cocotb + Verilator."""

import pathlib

import numpy as np
import onnx
import pytest

from dnnhw import model, quant
from dnnhw.frontend import load
from dnnhw.model import Folding
from support import onnx_models
from support.accel import run_accelerator

DIGITS = pathlib.Path(__file__).parents[1] / "examples" / "digits"


@pytest.mark.slow          # `dnnhw build` + `verify` of digits in tests/test_build.py run by default
def test_digits_network():
    graph = load(DIGITS / "digits.onnx")
    q = quant.quantize(graph, np.load(DIGITS / "digits_calib.npy"), bits=8)
    plan = {q.layers[0].name: Folding(1, 8, 9), q.layers[1].name: Folding(2, 8, 9),
            q.layers[2].name: Folding(8, 8), q.layers[3].name: Folding(4, 4, 9),
            q.layers[4].name: Folding(4, 4), q.layers[5].name: Folding(4, 5)}
    frames = np.load(DIGITS / "digits_x.npy")[:3]
    run_accelerator(q, plan, frames, "digits", stall=0.2)


def test_residual_network(tmp_path):
    model = onnx_models.residual()
    onnx.save(model, tmp_path / "residual.onnx")
    graph = load(tmp_path / "residual.onnx")
    frames = np.stack([onnx_models.sample_input(model, s)[0] for s in range(3)])
    q = quant.quantize(graph, frames, bits=8)
    run_accelerator(q, {}, frames, "residual", stall=0.2)


@pytest.mark.slow
def test_digits_rate_and_latency_against_model():
    """Unstalled, back-to-back frames: measured cycles per frame within 5% of the model, batch-1
    latency (first input beat to the first frame's last output beat) within 10%."""
    graph = load(DIGITS / "digits.onnx")
    q = quant.quantize(graph, np.load(DIGITS / "digits_calib.npy"), bits=8)
    plan = {q.layers[0].name: Folding(1, 8, 9), q.layers[1].name: Folding(2, 8, 9),
            q.layers[2].name: Folding(8, 8), q.layers[3].name: Folding(4, 4, 9),
            q.layers[4].name: Folding(4, 4), q.layers[5].name: Folding(4, 5)}
    accel, result, per_frame = run_accelerator(q, plan, np.load(DIGITS / "digits_x.npy")[:4], "digits", stall=0.0)
    ends = result.out_cycles["o"][per_frame - 1::per_frame]
    measured = ends[3] - ends[2]
    latency = result.out_cycles["o"][per_frame - 1] - result.in_cycles["i"][0]
    print(f"digits: cycles/frame measured {measured}, model {accel.perf.cycles_per_frame}; "
          f"latency measured {latency}, model {accel.perf.latency}")
    assert abs(measured - accel.perf.cycles_per_frame) <= 0.05 * accel.perf.cycles_per_frame
    assert abs(latency - accel.perf.latency) <= 0.1 * latency


def _burst_then_pace(tmp_path):
    """A stride-2 conv delivering its rows in bursts, a 3×3/2 max pool emitting every other row,
    and a 1×1 conv that takes nearly the network's cycles per frame at its own pace (SqueezeNet's
    stem before a Fire module), quantized, with the plan zc706's DSE chose for it."""
    b = onnx_models._Builder(17, seed=21)
    t = b.op("Relu", [b.conv("x", 3, 16, strides=[2, 2])])
    t = b.op("MaxPool", [t], kernel_shape=[3, 3], strides=[2, 2])
    b.op("Relu", [b.conv(t, 16, 10, kernel=(1, 1))], out="y")
    model = b.model("burst_then_pace", [1, 3, 32, 32], [1, 10, 7, 7])
    onnx.save(model, tmp_path / "net.onnx")
    frames = np.stack([onnx_models.sample_input(model, s)[0] for s in range(4)])
    q = quant.quantize(load(tmp_path / "net.onnx"), frames, bits=8)
    conv, pool, head = (layer.name for layer in q.layers)
    plan = {conv: Folding(3, 4, 9), pool: Folding(4, 4), head: Folding(4, 2)}
    return q, plan, frames


def test_paced_layer_gets_a_queue(tmp_path):
    """The 1×1 conv (980 of 1024 cycles a frame, 20 a pixel) cannot keep up with the pool's
    7-pixel bursts (one every 128 cycles): the edge between them queues what waits."""
    q, plan, _ = _burst_then_pace(tmp_path)
    perf = model.network(q, plan)
    assert perf.cycles_per_frame == 1024
    head = q.layers[2]
    edge = next(e for e in perf.edges if e.reader == head.name)
    assert edge.fifo_depth >= 2 * 4            # two or more pixels of four beats wait


def test_paced_layer_keeps_the_rate(tmp_path):
    """With the queue, the network runs at the model's cycles per frame in Verilator (without
    it, 26 % slower: the pool, then the stride-2 conv, then the input stall)."""
    q, plan, frames = _burst_then_pace(tmp_path)
    accel, result, per_frame = run_accelerator(q, plan, frames, "burst_then_pace", stall=0.0)
    ends = result.out_cycles["o"][per_frame - 1::per_frame]
    assert accel.perf.cycles_per_frame == 1024
    assert ends[3] - ends[2] == ends[2] - ends[1] == 1024
