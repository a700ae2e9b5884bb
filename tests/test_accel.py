"""Whole networks composed by `Accelerator`, bit-exact against golden in cocotb + Verilator."""

import pathlib

import numpy as np
import onnx
import pytest

from dnnhw import quant
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
