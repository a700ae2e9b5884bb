"""The ONNX backend node tests shipped in the `onnx` package, for every op the frontend claims.
Each model (its inputs after the first made constants, as trained weights are) either loads
and the golden model computes the test's output, in float within the test's tolerances and at
16 bits within 1/256 of the output's largest value, or the frontend refuses it in one clear
line (`UserError`). None loads and computes something else, and none ends in a traceback. The
default run takes the pooling, convolution and Gemm tests; the other ops' run under
``-m slow``."""

import functools
import warnings

import numpy as np
import onnx
import pytest

from dnnhw import golden, ops, quant
from dnnhw.errors import UserError
from dnnhw.frontend import load
from dnnhw.frontend.mapping import _LAYOUT_OPS


#: The ONNX ops `frontend.mapping` maps (its handlers, the layout ops, the registry's unary ops).
CLAIMED = {"Conv", "ConvTranspose", "Resize", "Upsample", "Gemm", "MatMul", "BatchNormalization",
           "Add", "Sub", "Mul", "Div", "Clip", "HardSwish", "MaxPool", "AveragePool",
           "GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceMax", "Concat", "Pad", "Transpose", "Gather", "Slice", "Split", "LSTM", "Softmax",
           "LogSoftmax", *_LAYOUT_OPS, *ops.unary()}

#: The default run's share: the ops whose arithmetic the streaming blocks implement directly.
DEFAULT = ("AveragePool", "MaxPool", "GlobalAveragePool", "Conv", "Gemm")


@functools.lru_cache(maxsize=None)
def node_tests():
    """Name → test case of every node test whose ops are all claimed (importing the cases
    takes seconds, so only a test that needs them does)."""
    from onnx.backend.test.case import node
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = node.collect_testcases(None)
    return {c.name: c for c in cases if c.kind == "node"
            and {n.op_type for n in c.model.graph.node} <= CLAIMED}


def _as_deployed(model, inputs):
    """(`model` as a network dnnhw takes, its input): every graph input after the first made
    an initializer holding the test's value (a conv's weights, an add's second operand), and a
    batch of N > 1 frames cut to its first frame (and the outputs' batch with it). With a
    cut batch the test's expected output no longer applies: the reference is then ONNX's own
    runtime on the cut model (`_reference`)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    for info, value in list(zip(graph.input, inputs))[1:]:
        graph.initializer.append(onnx.numpy_helper.from_array(np.asarray(value), info.name))
    keep = graph.input[:1]
    del graph.input[:]
    graph.input.extend(keep)
    x = inputs[0]
    dims = graph.input[0].type.tensor_type.shape.dim
    if isinstance(x, np.ndarray) and x.ndim > 1 and x.shape[0] > 1 and len(dims) == x.ndim:
        dims[0].dim_value = 1
        for out in graph.output:
            out_dims = out.type.tensor_type.shape.dim
            if out_dims and out_dims[0].dim_value == x.shape[0]:
                out_dims[0].dim_value = 1
        del graph.value_info[:]
        x = x[:1]
    return model, x


def _reference(model, x):
    from onnx.reference import ReferenceEvaluator
    return ReferenceEvaluator(model).run(None, {model.graph.input[0].name: x})[0]


def outcome(case, folder):
    """("refused", message), ("pass", None) or ("wrong", details) for one node test."""
    path = folder / f"{case.name}.onnx"
    inputs, outputs = case.data_sets[0]
    model, x = _as_deployed(case.model, inputs)
    onnx.save(model, path)
    try:
        graph = load(path)
    except UserError as error:
        message = str(error)
        assert "\n" not in message and "Traceback" not in message, message
        return "refused", message
    if len(outputs) != 1:
        return "wrong", f"loaded a graph of {len(outputs)} outputs"
    want = (np.asarray(outputs[0]) if x is inputs[0] else np.asarray(_reference(model, x)))
    frames = x.reshape(x.shape[0], *graph.onnx_input_shape[1:]) if x.ndim else x
    got = golden.run(graph, frames, fixed=False).reshape(want.shape)
    rtol, atol = max(case.rtol, 1e-5), max(case.atol, 1e-6)
    if not np.allclose(got, want, rtol=rtol, atol=atol):
        worst = float(np.max(np.abs(got - want)))
        return "wrong", f"golden differs from the test's output by up to {worst:g}"
    q = quant.quantize(graph, frames, bits=16)
    fixed = golden.run(q, frames).reshape(want.shape)
    worst, scale = float(np.max(np.abs(fixed - want))), max(float(np.max(np.abs(want))), 1e-3)
    if worst > scale / 256:
        return "wrong", (f"16-bit golden differs from the test's output by up to {worst:g}, "
                         f"more than 1/256 of its largest value {scale:g}")
    return "pass", None


def _check(op_type, tmp_path):
    """Every node test with an `op_type` node passes or is refused."""
    names = [n for n, c in node_tests().items() if op_type in {x.op_type for x in c.model.graph.node}]
    if not names:
        pytest.skip(f"onnx ships no node test of {op_type}")
    results = {n: outcome(node_tests()[n], tmp_path) for n in names}
    wrong = {n: detail for n, (kind, detail) in results.items() if kind not in ("pass", "refused")}
    assert not wrong, wrong
    return results


@pytest.mark.parametrize("op_type", DEFAULT)
def test_claimed_pooling_conv_gemm(op_type, tmp_path):
    _check(op_type, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("op_type", sorted(CLAIMED - set(DEFAULT)))
def test_claimed_others(op_type, tmp_path):
    _check(op_type, tmp_path)


def test_the_node_tests_cover_the_claimed_ops(tmp_path):
    covered = {n.op_type for c in node_tests().values() for n in c.model.graph.node}
    assert {"Conv", "AveragePool", "MaxPool", "Gemm", "Relu", "Concat", "LSTM"} <= covered
    results = _check("AveragePool", tmp_path)
    assert results["test_averagepool_2d_ceil_last_window_starts_on_pad"][0] == "pass"
