"""LSTM networks exported from PyTorch, ONNX → golden → hardware: bit-exact in cocotb + Verilator,
rate exactly and batch-1 latency within 10 % of the model; and `dnnhw build --verify` on one."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from dnnhw import golden, model, quant
from dnnhw.frontend import load, onnxruntime_outputs
from dnnhw.model import Folding
from support.accel import run_accelerator
from support.cli import dnnhw

STEPS, FEATURES = 24, 12


class LastStep(nn.Module):
    """nn.LSTM (batch first) → nn.Linear on the last time step's output."""

    def __init__(self, hidden=24, layers=1):
        super().__init__()
        self.lstm = nn.LSTM(FEATURES, hidden, num_layers=layers, batch_first=True)
        self.fc = nn.Linear(hidden, 5)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.fc(y[:, -1])


def export(module, path, dynamo):
    torch.manual_seed(0)
    for p in module.parameters():
        nn.init.uniform_(p, -0.4, 0.4)
    torch.onnx.export(module.eval(), (torch.randn(1, STEPS, FEATURES),), str(path), dynamo=dynamo,
                      **({} if dynamo else {"opset_version": 17}))
    return path


def frames(count, seed=0):
    return np.random.default_rng(seed).standard_normal((count, STEPS, FEATURES)).astype(np.float32)


def run_network(graph, plan, xs, name):
    """Bit-exact unstalled and under stalls (`support.accel.run_accelerator`); the unstalled run's (cycles per
    frame, batch-1 latency)."""
    run_accelerator(graph, plan, xs, name, stall=0.3)
    _, result, per_frame = run_accelerator(graph, plan, xs, name, stall=0.0)
    ends = np.array(result.out_cycles["o"])[per_frame - 1::per_frame]
    return int(np.diff(ends)[-1]), ends[0] - result.in_cycles["i"][0]


@pytest.mark.parametrize("bits", [pytest.param(16, marks=pytest.mark.slow), 8])
def test_torch_lstm_linear_round_trip(tmp_path, bits):
    """nn.LSTM + nn.Linear from the dynamo exporter: 16-bit golden within 2 % of onnxruntime,
    and the hardware equal to golden, frame after frame."""
    path = export(LastStep(), tmp_path / "lstm.onnx", dynamo=True)
    graph = load(path)
    assert [layer.op for layer in graph.layers] == ["lstm", "fc"]
    q = quant.quantize(graph, frames(16, seed=1), bits=bits)
    xs = frames(3)
    error = golden.float_error(onnxruntime_outputs(path, graph, xs), golden.run(q, xs))
    assert error["rel_rms"] <= (0.02 if bits == 16 else 0.1)
    plan = {q.layers[0].name: Folding(4, 6), q.layers[1].name: Folding(1, 5)}
    cycles, latency = run_network(q, plan, xs, f"lstm_linear_{bits}")
    perf = model.network(q, plan)
    assert cycles == perf.cycles_per_frame
    assert latency == pytest.approx(perf.latency, rel=0.10)


@pytest.mark.slow
def test_torch_stacked_lstm(tmp_path):
    """Two stacked LSTMs (TorchScript exporter): the first streams every step into the second."""
    path = export(LastStep(hidden=16, layers=2), tmp_path / "stacked.onnx", dynamo=False)
    graph = load(path)
    assert [(layer.op, layer.attrs.get("last")) for layer in graph.layers] == [
        ("lstm", False), ("lstm", True), ("fc", None)]
    q = quant.quantize(graph, frames(16, seed=1), bits=8)
    plan = {q.layers[0].name: Folding(4, 4), q.layers[1].name: Folding(2, 2)}
    cycles, latency = run_network(q, plan, frames(2), "lstm_stacked")
    perf = model.network(q, plan)
    assert cycles == perf.cycles_per_frame
    assert latency == pytest.approx(perf.latency, rel=0.10)


@pytest.mark.slow
def test_build_and_verify_lstm(tmp_path):
    """The CLI path of the CNNs: DSE, Verilog, Yosys, report; verify bit-exact."""
    path = export(LastStep(), tmp_path / "lstm.onnx", dynamo=False)
    folder = tmp_path / "lstm-arty"
    result = dnnhw("build", path, "--out", folder, "--verify", "--frames", "4")
    assert result.returncode == 0, result.stderr
    report = json.loads((folder / "report.json").read_text())
    assert [layer["op"] for layer in report["layers"]] == ["lstm", "fc"]
    assert report["verify"]["bit_exact"]
    assert report["verify"]["measured_cycles_per_frame"] == report["predicted"]["cycles_per_frame"]
    assert report["synth"]["dsp"] == report["predicted"]["resources"]["dsp"]
