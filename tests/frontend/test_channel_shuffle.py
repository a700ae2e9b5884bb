"""Channel shuffle (Reshape, Transpose, Reshape) and Split/Slice over channels: the shuffle is
absorbed into the layers after it (`frontend.canonical`), the network computes what onnxruntime
does, and a ShuffleNetV2 built of its units is bit-exact in Verilator under stalls."""

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dnnhw import dse, frontend, golden, quant
from dnnhw.boards import get_board
from dnnhw.errors import UserError
from support import torch_models
from support.accel import run_accelerator

torch = pytest.importorskip("torch")


def _model(nodes, inputs, output_shape, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)],
                              initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def _shuffle_nodes(x, y, c, h, w, groups):
    shapes = [numpy_helper.from_array(np.array(s, np.int64), f"{y}_shape{k}")
              for k, s in enumerate([(1, groups, c // groups, h, w), (1, c, h, w)])]
    nodes = [helper.make_node("Reshape", [x, f"{y}_shape0"], [f"{y}_split"]),
             helper.make_node("Transpose", [f"{y}_split"], [f"{y}_swapped"], perm=[0, 2, 1, 3, 4]),
             helper.make_node("Reshape", [f"{y}_swapped", f"{y}_shape1"], [y])]
    return nodes, shapes


def _conv(name, x, y, c_in, c_out, seed):
    weight = np.random.default_rng(seed).normal(0, 0.5, (c_out, c_in, 1, 1)).astype(np.float32)
    return (helper.make_node("Conv", [x, f"{name}_w"], [y], name=name),
            numpy_helper.from_array(weight, f"{name}_w"))


@pytest.fixture(scope="module")
def shufflenet(tmp_path_factory):
    factory, input_shape = torch_models.NETS["shuffle"]
    folder = tmp_path_factory.mktemp("shuffle")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {dynamo: torch_models.export(factory(), input_shape, folder / f"{dynamo}.onnx",
                                            dynamo=dynamo) for dynamo in (False, True)}


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_shuffles_absorbed(shufflenet, dynamo):
    """No shuffle is left: the slices of shuffled tensors take runs of channels, the convs
    their inputs in the order they come."""
    graph = frontend.load(shufflenet[dynamo])
    assert {layer.op for layer in graph.layers} == {"conv", "slice", "concat", "global_avgpool",
                                                    "fc"}


def test_split_and_shuffle_match_onnxruntime(tmp_path):
    """A 1×1 conv, a shuffle of its 6 channels in 3 groups, ReLU, an unequal Split (2, 4), the
    parts concatenated the other way round and a shuffle in 2 groups, into a conv."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 5])
    conv_a, w_a = _conv("a", "x", "a", 3, 6, 1)
    shuffle_1, shapes_1 = _shuffle_nodes("a", "s1", 6, 4, 5, 3)
    shuffle_2, shapes_2 = _shuffle_nodes("joined", "s2", 6, 4, 5, 2)
    conv_b, w_b = _conv("b", "s2", "y", 6, 4, 2)
    sizes = numpy_helper.from_array(np.array([2, 4], np.int64), "sizes")
    nodes = [conv_a, *shuffle_1, helper.make_node("Relu", ["s1"], ["r"]),
             helper.make_node("Split", ["r", "sizes"], ["p", "q"], axis=1),
             helper.make_node("Concat", ["q", "p"], ["joined"], axis=1), *shuffle_2, conv_b]
    path = tmp_path / "m.onnx"
    onnx.save(_model(nodes, [x], [1, 4, 4, 5], [w_a, w_b, sizes, *shapes_1, *shapes_2]), path)
    graph = frontend.load(path)
    assert "permute" not in [layer.op for layer in graph.layers]
    frames = np.random.default_rng(0).normal(0, 1, (3, 3, 4, 5))
    np.testing.assert_allclose(golden.run(graph, frames, fixed=False),
                               frontend.onnxruntime_outputs(path, graph, frames), atol=1e-5)


def test_slice_of_channels(tmp_path):
    """A Slice of consecutive channels is a slice layer."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 3, 3])
    bounds = [numpy_helper.from_array(np.array([v], np.int64), n)
              for n, v in (("starts", 1), ("ends", 4), ("axes", 1))]
    path = tmp_path / "m.onnx"
    onnx.save(_model([helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"])], [x],
                     [1, 3, 3, 3], bounds), path)
    graph = frontend.load(path)
    assert [(layer.op, layer.attrs) for layer in graph.layers] == [("slice", {"start": 1, "stop": 4})]
    frames = np.random.default_rng(0).normal(0, 1, (2, 6, 3, 3))
    np.testing.assert_array_equal(golden.run(graph, frames, fixed=False), frames[:, 1:4])


def test_shuffle_into_the_output_refused(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3, 3])
    nodes, shapes = _shuffle_nodes("x", "y", 4, 3, 3, 2)
    nodes[1].name = "shuffle"
    path = tmp_path / "m.onnx"
    onnx.save(_model(nodes, [x], [1, 4, 3, 3], shapes), path)
    with pytest.raises(UserError, match=r"^channel shuffle 'shuffle' reorders the network's output: "
                                        r"unsupported \(a shuffle must reach a Conv or Gemm"):
        frontend.load(path)


@pytest.mark.parametrize("board", ["", pytest.param("arty", marks=pytest.mark.slow)],
                         ids=["one_lane", "arty"])
def test_shufflenet_bit_exact_in_verilator(shufflenet, board):
    """ShuffleNetV2's units at 8 bits in Verilator under stalls: a channel a beat everywhere,
    and (slow: a larger design) planned for the Arty, the slices and joins several wide."""
    graph = frontend.load(shufflenet[False])
    frames = np.random.default_rng(1).standard_normal((8, 3, 12, 12))
    q = quant.quantize(graph, frames, bits=8)
    plan = dse.design(q, get_board(board)).plan if board else {}
    run_accelerator(q, plan, frames[:2], f"shufflenet_{board or 'one_lane'}", stall=0.3)
