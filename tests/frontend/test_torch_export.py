"""Real networks exported by PyTorch's two ONNX exporters: the float path matches onnxruntime
to 1e-4 and the 16-bit golden model stays within 1% relative RMS error of it."""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dnnhw import golden, quant
from dnnhw.frontend import load, onnxruntime_outputs
from support import torch_models

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                                        "ignore::UserWarning")


def frames_for(input_shape, count=4, seed=0):
    return np.random.default_rng(seed).standard_normal((count, *input_shape[1:])).astype(np.float32)


def torch_outputs(module, frames):
    with torch.no_grad():
        return np.concatenate([module(torch.from_numpy(f[None])).numpy() for f in frames])


def check(path, module, input_shape):
    graph = load(path)
    frames = frames_for(input_shape)
    reference = onnxruntime_outputs(path, graph, frames)
    np.testing.assert_allclose(reference, torch_outputs(module, frames), atol=1e-4, rtol=0)
    np.testing.assert_allclose(golden.run(graph, frames, fixed=False), reference, atol=1e-4, rtol=0)
    calibration = frames_for(input_shape, count=16, seed=1)
    error = golden.float_error(reference, golden.run(quant.quantize(graph, calibration, bits=16), frames))
    assert error["rel_rms"] <= 0.01, error
    return graph


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("name", sorted(torch_models.NETS))
def test_exported_network(tmp_path, name, dynamo):
    factory, input_shape = torch_models.NETS[name]
    module = factory()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = torch_models.export(module, input_shape, tmp_path / f"{name}.onnx", dynamo=dynamo)
    check(path, module, input_shape)


@pytest.mark.parametrize("opset", [11, 13])
def test_older_opsets(tmp_path, opset):
    factory, input_shape = torch_models.NETS["kws"]
    module = factory()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = torch_models.export(module, input_shape, tmp_path / "kws.onnx", dynamo=False, opset=opset)
    check(path, module, input_shape)


def test_external_data(tmp_path):
    factory, input_shape = torch_models.NETS["residual"]
    module = factory()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = torch_models.export_external(module, input_shape, tmp_path / "residual.onnx")
    assert (tmp_path / "residual.onnx.data").exists()
    check(path, module, input_shape)


def test_kws_first_layer(tmp_path):
    """The keyword-spotting stem: a 4×10 kernel with stride 1×2 over 40×32 MFCCs."""
    factory, input_shape = torch_models.NETS["kws"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = torch_models.export(factory(), input_shape, tmp_path / "kws.onnx", dynamo=True)
    stem = load(path).layers[0]
    assert stem.op == "conv" and stem.attrs["kernel"] == (4, 10) and stem.attrs["stride"] == (1, 2)
    assert stem.act == "relu"
