"""Constant folding: evaluate in NumPy the shape and constant subgraphs exporters emit.

PyTorch writes chains like Shape → Gather → Unsqueeze → Concat → Reshape to compute a target
shape, and ConstantOfShape/Expand to build initial states. Once the input's shape is fixed these
are constants; folding them leaves only the layers that compute on the data.
"""

import numpy as np
from onnx import helper, numpy_helper


__all__ = ["FOLDABLE", "evaluate"]


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _axes(node, inputs, index, opset):
    """Axes from an attribute (older opsets) or from input `index` (newer ones)."""
    if len(inputs) > index and inputs[index] is not None:
        return [int(a) for a in inputs[index]]
    axes = _attr(node, "axes")
    return None if axes is None else list(axes)


def _constant(node, inputs, opset):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        value = _attr(node, key)
        if value is None:
            continue
        if key == "value":
            return numpy_helper.to_array(value)
        return np.array(value, dtype=np.float32 if "float" in key else np.int64)
    raise ValueError("Constant without a supported value attribute")


def _shape(node, inputs, opset):
    shape = np.array(inputs[0].shape, dtype=np.int64)
    start, end = _attr(node, "start", 0), _attr(node, "end")
    return shape[start:end]


def _unsqueeze(node, inputs, opset):
    x = inputs[0]
    axes = sorted(a % (x.ndim + len(_axes(node, inputs, 1, opset)))
                  for a in _axes(node, inputs, 1, opset))
    for a in axes:
        x = np.expand_dims(x, a)
    return x


def _squeeze(node, inputs, opset):
    axes = _axes(node, inputs, 1, opset)
    return np.squeeze(inputs[0], axis=None if axes is None else tuple(axes))


def _reshape(node, inputs, opset):
    x, shape = inputs[0], [int(d) for d in inputs[1]]
    if not _attr(node, "allowzero", 0):
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return x.reshape(shape)


def _slice(node, inputs, opset):
    x = inputs[0]
    if opset < 10:
        starts, ends = _attr(node, "starts"), _attr(node, "ends")
        axes, steps = _attr(node, "axes"), None
    else:
        starts, ends = inputs[1], inputs[2]
        axes = inputs[3] if len(inputs) > 3 and inputs[3] is not None else None
        steps = inputs[4] if len(inputs) > 4 and inputs[4] is not None else None
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * x.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps):
        index[int(axis)] = slice(int(start), int(end), int(step))
    return x[tuple(index)]


def _div(node, inputs, opset):
    a, b = inputs
    if np.issubdtype(a.dtype, np.integer):
        return (np.trunc(a / b)).astype(a.dtype)
    return a / b


def _cast(node, inputs, opset):
    return inputs[0].astype(helper.tensor_dtype_to_np_dtype(_attr(node, "to")))


def _constant_of_shape(node, inputs, opset):
    value = _attr(node, "value")
    fill = numpy_helper.to_array(value) if value is not None else np.zeros(1, np.float32)
    return np.full([int(d) for d in inputs[0]], fill.reshape(-1)[0], dtype=fill.dtype)


def _gather(node, inputs, opset):
    return np.take(inputs[0], inputs[1].astype(np.int64), axis=_attr(node, "axis", 0))


def _reduce(fn):
    def reduce(node, inputs, opset):
        axes = _axes(node, inputs, 1, opset)
        keep = bool(_attr(node, "keepdims", 1))
        return fn(inputs[0], axis=None if not axes else tuple(axes), keepdims=keep)
    return reduce


FOLDABLE = {
    "Constant": _constant,
    "Shape": _shape,
    "Size": lambda node, inputs, opset: np.array(inputs[0].size, dtype=np.int64),
    "Gather": _gather,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Concat": lambda node, inputs, opset: np.concatenate(inputs, axis=_attr(node, "axis")),
    "Reshape": _reshape,
    "Flatten": lambda node, inputs, opset: inputs[0].reshape(
        int(np.prod(inputs[0].shape[:_attr(node, "axis", 1)])), -1),
    "Transpose": lambda node, inputs, opset: np.transpose(inputs[0], _attr(node, "perm")),
    "Cast": _cast,
    "Slice": _slice,
    "Expand": lambda node, inputs, opset: inputs[0] * np.ones([int(d) for d in inputs[1]], inputs[0].dtype),
    "ConstantOfShape": _constant_of_shape,
    "Range": lambda node, inputs, opset: np.arange(inputs[0], inputs[1], inputs[2]),
    "Identity": lambda node, inputs, opset: inputs[0],
    "Add": lambda node, inputs, opset: inputs[0] + inputs[1],
    "Sub": lambda node, inputs, opset: inputs[0] - inputs[1],
    "Mul": lambda node, inputs, opset: inputs[0] * inputs[1],
    "Div": _div,
    "Neg": lambda node, inputs, opset: -inputs[0],
    "Sqrt": lambda node, inputs, opset: np.sqrt(inputs[0]),
    "Reciprocal": lambda node, inputs, opset: 1 / inputs[0],
    "Pow": lambda node, inputs, opset: np.power(inputs[0], inputs[1]).astype(inputs[0].dtype),
    "Floor": lambda node, inputs, opset: np.floor(inputs[0]),
    "Ceil": lambda node, inputs, opset: np.ceil(inputs[0]),
    "Min": lambda node, inputs, opset: np.minimum.reduce(inputs),
    "Max": lambda node, inputs, opset: np.maximum.reduce(inputs),
    "Equal": lambda node, inputs, opset: np.equal(inputs[0], inputs[1]),
    "Less": lambda node, inputs, opset: np.less(inputs[0], inputs[1]),
    "Greater": lambda node, inputs, opset: np.greater(inputs[0], inputs[1]),
    "Not": lambda node, inputs, opset: np.logical_not(inputs[0]),
    "Where": lambda node, inputs, opset: np.where(*inputs),
    "Tile": lambda node, inputs, opset: np.tile(inputs[0], [int(r) for r in inputs[1]]),
    "ReduceProd": _reduce(np.prod),
    "ReduceSum": _reduce(np.sum),
}


def evaluate(node, inputs, opset):
    """Outputs of `node` (a foldable op) given its constant `inputs` (None for absent ones)."""
    result = FOLDABLE[node.op_type](node, inputs, opset)
    return [np.asarray(result)]
