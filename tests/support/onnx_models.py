"""Hand-built ONNX test networks for the frontend.

Every builder is ``name(opset=17) -> onnx.ModelProto`` with seeded float32 weights, one input
named "x" and one output named "y". The models pass ``onnx.checker.check_model(m, full_check=True)``
and run in onnxruntime for opsets 11..21. Where an operator's form changed between opsets (Clip
bounds, ReduceMean/Squeeze/Unsqueeze axes, per-channel DequantizeLinear) the builder writes the
form of the requested opset, as an exporter targeting that opset would.

``ALL`` holds the models the frontend must accept; ``REJECTED`` those it must refuse with a
clear message.
"""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

__all__ = [
    "ALL",
    "REJECTED",
    "conv_bn_relu",
    "depthwise_separable",
    "dynamic_spatial",
    "mlp",
    "mlp_tanh",
    "nonsquare_kernel",
    "pools",
    "qdq_conv",
    "qdq_conv_float_scales",
    "qdq_conv_weight_zero_point",
    "reducemean_head",
    "residual",
    "run_ort",
    "sample_input",
    "save_with_external_data",
    "shape_subgraph",
    "squeeze_unsqueeze",
    "standalone_batchnorm",
    "symbolic_batch",
    "unsupported_op",
]


class _Builder:
    """Collects the nodes and seeded initializers of one graph for one opset."""

    def __init__(self, opset: int, seed: int):
        self.opset = opset
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._counts: dict[str, int] = {}

    def _fresh(self, prefix: str) -> str:
        n = self._counts.get(prefix, 0)
        self._counts[prefix] = n + 1
        return f"{prefix}{n}"

    def const(self, array, prefix: str = "c") -> str:
        """Add an initializer; return its name."""
        name = self._fresh(prefix)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def const_node(self, array) -> str:
        """Add a Constant node (the form exporters use for small shape constants)."""
        value = numpy_helper.from_array(np.asarray(array))
        return self.op("Constant", [], value=value)

    def op(self, op_type: str, inputs: list[str], out: str | None = None,
           name: str | None = None, **attrs) -> str:
        """Add a single-output node; return its output name."""
        node_name = name or self._fresh(op_type.lower())
        out = out or node_name
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=node_name, **attrs))
        return out

    def weight(self, shape, fan_in: int) -> np.ndarray:
        """He-normal float32 weights."""
        return self.rng.normal(0.0, np.sqrt(2.0 / fan_in), shape).astype(np.float32)

    def bias(self, n: int) -> str:
        """A float32 bias initializer of length ``n``; return its name."""
        return self.const(self.rng.normal(0.0, 0.1, n).astype(np.float32), "b")

    def conv(self, x: str, c_in: int, c_out: int, kernel=(3, 3), group: int = 1,
             bias: bool = True, out: str | None = None, **attrs) -> str:
        """Conv with random weights; ``attrs`` are ONNX Conv attributes (pads, strides...)."""
        kh, kw = kernel
        fan_in = c_in // group * kh * kw
        inputs = [x, self.const(self.weight((c_out, c_in // group, kh, kw), fan_in), "w")]
        if bias:
            inputs.append(self.bias(c_out))
        return self.op("Conv", inputs, out=out, kernel_shape=[kh, kw], group=group, **attrs)

    def batchnorm(self, x: str, c: int, out: str | None = None, **attrs) -> str:
        """BatchNormalization with non-trivial scale, shift and running statistics."""
        r = self.rng
        params = [
            r.uniform(0.5, 1.5, c),  # scale
            r.normal(0.0, 0.1, c),  # B
            r.normal(0.0, 0.2, c),  # mean
            r.uniform(0.5, 1.5, c),  # var
        ]
        names = [self.const(p.astype(np.float32), "bn") for p in params]
        return self.op("BatchNormalization", [x, *names], out=out, **attrs)

    def with_axes(self, op_type: str, x: str, axes: list[int], since: int,
                  out: str | None = None, **attrs) -> str:
        """``op_type`` over ``axes``: an attribute before opset ``since``, an int64 input after."""
        if self.opset >= since:
            return self.op(op_type, [x, self.const(np.array(axes, np.int64), "axes")],
                           out=out, **attrs)
        return self.op(op_type, [x], out=out, axes=axes, **attrs)

    def fc(self, x: str, n_in: int, n_out: int, out: str | None = None) -> str:
        """Gemm with transB=1, as exporters write nn.Linear."""
        w = self.const(self.weight((n_out, n_in), n_in), "w")
        return self.op("Gemm", [x, w, self.bias(n_out)], out=out, transB=1)

    def model(self, name: str, x_shape, y_shape) -> onnx.ModelProto:
        """The finished model (IR version: the lowest that supports the opset)."""
        graph = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
            initializer=self.initializers,
        )
        opsets = [helper.make_opsetid("", self.opset)]
        return helper.make_model(graph, opset_imports=opsets, producer_name="dnnhw-tests",
                                 ir_version=helper.find_min_ir_version_for(opsets))


def conv_bn_relu(opset: int = 17) -> onnx.ModelProto:
    """Conv 3x3 pad 1 (3 -> 8 channels) + BatchNormalization + Relu on 1x3x12x12."""
    b = _Builder(opset, seed=1)
    t = b.conv("x", 3, 8, pads=[1, 1, 1, 1])
    t = b.batchnorm(t, 8)
    b.op("Relu", [t], out="y")
    return b.model("conv_bn_relu", [1, 3, 12, 12], [1, 8, 12, 12])


def depthwise_separable(opset: int = 17) -> onnx.ModelProto:
    """Depthwise 3x3 stride 2, TF-"SAME" pads [0,0,1,1], no bias, + Relu; pointwise 1x1, Clip(0, 6).

    Clip takes min/max as inputs from opset 11 on, as attributes before.
    """
    b = _Builder(opset, seed=2)
    t = b.conv("x", 8, 8, group=8, strides=[2, 2], pads=[0, 0, 1, 1], bias=False)
    t = b.op("Relu", [t])
    t = b.conv(t, 8, 16, kernel=(1, 1))
    if opset >= 11:
        b.op("Clip", [t, b.const(np.float32(0.0)), b.const(np.float32(6.0))], out="y")
    else:
        b.op("Clip", [t], out="y", min=0.0, max=6.0)
    return b.model("depthwise_separable", [1, 8, 12, 12], [1, 16, 6, 6])


def nonsquare_kernel(opset: int = 17) -> onnx.ModelProto:
    """Keyword-spotting-like Conv: kernel 4x10, strides (1, 2), pads (1, 4, 2, 5); LeakyRelu 0.1."""
    b = _Builder(opset, seed=3)
    t = b.conv("x", 1, 8, kernel=(4, 10), strides=[1, 2], pads=[1, 4, 2, 5])
    b.op("LeakyRelu", [t], out="y", alpha=0.1)
    return b.model("nonsquare_kernel", [1, 1, 40, 32], [1, 8, 40, 16])


def pools(opset: int = 17) -> onnx.ModelProto:
    """MaxPool 3x3/2 pad 1, AveragePool 2x2/2 (count_include_pad=0),
    AveragePool 3x3/1 pad 1 (count_include_pad=1), GlobalAveragePool on 1x4x16x16."""
    b = _Builder(opset, seed=4)
    t = b.op("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    t = b.op("AveragePool", [t], kernel_shape=[2, 2], strides=[2, 2], count_include_pad=0)
    t = b.op("AveragePool", [t], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1],
             count_include_pad=1)
    b.op("GlobalAveragePool", [t], out="y")
    return b.model("pools", [1, 4, 16, 16], [1, 4, 1, 1])


def reducemean_head(opset: int = 17) -> onnx.ModelProto:
    """Conv, ReduceMean over H, W (keepdims=1; axes an input from opset 18), Flatten, Gemm -> 10."""
    b = _Builder(opset, seed=5)
    t = b.conv("x", 3, 16, pads=[1, 1, 1, 1])
    t = b.with_axes("ReduceMean", t, [2, 3], since=18, keepdims=1)
    t = b.op("Flatten", [t], axis=1)
    b.fc(t, 16, 10, out="y")
    return b.model("reducemean_head", [1, 3, 8, 8], [1, 10])


def residual(opset: int = 17) -> onnx.ModelProto:
    """Conv+Relu stem; Relu(Conv(Relu(Conv(s))) + s); Concat (axis 1) with a third Conv of s."""
    b = _Builder(opset, seed=6)
    p = [1, 1, 1, 1]
    s = b.op("Relu", [b.conv("x", 4, 8, pads=p)])
    t = b.op("Relu", [b.conv(s, 8, 8, pads=p)])
    t = b.conv(t, 8, 8, pads=p)
    t = b.op("Relu", [b.op("Add", [t, s])])
    side = b.conv(s, 8, 4, pads=p)
    b.op("Concat", [t, side], out="y", axis=1)
    return b.model("residual", [1, 4, 8, 8], [1, 12, 8, 8])


def vgg(convs, fcs, in_shape=(3, 32, 32), name="vgg", opset: int = 17, seed: int = 7) -> onnx.ModelProto:
    """A VGG: 3x3 pad-1 Conv + Relu per width in ``convs`` ("M": MaxPool 2x2/2), Flatten, then
    Gemm layers of ``fcs`` outputs with Relu between them, on 1 x ``in_shape``."""
    b = _Builder(opset, seed=seed)
    t, (c, h, w) = "x", in_shape
    for item in convs:
        if item == "M":
            t, h, w = b.op("MaxPool", [t], kernel_shape=[2, 2], strides=[2, 2]), h // 2, w // 2
        else:
            t, c = b.op("Relu", [b.conv(t, c, item, pads=[1, 1, 1, 1])]), item
    t, n = b.op("Flatten", [t]), c * h * w
    for k, size in enumerate(fcs):
        last = k == len(fcs) - 1
        t = b.fc(t, n, size, out="y" if last else None)
        t, n = (t if last else b.op("Relu", [t])), size
    return b.model(name, [1, *in_shape], [1, fcs[-1]])


def resnet(blocks=(2, 2, 2, 2), widths=(64, 128, 256, 512), classes=1000, in_shape=(3, 224, 224),
           name="resnet18", opset: int = 17, seed: int = 8) -> onnx.ModelProto:
    """ResNet with basic blocks (BatchNorm folded away): Conv 7x7/2 + Relu, MaxPool 3x3/2 pad 1,
    then per stage ``blocks`` blocks Relu(Conv(Relu(Conv(x))) + shortcut), the first of each
    stage after the first with stride 2 and a 1x1/2 projection; GlobalAveragePool, Flatten,
    Gemm. The defaults are ResNet-18 for ImageNet."""
    b = _Builder(opset, seed=seed)
    t = b.op("Relu", [b.conv("x", in_shape[0], widths[0], kernel=(7, 7), strides=[2, 2],
                             pads=[3, 3, 3, 3])])
    t = b.op("MaxPool", [t], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    c = widths[0]
    for stage, (count, width) in enumerate(zip(blocks, widths)):
        for k in range(count):
            stride = 2 if stage and not k else 1
            y = b.op("Relu", [b.conv(t, c, width, strides=[stride] * 2, pads=[1, 1, 1, 1])])
            y = b.conv(y, width, width, pads=[1, 1, 1, 1])
            skip = t if stride == 1 and c == width else b.conv(t, c, width, kernel=(1, 1),
                                                                strides=[stride] * 2)
            t, c = b.op("Relu", [b.op("Add", [y, skip])]), width
    t = b.op("Flatten", [b.op("GlobalAveragePool", [t])])
    b.fc(t, c, classes, out="y")
    return b.model(name, [1, *in_shape], [1, classes])


#: The CIFAR-10 VGG that does not fit arty at 16 bits (its 16-bit weights need 142 BRAM18).
VGG_CIFAR = ([32, 32, "M", 64, 64, "M", 128, "M"], [10])


def _mlp(opset: int, activation: str, seed: int) -> onnx.ModelProto:
    """MatMul + Add + Relu, Gemm(alpha=0.5, beta=2, transB=0) -> 10, then ``activation``."""
    b = _Builder(opset, seed)
    t = b.op("MatMul", ["x", b.const(b.weight((64, 32), 64), "w")])
    t = b.op("Relu", [b.op("Add", [t, b.bias(32)])])
    w = b.const(b.weight((32, 10), 32), "w")
    t = b.op("Gemm", [t, w, b.bias(10)], alpha=0.5, beta=2.0, transB=0)
    b.op(activation, [t], out="y")
    return b.model(f"mlp_{activation.lower()}", [1, 64], [1, 10])


def mlp(opset: int = 17) -> onnx.ModelProto:
    """(1, 64) -> MatMul/Add/Relu -> 32 -> Gemm(alpha=0.5, beta=2.0) -> 10 -> Sigmoid."""
    return _mlp(opset, "Sigmoid", seed=7)


def mlp_tanh(opset: int = 17) -> onnx.ModelProto:
    """As ``mlp`` but ending in Tanh."""
    return _mlp(opset, "Tanh", seed=8)


def shape_subgraph(opset: int = 17) -> onnx.ModelProto:
    """Conv, then ``t.view(t.size(0), -1)`` as exporters write it, then MatMul + Add -> 10.

    The Reshape target is Shape(t) -> Gather(0) -> Unsqueeze(axes=[0]) -> Concat with
    Constant [-1]; Unsqueeze axes are an attribute before opset 13, an input from it on.
    """
    b = _Builder(opset, seed=9)
    t = b.conv("x", 4, 4, pads=[1, 1, 1, 1])
    n = b.op("Gather", [b.op("Shape", [t]), b.const_node(np.int64(0))], axis=0)
    n = b.with_axes("Unsqueeze", n, [0], since=13)
    shape = b.op("Concat", [n, b.const_node(np.array([-1], np.int64))], axis=0)
    t = b.op("Reshape", [t, shape])
    t = b.op("MatMul", [t, b.const(b.weight((144, 10), 144), "w")])
    b.op("Add", [t, b.bias(10)], out="y")
    return b.model("shape_subgraph", [1, 4, 6, 6], [1, 10])


def squeeze_unsqueeze(opset: int = 17) -> onnx.ModelProto:
    """GlobalAveragePool, Squeeze [2, 3], Identity, Dropout, Unsqueeze [2, 3], Flatten, Gemm -> 10.

    Squeeze/Unsqueeze axes are attributes before opset 13, inputs from it on.
    """
    b = _Builder(opset, seed=10)
    t = b.op("GlobalAveragePool", ["x"])
    t = b.with_axes("Squeeze", t, [2, 3], since=13)
    t = b.op("Dropout", [b.op("Identity", [t])])
    t = b.with_axes("Unsqueeze", t, [2, 3], since=13)
    t = b.op("Flatten", [t], axis=1)
    b.fc(t, 8, 10, out="y")
    return b.model("squeeze_unsqueeze", [1, 8, 5, 5], [1, 10])


def standalone_batchnorm(opset: int = 17) -> onnx.ModelProto:
    """BatchNormalization (epsilon=1e-3) straight on the input, not after a Conv, then Relu."""
    b = _Builder(opset, seed=11)
    t = b.batchnorm("x", 4, epsilon=1e-3)
    b.op("Relu", [t], out="y")
    return b.model("standalone_batchnorm", [1, 4, 5, 5], [1, 4, 5, 5])


def dynamic_spatial(opset: int = 17) -> onnx.ModelProto:
    """Conv on input (1, 3, "H", "W"): spatial size unknown, so the frontend must reject it."""
    b = _Builder(opset, seed=12)
    b.conv("x", 3, 4, pads=[1, 1, 1, 1], out="y")
    return b.model("dynamic_spatial", [1, 3, "H", "W"], [1, 4, "H", "W"])


def symbolic_batch(opset: int = 17) -> onnx.ModelProto:
    """Conv + Relu on input ("N", 3, 8, 8): the frontend must fix the batch to 1."""
    b = _Builder(opset, seed=13)
    t = b.conv("x", 3, 4, pads=[1, 1, 1, 1])
    b.op("Relu", [t], out="y")
    return b.model("symbolic_batch", ["N", 3, 8, 8], ["N", 4, 8, 8])


def unsupported_op(opset: int = 17) -> onnx.ModelProto:
    """Conv followed by LpNormalization, a valid ONNX op we do not support, named "weird_node"."""
    b = _Builder(opset, seed=14)
    t = b.conv("x", 3, 4, pads=[1, 1, 1, 1])
    b.op("LpNormalization", [t], out="y", name="weird_node", axis=1, p=2)
    return b.model("unsupported_op", [1, 3, 8, 8], [1, 4, 8, 8])


def _qdq_conv(opset: int, act_scale_in: float, act_scale_out: float,
              weight_zero: int = 0) -> onnx.ModelProto:
    """QDQ Conv + Relu as onnxruntime's static quantizer writes it (int8, zero points 0; the
    weights' `weight_zero`).

    The weight is DequantizeLinear(int8, scale 2**-k per output channel, axis=0); per-axis
    DequantizeLinear needs opset 13, so before it one per-tensor scale 2**-min(k) is used.
    The bias stays float.
    """
    b = _Builder(opset, seed=15)
    c_in, c_out = 3, 8

    def qdq(x: str, scale: float, out: str | None = None) -> str:
        s, zp = b.const(np.float32(scale), "scale"), b.const(np.int8(0), "zp")
        return b.op("DequantizeLinear", [b.op("QuantizeLinear", [x, s, zp]), s, zp], out=out)

    w = b.weight((c_out, c_in, 3, 3), c_in * 9)
    k = np.floor(np.log2(127.0 / np.abs(w).max(axis=(1, 2, 3)))).astype(np.int64)
    if opset < 13:
        k = np.full_like(k, k.min())
    w_q = np.clip(np.round(w * 2.0 ** k[:, None, None, None]), -128, 127).astype(np.int8)
    scales = (2.0 ** -k).astype(np.float32)
    if opset >= 13:
        scale, zp, attrs = scales, np.full(c_out, weight_zero, np.int8), {"axis": 0}
    else:
        scale, zp, attrs = scales[0], np.int8(weight_zero), {}
    w_inputs = [b.const(w_q, "wq"), b.const(scale, "scale"), b.const(zp, "zp")]
    w_dq = b.op("DequantizeLinear", w_inputs, **attrs)

    t = qdq("x", act_scale_in)
    t = b.op("Conv", [t, w_dq, b.bias(c_out)], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    t = b.op("Relu", [t])
    qdq(t, act_scale_out, out="y")
    return b.model("qdq_conv", [1, c_in, 8, 8], [1, c_out, 8, 8])


def qdq_conv(opset: int = 17) -> onnx.ModelProto:
    """QDQ Conv + Relu with power-of-two scales: input 2**-5, output 2**-4, weights 2**-k."""
    return _qdq_conv(opset, 2.0 ** -5, 2.0 ** -4)


def qdq_conv_float_scales(opset: int = 17) -> onnx.ModelProto:
    """As ``qdq_conv`` but both activation scales are 0.013, not a power of two."""
    return _qdq_conv(opset, 0.013, 0.013)


def qdq_conv_weight_zero_point(opset: int = 17) -> onnx.ModelProto:
    """As ``qdq_conv`` with the weights' zero point 3: to be rejected (weights are symmetric)."""
    return _qdq_conv(opset, 2.0 ** -5, 2.0 ** -4, weight_zero=3)


ALL = {
    f.__name__: f
    for f in [
        conv_bn_relu, depthwise_separable, nonsquare_kernel, pools, reducemean_head, residual,
        mlp, mlp_tanh, shape_subgraph, squeeze_unsqueeze, standalone_batchnorm, symbolic_batch,
        qdq_conv, qdq_conv_float_scales,
    ]
}
"""Valid models the frontend must accept, by name."""

REJECTED = {f.__name__: f for f in [dynamic_spatial, unsupported_op, qdq_conv_weight_zero_point]}
"""Valid ONNX the frontend must refuse with a clear message, by name."""


def save_with_external_data(model: onnx.ModelProto, path: str | Path) -> Path:
    """Save ``model`` to ``path`` with every initializer in ``<path.name>.data`` beside it.

    ``model`` itself is left untouched (the save works on a copy).
    """
    path = Path(path)
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    onnx.save_model(copy, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=path.name + ".data", size_threshold=0)
    return path


def run_ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """Run ``model`` on input ``x`` in onnxruntime (CPU); return output "y"."""
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(["y"], {"x": np.asarray(x, np.float32)})[0]


def sample_input(model: onnx.ModelProto, seed: int = 0) -> np.ndarray:
    """A seeded standard-normal float32 input for ``model``; symbolic dims are taken as 1."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else 1 for d in dims]
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def tiny_network(tmp_path):
    """Conv 3×3 (2 → 4 channels, pad 1) + ReLU on 2×4×4, Flatten, Gemm 64 → 6: quantized to
    8 bits, with its calibration frames."""
    b = _Builder(17, seed=5)
    t = b.op("Relu", [b.conv("x", 2, 4, pads=[1, 1, 1, 1])])
    t = b.op("Flatten", [t])
    b.op("Gemm", [t, b.const(b.weight((6, 64), 64), "w"), b.bias(6)], out="y", transB=1)
    from dnnhw import quant
    from dnnhw.frontend import load

    onnx.save(b.model("tiny", [1, 2, 4, 4], [1, 6]), tmp_path / "tiny.onnx")
    graph = load(tmp_path / "tiny.onnx")
    frames = np.random.default_rng(5).standard_normal((16, 2, 4, 4))
    return quant.quantize(graph, frames, bits=8), frames
