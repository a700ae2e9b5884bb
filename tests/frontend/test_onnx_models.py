"""Hand-built ONNX models over opsets 11..21: the frontend's float path matches onnxruntime and
the 16-bit golden model tracks it; what it cannot take, it refuses in one clear sentence."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from dnnhw import golden, quant
from dnnhw.errors import UserError
from dnnhw.frontend import load, onnxruntime_outputs
from support import onnx_models

OPSETS = (11, 13, 17, 18, 21)


def frames_for(model, count=4):
    return np.stack([onnx_models.sample_input(model, seed)[0] for seed in range(count)])


def save(model, tmp_path, name="net.onnx"):
    path = tmp_path / name
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", sorted(onnx_models.ALL))
def test_float_and_fixed_track_onnxruntime(tmp_path, name, opset):
    model = onnx_models.ALL[name](opset)
    path = save(model, tmp_path)
    graph = load(path)
    frames = frames_for(model)
    reference = onnxruntime_outputs(path, graph, frames)
    fixed16 = golden.run(quant.quantize(graph, frames, bits=16), frames)
    if graph.format_hints:          # a QDQ model: onnxruntime runs its own fake quantization
        assert golden.float_error(reference, fixed16)["rel_rms"] < 0.01
        return
    np.testing.assert_allclose(golden.run(graph, frames, fixed=False), reference, atol=1e-4, rtol=0)
    assert golden.float_error(reference, fixed16)["rel_rms"] <= 0.01


@pytest.mark.parametrize("name, ops", [
    ("conv_bn_relu", ["conv"]),                              # BatchNorm and ReLU fused
    ("standalone_batchnorm", ["conv"]),                      # per-channel affine → depthwise 1×1
    ("depthwise_separable", ["conv", "conv"]),
    ("reducemean_head", ["conv", "global_avgpool", "fc"]),
    ("shape_subgraph", ["conv", "fc"]),                      # Shape/Gather/Concat chain folded
    ("squeeze_unsqueeze", ["global_avgpool", "fc"]),         # layout ops vanish
    ("mlp", ["fc", "fc", "sigmoid"]),                        # MatMul + Add → fc with bias
])
def test_canonical_layers(tmp_path, name, ops):
    graph = load(save(onnx_models.ALL[name](), tmp_path))
    assert [layer.op for layer in graph.layers] == ops


def test_fused_activations(tmp_path):
    graph = load(save(onnx_models.depthwise_separable(), tmp_path))
    dw, pw = graph.layers
    assert dw.attrs["groups"] == dw.weight.shape[0] and dw.act == "relu"
    assert pw.act == "clamp" and (pw.attrs["lo"], pw.attrs["hi"]) == (0.0, 6.0)
    assert dw.attrs["stride"] == (2, 2) and dw.attrs["pads"] == (0, 0, 1, 1)


def test_nonsquare_kernel_attrs(tmp_path):
    conv, = load(save(onnx_models.nonsquare_kernel(), tmp_path)).layers
    assert conv.attrs["kernel"] == (4, 10) and conv.attrs["stride"] == (1, 2)
    assert conv.attrs["pads"] == (1, 4, 2, 5) and conv.act == "leaky_relu"


def test_symbolic_batch_fixed_to_one(tmp_path):
    graph = load(save(onnx_models.symbolic_batch(), tmp_path))
    assert graph.onnx_input_shape[0] == 1 and graph.onnx_output_shape[0] == 1


def test_external_data(tmp_path):
    path = onnx_models.save_with_external_data(onnx_models.conv_bn_relu(), tmp_path / "ext.onnx")
    assert (tmp_path / "ext.onnx.data").exists()
    graph = load(path)
    frames = frames_for(onnx_models.conv_bn_relu())
    np.testing.assert_allclose(golden.run(graph, frames, fixed=False),
                               onnxruntime_outputs(path, graph, frames), atol=1e-4, rtol=0)


def test_external_data_missing(tmp_path):
    path = onnx_models.save_with_external_data(onnx_models.conv_bn_relu(), tmp_path / "ext.onnx")
    (tmp_path / "ext.onnx.data").unlink()
    with pytest.raises(UserError, match="ext.onnx"):
        load(path)


def test_qdq_formats_come_from_the_model(tmp_path):
    graph = load(save(onnx_models.qdq_conv(), tmp_path))
    q = quant.quantize(graph, frames_for(onnx_models.qdq_conv()), bits=16)
    conv, = q.layers
    assert str(q.formats[graph.input]) == "Q8.5" and str(q.formats[conv.output]) == "Q8.4"
    assert conv.wq.bits == 8 and conv.wq.per_channel


@pytest.mark.parametrize("name, fragments", [
    ("dynamic_spatial", ["dynamic shape", "'H'"]),
    ("unsupported_op", ["unsupported op 'LpNormalization'", "'weird_node'"]),
    ("qdq_conv_weight_zero_point", ["DequantizeLinear", "gives weights a non-zero zero point"]),
])
def test_rejected(tmp_path, name, fragments):
    with pytest.raises(UserError) as error:
        load(save(onnx_models.REJECTED[name](), tmp_path))
    for fragment in fragments:
        assert fragment in str(error.value)


def _tiny(nodes, inputs, outputs, opset=17, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def test_old_opset_rejected(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    model = _tiny([helper.make_node("Relu", ["x"], ["y"])], [x], [y], opset=9)
    with pytest.raises(UserError, match="opset 9"):
        load(save(model, tmp_path))


def test_batch_above_one_rejected(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])
    model = _tiny([helper.make_node("Relu", ["x"], ["y"])], [x], [y])
    with pytest.raises(UserError, match="batch size 4"):
        load(save(model, tmp_path))


def test_reshape_that_reorders_is_rejected(tmp_path):
    """(1, 2, 3, 4) → (1, 3, 2, 4) keeps ONNX's element order but not the stream's."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 2, 4])
    shape = helper.make_tensor("shape", TensorProto.INT64, [4], [1, 3, 2, 4])
    w = helper.make_tensor("w", TensorProto.FLOAT, [3, 3, 1, 1], np.eye(3).reshape(-1).tolist())
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"], name="reshape"),
             helper.make_node("Conv", ["r", "w"], ["y"], name="conv")]
    with pytest.raises(UserError, match="reshaped"):
        load(save(_tiny(nodes, [x], [y], initializers=[shape, w]), tmp_path))


def _gemm_softmax(softmax_last=True):
    rng = np.random.default_rng(3)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 6], rng.standard_normal(24).tolist())
    nodes = [helper.make_node("Gemm", ["x", "w"], ["logits"], name="fc", transB=1),
             helper.make_node("Softmax", ["logits"], ["p" if softmax_last else "s"], name="softmax", axis=1)]
    if not softmax_last:
        nodes.append(helper.make_node("Relu", ["s"], ["p"], name="relu"))
    nodes.append(helper.make_node("Identity", ["p"], ["y"], name="out"))
    return _tiny(nodes, [x], [y], initializers=[w])


def test_final_softmax_left_to_host(tmp_path):
    path = save(_gemm_softmax(), tmp_path)
    graph = load(path)
    assert [layer.op for layer in graph.layers] == ["fc"] and graph.reference_output == "logits"
    assert "Softmax 'softmax'" in graph.notes[0]
    frames = np.random.default_rng(0).standard_normal((3, 6))
    logits = onnxruntime_outputs(path, graph, frames)
    assert not np.allclose(logits.sum(axis=1), 1)           # logits, not probabilities
    np.testing.assert_allclose(golden.run(graph, frames, fixed=False), logits, atol=1e-5)


def test_softmax_inside_rejected(tmp_path):
    with pytest.raises(UserError, match="Softmax 'softmax'.*last op"):
        load(save(_gemm_softmax(softmax_last=False), tmp_path))
