"""Read an ONNX file into a checked, shape-inferred, constant-folded model.

`load_model` returns a `Model`: the data-path nodes in topological order, the constants they use
(initializers and folded subgraphs), the static shape of every tensor with the batch fixed to 1,
and the fixed-point formats a QDQ model states for its tensors and weights.
"""

import pathlib
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from ..errors import UserError
from ..ir import Format
from . import fold


__all__ = ["Model", "load_model", "MIN_OPSET"]


MIN_OPSET = 11


@dataclass
class Model:
    name: str
    opset: int
    input: str
    output: str                     # the data-path tensor the network ends in
    reference: str                  # the model's declared output (after QDQ, its float twin)
    nodes: list                     # onnx.NodeProto, data path only, topological order
    constants: dict                 # tensor name → np.ndarray
    shapes: dict                    # tensor name → tuple of ints (batch included, fixed to 1)
    format_hints: dict = field(default_factory=dict)    # activation tensor → Format
    weight_hints: dict = field(default_factory=dict)    # constant → (bits, frac, mult arrays)
    symbolic_first: bool = False    # the input's first axis was symbolic in a (?, 1, I) shape


def load_model(path):
    path = pathlib.Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        proto = onnx.load(str(path))
    except FileNotFoundError as error:
        raise UserError(f"{path}: external data file missing: {error.filename or error}") from None
    except Exception as error:      # protobuf decode errors have no common base class
        raise UserError(f"{path}: not a readable ONNX model ({_first_line(error)})") from None
    if not proto.graph.node:
        raise UserError(f"{path}: not an ONNX model, or one with an empty graph")
    try:
        onnx.checker.check_model(proto)
    except Exception as error:
        raise UserError(f"{path}: invalid ONNX model: {_first_line(error)}") from None
    opset = _opset(proto, path)
    graph = proto.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in constants]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise UserError(f"{path}: the network must have one input and one output, it has "
                        f"{len(inputs)} inputs ({', '.join(i.name for i in inputs)}) and "
                        f"{len(graph.output)} outputs ({', '.join(o.name for o in graph.output)})")
    model = Model(name=path.stem, opset=opset, input=inputs[0].name, output=graph.output[0].name,
                  reference=graph.output[0].name, nodes=list(graph.node), constants=constants,
                  shapes={})
    _fix_input_shape(inputs[0], model, path)
    _strip_qdq(model, path)
    for _ in range(8):              # folding can expose more folding once shapes are known
        model.shapes = _infer_shapes(proto, model, path)
        if not _fold(model):
            break
    model.shapes = _infer_shapes(proto, model, path)
    _check_static(model)
    return model


def _first_line(error):
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _opset(proto, path):
    versions = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    opset = versions[0] if versions else 1
    if opset < MIN_OPSET:
        raise UserError(f"{path}: opset {opset} is older than dnnhw reads ({MIN_OPSET} and newer): "
                        f"export again with opset_version={MIN_OPSET} or newer")
    return opset


def _fix_input_shape(value_info, model, path):
    dims = value_info.type.tensor_type.shape.dim
    if not dims:
        raise UserError(f"{path}: input '{value_info.name}' has no shape")
    batch = dims[0]
    # (T, 1, I) may be an LSTM's time-first input; the mapper checks that it is
    time_first = len(dims) == 3 and dims[1].HasField("dim_value") and dims[1].dim_value == 1
    if batch.HasField("dim_value") and batch.dim_value not in (0, 1) and not time_first:
        raise UserError(f"{path}: input '{value_info.name}' has batch size {batch.dim_value}: "
                        "dnnhw builds batch-1 streaming accelerators, export with batch 1")
    if not (time_first and batch.HasField("dim_value")):
        if time_first:
            model.symbolic_first = True     # a batch, or an LSTM's sequence length: the mapper tells
        batch.Clear()
        batch.dim_value = 1
    if len(dims) > 1 and any(not d.HasField("dim_value") for d in dims[1:]):
        shown = ", ".join(str(d.dim_value) if d.HasField("dim_value") else repr(d.dim_param or "?")
                          for d in dims)
        raise UserError(f"{path}: input '{value_info.name}' has a dynamic shape ({shown}): "
                        "export with a fixed input size")


def _strip_qdq(model, path):
    """Replace QuantizeLinear/DequantizeLinear (QDQ), and QuantizeLinear/Clip/DequantizeLinear
    (QCDQ, Brevitas' export: the Clip narrows the integers to fewer bits than their type's), by
    the formats they state.

    A QuantizeLinear (and Clip) of a constant is evaluated as ONNX defines it (round half to
    even, saturate); its DequantizeLinear becomes the float constant, its format a weight hint,
    of as many bits as the integers' range needs (weights have zero point 0). A QuantizeLinear →
    [Clip →] DequantizeLinear chain on an activation becomes a format hint on that tensor: the
    integers q - zero point, their range what the type and Clip allow, the scale's mantissa in
    the format's `mult` where it is not a power of two (`_scale_format`).
    """
    operator = next((node for node in model.nodes if node.op_type in _INTEGER_OPS
                     or node.op_type.startswith("QLinear")), None)
    if operator is not None:
        raise UserError(f"{path}: {operator.op_type} '{operator.name}': onnxruntime's QOperator "
                        "format (integer ops) is unsupported; quantize with "
                        "quant_format=QuantFormat.QDQ, which dnnhw reads")
    producers = {out: node for node in model.nodes for out in node.output}
    ranges = {}                     # integer constant → (lowest, highest) its type and Clip allow
    renames, kept = {}, []
    for node in model.nodes:
        source = producers.get(node.input[0]) if node.input else None
        if node.op_type == "Quant" and node.domain in QONNX_DOMAINS:
            _qonnx_quant(model, node, renames, path)
        elif node.op_type == "QuantizeLinear" and node.input[0] in model.constants:
            _, scale, zero = _qdq_operands(model, node, weight=True)
            dtype = zero.dtype if zero is not None else np.dtype(np.uint8)
            q = _quantize(np.asarray(model.constants[node.input[0]], np.float64), scale, dtype, node)
            model.constants[node.output[0]] = q
            ranges[node.output[0]] = (np.iinfo(dtype).min, np.iinfo(dtype).max)
        elif node.op_type == "Clip" and _integers(model, node.input[0]):
            dtype = np.asarray(model.constants[node.input[0]]).dtype
            bounds = ranges.get(node.input[0], (np.iinfo(dtype).min, np.iinfo(dtype).max))
            lo, hi = _clip_range(model, node, bounds)
            model.constants[node.output[0]] = np.clip(model.constants[node.input[0]], lo, hi)
            ranges[node.output[0]] = (lo, hi)
        elif node.op_type == "DequantizeLinear" and node.input[0] in model.constants:
            q, scale, zero = _qdq_operands(model, node, weight=True)
            model.constants[node.output[0]] = _dequantize(q, scale, zero, node)
            if q.dtype.itemsize <= 2:       # weights; 32-bit biases need no format of their own
                lo, hi = ranges.get(node.input[0], (np.iinfo(q.dtype).min, np.iinfo(q.dtype).max))
                model.weight_hints[node.output[0]] = (_qdq_bits(lo, hi, q.dtype, node, path),
                                                      *_scale_format(scale, node, path))
        elif node.op_type == "DequantizeLinear":
            clip = source if source is not None and source.op_type == "Clip" else None
            quant = producers.get(clip.input[0]) if clip is not None else source
            if quant is None or quant.op_type != "QuantizeLinear":
                raise UserError(f"{path}: DequantizeLinear '{node.name}' does not follow a "
                                "QuantizeLinear: unsupported QDQ pattern")
            _, scale, zero = _qdq_operands(model, quant)
            frac, mult = _scale_format(scale, quant, path)
            if frac.size != 1 or (zero is not None and zero.size != 1):
                raise UserError(f"{path}: QuantizeLinear '{quant.name}' has per-channel scales on "
                                "an activation: unsupported")
            dtype = zero.dtype if zero is not None else np.dtype(np.uint8)
            lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
            if clip is not None:
                lo, hi = _clip_range(model, clip, (lo, hi))
            offset = 0 if zero is None else int(zero.reshape(-1)[0])
            model.format_hints[quant.input[0]] = _activation_format(
                _qdq_bits(lo - offset, hi - offset, dtype, quant, path), frac[0], mult[0],
                lo - offset, hi - offset)
            renames[node.output[0]] = quant.input[0]
        elif node.op_type == "QuantizeLinear" or (node.op_type == "Clip" and source is not None
                                                  and source.op_type == "QuantizeLinear"):
            continue                        # an activation's, stated by its DequantizeLinear
        else:
            kept.append(node)
    for node in kept:
        for i, name in enumerate(node.input):
            node.input[i] = renames.get(name, name)
    if model.output in renames:
        model.output = renames[model.output]
    model.nodes = kept


#: Integer ops of onnxruntime's QOperator format and dynamic quantization (besides QLinear*).
_INTEGER_OPS = ("ConvInteger", "MatMulInteger", "DynamicQuantizeLinear")


#: The domains of QONNX's `Quant` (FINN's format; Brevitas' `export_qonnx` writes the first).
QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas")


def _qonnx_quant(model, node, renames, path):
    """QONNX `Quant(x, scale, zeropt, bitwidth)`: clamp(round(x / scale + zeropt), min, max) -
    zeropt, times scale, the integers `bitwidth` bits wide, signed or not, narrow or not. Of a
    constant: the quantized constant, its format a weight hint (none for biases wider than 16
    bits; a weight's zero point must be 0); of an activation: a format hint on the tensor (the
    integers minus the zero point, `_activation_format`), and the node removed."""
    try:
        scale, zero, width = (np.asarray(model.constants[name], np.float64)
                              for name in node.input[1:4])
    except KeyError as missing:
        raise UserError(f"Quant '{node.name}': scale, zero point and bit width must be constants, "
                        f"{missing} is not") from None
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    signed, narrow = attrs.get("signed", 1), attrs.get("narrow", 0)
    rounding = attrs.get("rounding_mode", b"ROUND")
    rounding = rounding.decode() if isinstance(rounding, bytes) else rounding
    if width.size != 1 or width.reshape(-1)[0] != int(width.reshape(-1)[0]) or rounding != "ROUND":
        raise UserError(f"{path}: Quant '{node.name}': bit width {width.reshape(-1).tolist()} and "
                        f"rounding_mode {rounding!r}: dnnhw reads one integer width, ROUND")
    bits = int(width.reshape(-1)[0])
    lo = -(1 << (bits - 1)) + narrow if signed else 0
    hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1 - narrow
    x = node.input[0]
    if x in model.constants:
        if np.any(zero != 0):
            raise UserError(f"{path}: Quant '{node.name}' gives weights a non-zero zero point: "
                            "dnnhw's weights are symmetric (zero point 0); quantize the weights "
                            "symmetrically")
        value = np.asarray(model.constants[x], np.float64)    # the scale broadcasts onto it
        q = np.clip(np.rint(value / scale), lo, hi)
        model.constants[node.output[0]] = (q * scale).astype(np.float32)
        if bits <= 16:
            model.weight_hints[node.output[0]] = (_range_bits(lo, hi),
                                                  *_scale_format(scale, node, path))
        return
    frac, mult = _scale_format(scale, node, path)
    if frac.size != 1 or zero.size != 1 or zero.reshape(-1)[0] != int(zero.reshape(-1)[0]):
        raise UserError(f"{path}: Quant '{node.name}' has per-channel scales or zero points, or "
                        "a fractional zero point, on an activation: unsupported")
    if bits > 16:
        raise UserError(f"{path}: Quant '{node.name}' quantizes an activation to {bits} bits: "
                        "dnnhw reads at most 16")
    offset = int(zero.reshape(-1)[0])
    model.format_hints[x] = _activation_format(_range_bits(lo - offset, hi - offset), frac[0],
                                               mult[0], lo - offset, hi - offset)
    renames[node.output[0]] = renames.get(x, x)


def _integers(model, name):
    """`name` is a constant of integers (quantized weights)."""
    return name in model.constants and np.asarray(model.constants[name]).dtype.kind in "iu"


def _quantize(x, scale, dtype, node):
    """ONNX QuantizeLinear of a constant (zero point 0): x / scale rounded half to even,
    saturated to `dtype`."""
    info = np.iinfo(dtype)
    return np.clip(np.rint(x / _along_axis(scale, x.ndim, node)), info.min, info.max).astype(dtype)


def _clip_range(model, node, bounds):
    """The integers a Clip of quantized values keeps: `bounds` narrowed by its min and max."""
    lo, hi = bounds
    for index, pick in ((1, max), (2, min)):
        name = node.input[index] if len(node.input) > index else ""
        if name:
            if name not in model.constants:
                raise UserError(f"Clip '{node.name}': bound '{name}' must be a constant")
            value = int(np.asarray(model.constants[name]).reshape(-1)[0])
            lo, hi = (pick(lo, value), hi) if index == 1 else (lo, pick(hi, value))
    return lo, hi


def _range_bits(lo, hi):
    """Bits of the signed integers that hold every value in [lo, hi]."""
    return max(int(hi).bit_length(), int(-lo - 1).bit_length() if lo < 0 else 0) + 1


def _qdq_bits(lo, hi, dtype, node, path):
    """`_range_bits` of a QDQ tensor's integers, of 8- or 16-bit `dtype`."""
    bits = _range_bits(lo, hi)
    if np.dtype(dtype).kind not in "iu" or np.dtype(dtype).itemsize > 2:
        raise UserError(f"{path}: {node.op_type} '{node.name}' quantizes to {np.dtype(dtype)}: "
                        "dnnhw reads 8- and 16-bit integer QDQ models")
    if bits > 16:
        raise UserError(f"{path}: {node.op_type} '{node.name}': its {np.dtype(dtype)} integers "
                        f"in [{lo}, {hi}] (less the zero point) need {bits} signed bits; dnnhw "
                        "computes with at most 16 (quantize to 8 bits, or to int16 with zero "
                        "point 0)")
    return bits


def _qdq_operands(model, node, weight=False):
    """(the quantized constant or None, scale, zero point or None) of a QuantizeLinear or
    DequantizeLinear; a `weight`'s zero point must be 0 (dnnhw's weights are symmetric)."""
    try:
        operands = [model.constants[name] if name else None for name in node.input[1:3]]
    except KeyError as missing:
        raise UserError(f"{node.op_type} '{node.name}': scale and zero point must be constants, "
                        f"{missing} is not") from None
    scale, zero = (operands + [None])[:2]
    q = model.constants.get(node.input[0])
    if weight and zero is not None and np.any(zero != 0):
        raise UserError(f"{node.op_type} '{node.name}' gives weights a non-zero zero point: "
                        "dnnhw's weights are symmetric (zero point 0); quantize the weights "
                        "symmetrically")
    return q, np.asarray(scale, dtype=np.float64), None if zero is None else np.asarray(zero)


def _dequantize(q, scale, zero, node):
    q = q.astype(np.float64) - (0 if zero is None else _along_axis(zero, q.ndim, node))
    return (q * _along_axis(scale, q.ndim, node)).astype(np.float32)


def _along_axis(scale, ndim, node):
    """A QuantizeLinear/DequantizeLinear `scale` shaped to broadcast along its node's `axis`
    (default 1) of an `ndim`-dimensional tensor; a per-tensor scale as it is."""
    if scale.size == 1:
        return scale
    shape = [1] * ndim
    shape[next((a.i for a in node.attribute if a.name == "axis"), 1)] = scale.size
    return scale.reshape(shape)


def _scale_format(scale, node, path):
    """(frac, mult) arrays of quantization scales: scale = mult · 2**-frac, 1 ≤ mult < 2
    (`ir.Format`); a power of two has mult 1."""
    scale = np.atleast_1d(np.asarray(scale, dtype=np.float64)).reshape(-1)
    if not np.all(np.isfinite(scale) & (scale > 0)):
        bad = next(float(s) for s in scale if not (np.isfinite(s) and s > 0))
        raise UserError(f"{path}: {node.op_type} '{node.name}' has scale {bad:g}: a scale must "
                        "be positive and finite")
    mantissa, exponent = np.frexp(scale)            # scale = mantissa · 2**exponent, ½ ≤ m < 1
    return (1 - exponent).astype(np.int64), 2 * mantissa


def _activation_format(bits, frac, mult, lo, hi):
    """The `Format` of an activation's integers in [lo, hi] (narrowed only where [lo, hi] is
    not all of `bits`)."""
    full = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    low, high = (None, None) if (lo, hi) == full else (int(lo), int(hi))
    return Format(bits, int(frac), float(mult), low, high)


#: Constants up to this many elements go to shape inference with their values (shapes, axes and
#: other small tensors its data propagation reads); larger ones (weights) as typed inputs of their
#: shape only, which saves serializing a large network's weights on every pass.
_INFERENCE_VALUES = 4096


def _infer_shapes(proto, model, path):
    """Static shapes of every tensor, from ONNX shape inference over the current nodes."""
    used = {name for node in model.nodes for name in node.input}
    values = {name: np.asarray(v) for name, v in model.constants.items() if name in used}
    large = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
             for name, v in values.items() if v.size > _INFERENCE_VALUES]
    graph = helper.make_graph(
        model.nodes, proto.graph.name or "g",
        inputs=[i for i in proto.graph.input if i.name == model.input] + large,
        outputs=[helper.make_tensor_value_info(model.output, onnx.TensorProto.UNDEFINED, None)],
        initializer=[numpy_helper.from_array(v, name) for name, v in values.items()
                     if v.size <= _INFERENCE_VALUES])
    trial = helper.make_model(graph, opset_imports=proto.opset_import, ir_version=proto.ir_version)
    try:
        inferred = shape_inference.infer_shapes(trial, strict_mode=True, data_prop=True)
    except Exception as error:
        raise UserError(f"{path}: shape inference failed: {_first_line(error)}") from None
    shapes = {name: tuple(value.shape) for name, value in model.constants.items()}
    for info in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        if info.type.HasField("tensor_type") and info.type.tensor_type.HasField("shape"):
            dims = info.type.tensor_type.shape.dim
            shapes[info.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
    return shapes


def _fold(model):
    """Fold every node whose inputs are all known; True when something was folded."""
    kept, folded = [], False
    for node in model.nodes:
        inputs = _known_inputs(model, node)
        if inputs is None:
            kept.append(node)
            continue
        outputs = fold.evaluate(node, inputs, model.opset)
        for name, value in zip(node.output, outputs):
            model.constants[name] = value
        folded = True
    model.nodes = kept
    return folded


def _known_inputs(model, node):
    """The inputs of a foldable `node` as arrays, or None when some are not constant."""
    if node.op_type not in fold.FOLDABLE:
        return None
    if node.op_type in ("Shape", "Size"):       # need only the (static) shape of the input
        shape = model.shapes.get(node.input[0])
        if shape is None or any(d is None for d in shape):
            return None
        return [np.broadcast_to(np.float32(0), shape)]
    if not all(name == "" or name in model.constants for name in node.input):
        return None
    return [model.constants[name] if name else None for name in node.input]


def _check_static(model):
    for node in model.nodes:
        for name in [*node.input, *node.output]:
            if not name or name in model.constants:
                continue
            shape = model.shapes.get(name)
            if shape is None or any(d is None for d in shape):
                raise UserError(f"node '{node.name or node.op_type}' ({node.op_type}): tensor "
                                f"'{name}' has no static shape after shape inference "
                                f"({shape}): dnnhw needs fixed shapes")

