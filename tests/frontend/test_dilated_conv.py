"""Dilated convolutions (2-D and 1-D, PyTorch's `dilation`): imported as the kernel spanning the
dilation with zeros between its taps, matching onnxruntime, and bit-exact in Verilator."""

import numpy as np
import pytest

from dnnhw import frontend, quant
from support import torch_models
from support.accel import run_accelerator

torch = pytest.importorskip("torch")
nn = torch.nn


class Dilated(nn.Module):
    input_shape = (1, 3, 11, 11)

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(3, 4, 3, dilation=2, padding=2), nn.ReLU(),
                                    nn.Conv2d(4, 4, (3, 2), dilation=(1, 3), stride=2))

    def forward(self, x):
        return self.layers(x)


class Dilated1d(nn.Module):
    input_shape = (1, 2, 20)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 3, 3, dilation=4, padding="same")

    def forward(self, x):
        return self.conv(x)


def _load(cls, tmp_path, dynamo):
    path = torch_models.export_fresh(cls, tmp_path / "m.onnx", dynamo)
    return path, frontend.load(path)


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("cls", [Dilated, Dilated1d])
def test_matches_onnxruntime(tmp_path, cls, dynamo):
    path, graph = _load(cls, tmp_path, dynamo)
    first = graph.layers[0]
    assert first.weight.shape[2:] == ((5, 5) if cls is Dilated else (1, 9))
    frames = np.random.default_rng(0).standard_normal((3, *cls.input_shape[1:]))
    torch_models.assert_matches_onnxruntime(path, graph, frames)


@pytest.mark.slow          # the conv block's own tests cover its kernels; this, the weights' zeros
def test_bit_exact_in_verilator(tmp_path):
    _, graph = _load(Dilated, tmp_path, False)
    frames = np.random.default_rng(1).standard_normal((8, *Dilated.input_shape[1:]))
    run_accelerator(quant.quantize(graph, frames, bits=8), {}, frames[:2], "dilated", stall=0.3)
