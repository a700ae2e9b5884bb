"""Map ONNX nodes onto canonical layers.

Each data-path node becomes one layer (or none, for layout-only ops). Layout ops (Flatten,
Reshape, Squeeze, Unsqueeze, Identity, Dropout) keep the data's order, so they alias their input:
the IR keeps the tensor's (C, H, W) shape, and a fully connected layer reading a flattened map
takes its weights permuted to stream (HWC) order. Four temporary ops come out of this step and
are removed by `canonical`: "affine" (a per-channel y = a·x + b from BatchNormalization or an
elementwise op with a constant), "pad" (a zero Pad in front of a convolution), "last_step"
(the last time step of an LSTM's sequence, from its Y_h output or a Gather/Slice of Y) and
"permute" (a channel shuffle: Reshape, Transpose, Reshape).

Sequences. An ONNX tensor holds its IR tensor's elements in CHW order, or in HWC order: a
sequence (T, 1, F) or (1, T, F) is the IR's (F, 1, T), and its memory order, time-major, is the
stream's. The mapper tracks which ONNX tensors are in HWC order (`hwc`). A Transpose is a layout
op when the data's order stays CHW or HWC (it may switch between them, as a Conv1d's (1, C, L)
output transposed to an LSTM's (1, L, C) input does), and a channel shuffle is a "permute";
one that reorders data otherwise is refused.
"""

import numpy as np
from onnx import helper

from .. import golden, ops
from ..errors import UserError
from ..ir import Layer, Shape


__all__ = ["map_nodes", "ir_shape"]


_LAYOUT_OPS = ("Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Dropout")
_VIEW_OPS = (*_LAYOUT_OPS, "Transpose")


def ir_shape(onnx_shape):
    """(C, H, W) of an ONNX tensor shape whose batch dimension is 1; None if not a feature map."""
    dims = tuple(onnx_shape)
    if len(dims) == 4 and dims[0] == 1:
        return Shape(*dims[1:])
    if len(dims) == 3 and dims[0] == 1:
        return Shape(dims[1], 1, dims[2])
    if len(dims) == 2 and dims[0] == 1:
        return Shape(dims[1], 1, 1)
    if len(dims) == 1:
        return Shape(dims[0], 1, 1)
    return None


def _dilated(weight, dilations):
    """Conv weights (O, I, kh, kw) with dilations (dh, dw), or (dw,) for a 1-D conv lifted to
    (O, I, 1, kw): the kernel spanning ((kh-1)·dh+1, (kw-1)·dw+1) with zeros between the taps,
    which computes the same sums."""
    dh, dw = (1, *dilations) if len(dilations) == 1 else dilations
    if (dh, dw) == (1, 1):
        return weight
    o, i, kh, kw = weight.shape
    out = np.zeros((o, i, (kh - 1) * dh + 1, (kw - 1) * dw + 1), weight.dtype)
    out[:, :, ::dh, ::dw] = weight
    return out


def _nearest(size, scale, transform, rounding):
    """The input index ONNX's nearest Resize reads for each output index along an axis of
    `size` scaled by an integer `scale`."""
    y, out = np.arange(size * scale, dtype=np.float64), size * scale
    x = {"asymmetric": y / scale, "half_pixel": (y + 0.5) / scale - 0.5,
         "pytorch_half_pixel": (y + 0.5) / scale - 0.5 if out > 1 else 0 * y,
         "tf_half_pixel_for_nn": (y + 0.5) / scale,
         "align_corners": y * (size - 1) / max(out - 1, 1)}.get(transform)
    if x is None:
        return None
    index = {"round_prefer_floor": np.ceil(x - 0.5), "round_prefer_ceil": np.floor(x + 0.5),
             "floor": np.floor(x), "ceil": np.ceil(x)}.get(rounding)
    return None if index is None else np.clip(index, 0, size - 1).astype(np.int64)


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


class _Mapper:
    def __init__(self, model, path):
        self.model = model
        self.path = path
        self.layers = []
        self.alias = {model.input: model.input}     # ONNX tensor → IR tensor
        self.hwc = set()                           # ONNX tensors in HWC order
        self.stacks = {}                           # ONNX tensor → the ONNX tensors it stacks
        self.refused = {}                          # ONNX tensor → why it cannot be used
        dims = model.shapes[model.input]
        sequence = _sequence_input(model)
        if sequence is not None:
            shape, hwc = sequence
            if hwc:
                self.hwc.add(model.input)
        elif dims[0] != 1:
            raise UserError(f"{path}: input '{model.input}' has batch size {dims[0]}: dnnhw "
                            "builds batch-1 streaming accelerators, export with batch 1")
        else:
            shape = ir_shape(dims)
        if shape is None:
            raise UserError(f"{path}: input '{model.input}' has shape {dims}: dnnhw takes "
                            "(1, C, H, W), (1, C, L) or (1, N) inputs, or an LSTM's sequence")
        self.shapes = {model.input: shape}
        self.reference_output = model.reference   # the ONNX tensor the IR output equals
        self.notes = []
        self.tail = {model.output}                 # tensors only layout ops take to the output
        for node in reversed(model.nodes):
            if node.op_type in _VIEW_OPS and node.output[0] in self.tail:
                self.tail.add(node.input[0])

    # -- helpers ---------------------------------------------------------------------------

    def error(self, node, message):
        return UserError(f"{node.op_type} '{node.name}': {message}")

    def data(self, node, index=0):
        """IR name of a data input of `node` (not a constant)."""
        name = node.input[index]
        if name in self.model.constants:
            raise self.error(node, f"input '{name}' is a constant; dnnhw expects data here")
        if name in self.refused:
            raise self.error(node, self.refused[name])
        if name in self.stacks:
            raise self.error(node, f"input '{name}' stacks {len(self.stacks[name])} tensors on a "
                             "new axis; dnnhw supports only selecting one of them with Gather")
        return self.alias[name]

    def labels(self, name):
        """Which IR dimension ("c", "h", "w") each axis of ONNX tensor `name` holds, "" for the
        unit axes; None when the tensor splits or merges IR dimensions (a flattened map)."""
        shape = self.shapes[self.alias[name]]
        order = "hwc" if name in self.hwc else "chw"
        ir_dims = [d for d in order if getattr(shape, d) > 1]
        axes = [a for a, n in enumerate(self.model.shapes[name]) if n != 1]
        if [self.model.shapes[name][a] for a in axes] != [getattr(shape, d) for d in ir_dims]:
            return None
        labels = [""] * len(self.model.shapes[name])
        for a, d in zip(axes, ir_dims):
            labels[a] = d
        return labels

    def view(self, node, hwc=None):
        """Alias the output of a layout op to its input; `hwc` sets its order (default: kept)."""
        self.alias[node.output[0]] = self.data(node)
        if hwc is None:
            hwc = node.input[0] in self.hwc
        if hwc:
            self.hwc.add(node.output[0])

    def const(self, node, index, what):
        name = node.input[index] if index < len(node.input) else ""
        if not name:
            return None
        if name not in self.model.constants:
            raise self.error(node, f"{what} '{name}' must be a constant (an initializer)")
        return np.asarray(self.model.constants[name], dtype=np.float64)

    def feature_map(self, node, index=0):
        """IR shape of a data input that must be a feature map in its ONNX layout too."""
        name = node.input[index]
        shape = self.shapes[self.alias[name]]
        if name in self.hwc:
            raise self.error(node, f"input '{name}' of shape {self.model.shapes[name]} is a "
                             f"sequence or a channels-last map; {node.op_type} takes (1, C, H, W) "
                             "or (1, C, L) data")
        if ir_shape(self.model.shapes[name]) != shape:
            raise self.error(node, f"input '{name}' of shape {self.model.shapes[name]} is a "
                             f"reshaped {shape} feature map; dnnhw supports reshapes that only "
                             "flatten or add/remove unit dimensions before fully connected layers")
        return shape

    def out_shape(self, node):
        shape = ir_shape(self.model.shapes[node.output[0]])
        if shape is None:
            raise self.error(node, f"output shape {self.model.shapes[node.output[0]]} is not a "
                             "batch-1 feature map")
        return shape

    def emit(self, node, op, inputs, shape, hwc=False, output=None, name=None, **fields):
        """Append a layer computing ONNX tensor `output` (default: the node's first output)."""
        output = output or node.output[0]
        self.layers.append(Layer(name=name or node.name or output, op=op, inputs=inputs,
                                 output=output, **fields))
        self.alias[output] = output
        self.shapes[output] = shape
        if hwc:
            self.hwc.add(output)

    def spatial(self, node, rank, kernel, dilated=False):
        """kernel, stride, pads (top, left, bottom, right) of a conv or pool, 1-D lifted to 2-D;
        `dilated`: `kernel` already spans the dilation (a conv's zero-stuffed weights)."""
        n = rank - 2
        strides = list(_attr(node, "strides", [1] * n))
        if not dilated and any(d != 1 for d in _attr(node, "dilations", [1] * n)):
            raise self.error(node, "dilation other than 1 is unsupported")
        in_dims = self.model.shapes[node.input[0]][2:]
        auto_pad = _attr(node, "auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            totals = [max((-(-d // s) - 1) * s + k - d, 0) for d, s, k in zip(in_dims, strides, kernel)]
            small = [t // 2 for t in totals]
            begin = small if auto_pad == "SAME_UPPER" else [t - b for t, b in zip(totals, small)]
            pads = begin + [t - b for t, b in zip(totals, begin)]
        elif auto_pad == "VALID":
            pads = [0] * (2 * n)
        else:
            pads = list(_attr(node, "pads", [0] * (2 * n)))
        if n == 1:
            kernel, strides, pads = [1, *kernel], [1, *strides], [0, pads[0], 0, pads[1]]
        elif n != 2:
            raise self.error(node, f"{n}-D {node.op_type} is unsupported (1-D and 2-D only)")
        return tuple(kernel), tuple(strides), tuple(pads)

    def pool(self, node, ceil_extra_ok):
        rank = len(self.model.shapes[node.input[0]])
        kernel, stride, pads = self.spatial(node, rank, list(_attr(node, "kernel_shape")))
        in_shape, out_shape = self.feature_map(node), self.out_shape(node)
        # ceil_mode: the last window may run past the padding; pad further at the bottom/right
        extra_h = (out_shape.h - 1) * stride[0] + kernel[0] - (in_shape.h + pads[0] + pads[2])
        extra_w = (out_shape.w - 1) * stride[1] + kernel[1] - (in_shape.w + pads[1] + pads[3])
        if (extra_h > 0 or extra_w > 0) and not ceil_extra_ok:
            raise self.error(node, "ceil_mode windows that run past the padding are unsupported "
                             "with count_include_pad=1")
        pads = (pads[0], pads[1], pads[2] + max(extra_h, 0), pads[3] + max(extra_w, 0))
        return {"kernel": kernel, "stride": stride, "pads": pads}, out_shape

    def weight_format(self, node, index, channels):
        hint = self.model.weight_hints.get(node.input[index])
        if hint is None:
            return {}
        bits, frac, mult = hint
        return {"weight_format": (bits, np.broadcast_to(frac, (channels,)).copy(),
                                  np.broadcast_to(mult, (channels,)).copy())}

    def per_channel(self, node, value, name):
        """A constant operand of an elementwise op as one value per channel of input `name`."""
        onnx_shape = self.model.shapes[name]
        c, h, w = self.shapes[self.alias[name]]
        try:
            full = np.broadcast_to(value, onnx_shape)
        except ValueError:
            full = None
        if full is None or np.broadcast_shapes(value.shape, onnx_shape) != tuple(onnx_shape):
            raise self.error(node, f"constant of shape {value.shape} does not broadcast onto the "
                             f"data's shape {onnx_shape}")
        if name in self.hwc:
            chw = full.reshape(h, w, c).transpose(2, 0, 1)
        else:
            chw = full.reshape(c, h, w)
        if np.any(chw != chw[:, :1, :1]):
            raise self.error(node, "a constant operand that varies over space is unsupported "
                             "(only per-channel constants)")
        return chw[:, 0, 0].astype(np.float64)

    # -- ops -------------------------------------------------------------------------------

    def conv(self, node):
        weight = self.const(node, 1, "weight")
        bias = self.const(node, 2, "bias")
        rank = len(self.model.shapes[node.input[0]])
        if rank == 3:
            weight = weight[:, :, None, :]
        weight = _dilated(weight, _attr(node, "dilations", [1] * (rank - 2)))
        kernel = list(weight.shape[2:]) if rank == 4 else [weight.shape[3]]
        kernel, stride, pads = self.spatial(node, rank, kernel, dilated=True)
        c_out = weight.shape[0]
        self.feature_map(node)
        self.emit(node, "conv", [self.data(node)], self.out_shape(node),
                  attrs={"kernel": kernel, "stride": stride, "pads": pads,
                         "groups": _attr(node, "group", 1), "act": None,
                         **self.weight_format(node, 1, c_out)},
                  weight=weight, bias=np.zeros(c_out) if bias is None else bias)

    def conv_transpose(self, node):
        """ConvTranspose: zero insertion by the stride ("upsample", mode "zeros") when it is
        above 1, then the stride-1 convolution with the kernel flipped, its in and out channels
        swapped, and padded by k - 1 - pads (less at the bottom and right by the zeros the
        insertion put after the last pixel)."""
        weight, bias = self.const(node, 1, "weight"), self.const(node, 2, "bias")
        rank = len(self.model.shapes[node.input[0]])
        if rank not in (3, 4):
            raise self.error(node, f"{rank - 2}-D ConvTranspose is unsupported (1-D and 2-D only)")
        n = rank - 2
        if _attr(node, "output_shape") is not None:
            raise self.error(node, "output_shape is unsupported (give pads and output_padding)")
        auto_pad = _attr(node, "auto_pad", b"NOTSET")
        if (auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad) not in ("NOTSET", "VALID"):
            raise self.error(node, f"auto_pad {auto_pad!r} is unsupported (give pads)")
        lift = (lambda v: [1, *v]) if n == 1 else list
        groups = _attr(node, "group", 1)
        stride = lift(_attr(node, "strides", [1] * n))
        extra = list(_attr(node, "output_padding", [0] * n))
        extra = [0, *extra] if n == 1 else extra
        pads = list(_attr(node, "pads", [0] * (2 * n)))
        pads = [0, pads[0], 0, pads[1]] if n == 1 else pads
        if rank == 3:
            weight = weight[:, :, None, :]
        c_in, per_group, kh, kw = weight.shape
        c_out = per_group * groups
        weight = (weight.reshape(groups, c_in // groups, per_group, kh, kw).transpose(0, 2, 1, 3, 4)
                  .reshape(c_out, c_in // groups, kh, kw)[:, :, ::-1, ::-1])
        weight = _dilated(np.ascontiguousarray(weight), lift(_attr(node, "dilations", [1] * n)))
        kernel = weight.shape[2:]
        conv_pads = tuple(k - 1 - p for k, p in zip((*kernel, *kernel), pads))
        conv_pads = (*conv_pads[:2], conv_pads[2] + extra[0] - (stride[0] - 1),
                     conv_pads[3] + extra[1] - (stride[1] - 1))
        if min(conv_pads) < 0:
            raise self.error(node, f"pads {tuple(pads)} with kernel {tuple(kernel)}, strides "
                             f"{tuple(stride)} and output_padding {tuple(extra)} crop the output: "
                             "unsupported")
        x, shape = self.data(node), self.feature_map(node)
        if max(stride) > 1:
            zeros = f"{node.output[0]}:zeros"
            self.emit(node, "upsample", [x], Shape(shape.c, shape.h * stride[0], shape.w * stride[1]),
                      output=zeros, name=f"{node.name or node.output[0]}:zeros",
                      attrs={"scale": tuple(stride), "mode": "zeros"})
            x = zeros
        self.emit(node, "conv", [x], self.out_shape(node),
                  attrs={"kernel": tuple(kernel), "stride": (1, 1), "pads": conv_pads,
                         "groups": groups, "act": None},
                  weight=weight, bias=np.zeros(c_out) if bias is None else bias)

    def resize(self, node):
        """Resize (or Upsample) with nearest interpolation at integer scales: "upsample"."""
        rank = len(self.model.shapes[node.input[0]])
        dims_in, dims_out = self.model.shapes[node.input[0]], self.model.shapes[node.output[0]]
        mode = _attr(node, "mode", b"nearest")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if mode != "nearest":
            raise self.error(node, f"mode {mode!r} is unsupported (only nearest)")
        if rank not in (3, 4) or tuple(dims_out[:2]) != tuple(dims_in[:2]) or any(
                o % i for i, o in zip(dims_in[2:], dims_out[2:])):
            raise self.error(node, f"resizes {dims_in} to {dims_out}: only integer scales of the "
                             "spatial axes are supported")
        scale = [o // i for i, o in zip(dims_in[2:], dims_out[2:])]
        scale = [1, *scale] if rank == 3 else scale
        transform = _attr(node, "coordinate_transformation_mode", b"half_pixel")
        transform = transform.decode() if isinstance(transform, bytes) else transform
        rounding = _attr(node, "nearest_mode", b"round_prefer_floor")
        rounding = rounding.decode() if isinstance(rounding, bytes) else rounding
        if node.op_type == "Upsample":
            transform, rounding = "asymmetric", "floor"
        for size, s in zip(dims_in[2:], scale[-(rank - 2):]):
            if not np.array_equal(_nearest(size, s, transform, rounding), np.arange(size * s) // s):
                raise self.error(node, f"nearest resize with coordinate_transformation_mode "
                                 f"{transform!r} and nearest_mode {rounding!r} does not repeat "
                                 "each pixel: unsupported")
        self.feature_map(node)
        if scale == [1, 1]:
            self.view(node)
            return
        self.emit(node, "upsample", [self.data(node)], self.out_shape(node),
                  attrs={"scale": tuple(scale), "mode": "nearest"})

    def fc(self, node, weight, bias, weight_index):
        """A fully connected layer; `weight` (N_out, N_in) in ONNX (CHW-flattened) order."""
        x = self.data(node)
        shape = self.shapes[x]
        n_out, n_in = weight.shape
        if n_in != shape.size:
            raise self.error(node, f"weight takes {n_in} inputs, the data has {shape.size}")
        if node.input[0] not in self.hwc:       # ONNX flattens CHW, the stream is HWC
            weight = weight.reshape(n_out, *shape).transpose(0, 2, 3, 1).reshape(n_out, n_in)
        self.emit(node, "fc", [x], Shape(n_out, 1, 1),
                  attrs={"act": None, **self.weight_format(node, weight_index, n_out)},
                  weight=weight, bias=np.broadcast_to(bias, (n_out,)).astype(np.float64))

    def gemm(self, node):
        if _attr(node, "transA", 0):
            raise self.error(node, "transA=1 is unsupported")
        b = self.const(node, 1, "weight B")
        c = self.const(node, 2, "bias C")
        weight, alpha = (b if _attr(node, "transB", 0) else b.T), _attr(node, "alpha", 1.0)
        weight = weight if alpha == 1.0 else alpha * weight
        n_out = weight.shape[0]
        if c is not None and c.size not in (1, n_out):
            raise self.error(node, f"bias C of shape {c.shape} is unsupported: dnnhw adds one bias "
                             f"per output ({n_out}) to a batch-1 vector")
        bias = 0.0 if c is None else _attr(node, "beta", 1.0) * c.reshape(-1)
        self.fc(node, weight, bias, 1)

    def matmul(self, node):
        shape = self.model.shapes[node.input[0]]
        labels = self.labels(node.input[0]) if node.input[0] in self.hwc else None
        if labels and labels[-1] == "c" and len(shape) >= 2:
            self.time_distributed(node)
            return
        if int(np.prod(shape[:-1])) != 1:
            raise self.error(node, f"MatMul on data of shape {shape} is unsupported: dnnhw maps "
                             "MatMul of a (1, N) vector by a constant matrix to a fully connected layer")
        b = self.const(node, 1, "weight")
        if b.ndim != 2:
            raise self.error(node, f"weight of shape {b.shape} is not a matrix")
        self.fc(node, b.T, 0.0, 1)

    def time_distributed(self, node):
        """MatMul of a sequence (…, T, F) by a constant (F, N): the same fully connected layer at
        every step, a 1×1 convolution of the (F, 1, T) sequence into (N, 1, T)."""
        b = self.const(node, 1, "weight")
        x = self.data(node)
        shape = self.shapes[x]
        if b.ndim != 2 or b.shape[0] != shape.c:
            raise self.error(node, f"weight of shape {b.shape} does not take {shape.c} features")
        n_out = b.shape[1]
        self.emit(node, "conv", [x], Shape(n_out, shape.h, shape.w), hwc=True,
                  attrs={"kernel": (1, 1), "stride": (1, 1), "pads": (0, 0, 0, 0), "groups": 1,
                         "act": None, **self.weight_format(node, 1, n_out)},
                  weight=b.T.reshape(n_out, shape.c, 1, 1).copy(), bias=np.zeros(n_out))

    def batchnormalization(self, node):
        if len([o for o in node.output if o]) > 1 or _attr(node, "training_mode", 0):
            raise self.error(node, "training-mode BatchNormalization is unsupported")
        scale, offset, mean, var = (self.const(node, i, n) for i, n in
                                    ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
        a = scale / np.sqrt(var + _attr(node, "epsilon", 1e-5))
        self.affine(node, node.input[0], a, offset - mean * a)

    def affine(self, node, name, scale, shift):
        x = self.alias[name]
        shape = self.shapes[x]
        self.emit(node, "affine", [x], shape, hwc=name in self.hwc,
                  attrs={"scale": np.broadcast_to(scale, (shape.c,)).astype(np.float64),
                         "shift": np.broadcast_to(shift, (shape.c,)).astype(np.float64)})

    def elementwise(self, node):
        op = node.op_type
        consts = [name in self.model.constants for name in node.input[:2]]
        if not any(consts):
            if op == "Mul":
                self.product(node)
                return
            if op != "Add":
                raise self.error(node, f"{op} of two data tensors is unsupported (Add and Mul "
                                 "are supported)")
            a, b = self.data(node, 0), self.data(node, 1)
            if self.shapes[a] != self.shapes[b] or (self.model.shapes[node.input[0]]
                                                    != self.model.shapes[node.input[1]]):
                raise self.error(node, f"Add of shapes {self.model.shapes[node.input[0]]} and "
                                 f"{self.model.shapes[node.input[1]]}: broadcasting is unsupported")
            if (node.input[0] in self.hwc) != (node.input[1] in self.hwc):
                raise self.error(node, "adds a sequence (or channels-last map) to a feature map")
            self.emit(node, "add", [a, b], self.shapes[a], hwc=node.input[0] in self.hwc)
            return
        if all(consts):
            raise self.error(node, "constant operation left after folding")
        d = consts.index(False)
        name = node.input[d]
        c = self.per_channel(node, self.const(node, 1 - d, "operand"), name)
        if op == "Add":
            self.affine(node, name, 1.0, c)
        elif op == "Sub":
            self.affine(node, name, 1.0, -c) if d == 0 else self.affine(node, name, -1.0, c)
        elif op == "Mul":
            self.affine(node, name, c, 0.0)
        elif op == "Div" and d == 0:
            self.affine(node, name, 1.0 / c, 0.0)
        else:
            raise self.error(node, f"{op} with the data as divisor is unsupported")

    def product(self, node):
        """Mul of two data tensors: of one shape, or a feature map and a (1, C, 1, 1) vector,
        whichever operand it is ("mul", broadcast)."""
        inputs = list(node.input[:2])
        dims = [tuple(self.model.shapes[name]) for name in inputs]
        shapes = [self.shapes[self.alias[name]] for name in inputs]
        if any(name in self.hwc for name in inputs):
            raise self.error(node, "Mul of sequences (or channels-last maps) is unsupported")
        if dims[0] == dims[1]:
            broadcast = False
        elif shapes[0].c == shapes[1].c and min(s.h * s.w for s in shapes) == 1 and len(
                {len(d) for d in dims}) == 1:
            broadcast = True
            if shapes[0].h * shapes[0].w == 1:
                inputs, shapes = inputs[::-1], shapes[::-1]     # the map first
        else:
            raise self.error(node, f"Mul of shapes {dims[0]} and {dims[1]}: only equal shapes, "
                             "or a map and a per-channel (1, C, 1, 1) vector, are supported")
        for k, name in enumerate(inputs):
            if name not in self.hwc and ir_shape(self.model.shapes[name]) != shapes[k]:
                raise self.error(node, f"input '{name}' of shape {self.model.shapes[name]} is a "
                                 "reshaped feature map: unsupported")
        self.emit(node, "mul", [self.alias[name] for name in inputs], shapes[0],
                  attrs={"broadcast": True} if broadcast else {})

    def hard_swish(self, node):
        """HardSwish x · HardSigmoid(x) (alpha 1/6, beta 1/2): the gate, then "mul"."""
        gate = f"{node.output[0]}:gate"
        x = self.data(node)
        self.emit(node, "hard_sigmoid", [x], self.shapes[x], output=gate,
                  name=f"{node.name or node.output[0]}:gate", attrs={"alpha": 1 / 6, "beta": 0.5})
        self.emit(node, "mul", [x, gate], self.shapes[x], hwc=node.input[0] in self.hwc)

    def activation(self, node, op, **attrs):
        x = self.data(node)
        self.emit(node, op, [x], self.shapes[x], hwc=node.input[0] in self.hwc, attrs=attrs)

    def unary(self, op, attrs):
        """The handler of an ONNX node that maps to one elementwise `op` of the registry
        (`Op.onnx`), its attributes read by `attrs`."""
        return lambda node: self.activation(node, op, **attrs(lambda name, default=None:
                                                                 _attr(node, name, default)))

    def clip(self, node):
        if self.model.opset >= 11:
            lo, hi = self.const(node, 1, "min"), self.const(node, 2, "max")
        else:
            lo, hi = _attr(node, "min"), _attr(node, "max")
        lo = None if lo is None else float(lo)
        hi = None if hi is None else float(hi)
        if lo == 0.0 and hi is None:
            self.activation(node, "relu")
        else:
            self.activation(node, "clamp", lo=lo, hi=hi)

    def maxpool(self, node):
        if len([o for o in node.output if o]) > 1:
            raise self.error(node, "the Indices output is unsupported")
        attrs, shape = self.pool(node, ceil_extra_ok=True)
        self.emit(node, "maxpool", [self.data(node)], shape, attrs=attrs)

    def averagepool(self, node):
        include_pad = bool(_attr(node, "count_include_pad", 0))
        attrs, shape = self.pool(node, ceil_extra_ok=not include_pad)
        in_shape = self.feature_map(node)
        if tuple(attrs["kernel"]) == (in_shape.h, in_shape.w) and not any(attrs["pads"]):
            self.global_pool(node, "global_avgpool")    # one window, the whole map: an accumulator
            return
        divisors = golden.avg_divisors(self.feature_map(node), {**attrs, "count_include_pad": include_pad})
        if not divisors.all():
            raise self.error(node, "a window lies wholly in the padding and count_include_pad=0: "
                             "its average is undefined")
        self.emit(node, "avgpool", [self.data(node)], shape,
                  attrs={**attrs, "count_include_pad": include_pad})

    def global_pool(self, node, op):
        shape = self.feature_map(node)
        if op == "global_avgpool":
            self.emit(node, op, [self.data(node)], Shape(shape.c, 1, 1))
        else:
            self.emit(node, "maxpool", [self.data(node)], Shape(shape.c, 1, 1),
                      attrs={"kernel": (shape.h, shape.w), "stride": (1, 1), "pads": (0, 0, 0, 0)})

    def reduce(self, node, op):
        rank = len(self.model.shapes[node.input[0]])
        axes = self.const(node, 1, "axes") if len(node.input) > 1 else _attr(node, "axes")
        axes = None if axes is None else sorted(int(a) % rank for a in np.atleast_1d(axes))
        if axes != list(range(2, rank)):
            raise self.error(node, f"reduction over axes {axes} of a rank-{rank} tensor is "
                             "unsupported (only over all spatial axes, i.e. global pooling)")
        self.global_pool(node, op)

    def concat(self, node):
        rank = len(self.model.shapes[node.output[0]])
        axis = _attr(node, "axis") % rank
        if all(self.model.shapes[name][axis] == 1 and (self.labels(name) or [""] * rank)[axis] == ""
               and name not in self.model.constants for name in node.input):
            self.stacks[node.output[0]] = list(node.input)  # e.g. the Y_h of stacked LSTMs
            return
        if axis != 1:
            raise self.error(node, f"concatenation over axis {_attr(node, 'axis')} is unsupported "
                             "(only over channels, axis 1)")
        names = [self.data(node, i) for i in range(len(node.input))]
        shapes = [self.feature_map(node, i) for i in range(len(node.input))]
        if len({(s.h, s.w) for s in shapes}) != 1:
            raise self.error(node, "inputs differ in height or width")
        self.emit(node, "concat", names, Shape(sum(s.c for s in shapes), shapes[0].h, shapes[0].w))

    def pad(self, node):
        mode = _attr(node, "mode", b"constant")
        pads = self.const(node, 1, "pads") if self.model.opset >= 11 else _attr(node, "pads")
        value = self.const(node, 2, "constant_value") if self.model.opset >= 11 else _attr(node, "value", 0.0)
        pads = [int(p) for p in np.asarray(pads).reshape(-1)]
        rank = len(pads) // 2
        begin, end = pads[:rank], pads[rank:]
        if (mode not in (b"constant", "constant") or (value is not None and float(value) != 0)
                or any(begin[:2]) or any(end[:2]) or min(pads) < 0 or rank not in (3, 4)):
            raise self.error(node, "only zero padding of the spatial dimensions is supported")
        if rank == 3:
            begin, end = [0, 0, 0, *begin[2:]], [0, 0, 0, *end[2:]]
        self.feature_map(node)
        self.emit(node, "pad", [self.data(node)], self.out_shape(node),
                  attrs={"pads": (begin[2], begin[3], end[2], end[3])})

    def softmax(self, node):
        """A final (Log)Softmax over the classes is left to the host: the accelerator outputs
        its input, the logits, whose largest element is the same class."""
        shape = self.model.shapes[node.input[0]]
        axis = _attr(node, "axis", -1) % len(shape)
        if node.output[0] not in self.tail or int(np.prod(shape)) != shape[axis]:
            raise self.error(node, "Softmax is supported only as the network's last op, over "
                             "its classes (the accelerator outputs the logits)")
        self.reference_output = node.input[0]
        self.notes.append(f"the final {node.op_type} '{node.name}' runs on the host: the "
                          "accelerator outputs its input (the logits); the top-1 class is the same")
        self.alias[node.output[0]] = self.data(node)

    def layout(self, node):
        """Flatten, Reshape, Squeeze, Unsqueeze, Identity, Dropout: the data passes unchanged."""
        if node.op_type == "Dropout" and len([o for o in node.output if o]) > 1:
            raise self.error(node, "the mask output is unsupported")
        self.view(node)

    def transpose(self, node):
        """A Transpose that keeps the data's order (CHW or HWC) or switches between them."""
        name = node.input[0]
        labels = self.labels(name)
        perm = _attr(node, "perm") or list(reversed(range(len(self.model.shapes[name]))))
        shape = self.shapes[self.data(node)]
        moved = None if labels is None else [d for d in (labels[p] for p in perm) if d]
        orders = {order: [d for d in order if getattr(shape, d) > 1] for order in ("chw", "hwc")}
        keep = "hwc" if name in self.hwc else "chw"
        if moved == orders[keep]:
            self.view(node)
        elif moved == orders["hwc"] or moved == orders["chw"]:
            self.view(node, hwc=moved == orders["hwc"])
        elif not self.channel_shuffle(node, perm):
            raise self.error(node, f"perm {list(perm)} of shape {self.model.shapes[name]} reorders "
                             "the data: unsupported (a Transpose may only move unit axes, or "
                             "turn channels-first data into a sequence)")

    def channel_shuffle(self, node, perm):
        """A Transpose swapping the two axes a Reshape split the channels into, (1, g, C/g, H, W)
        → (1, C/g, g, H, W): ShuffleNet's channel shuffle, a "permute" of the channels that
        `canonical` absorbs into the layers after it. False if `node` is not one."""
        name = node.input[0]
        dims = self.model.shapes[name]
        shape = self.shapes[self.data(node)]
        spatial = (shape.h, shape.w) if len(dims) == 5 else (shape.w,)
        swap = [0, 2, 1, *range(3, len(dims))]
        if (name in self.hwc or len(dims) not in (4, 5) or list(perm) != swap or dims[0] != 1
                or dims[1] * dims[2] != shape.c or tuple(dims[3:]) != spatial
                or (len(dims) == 4 and shape.h != 1)):
            return False
        groups, k = dims[1], np.arange(shape.c)
        self.emit(node, "permute", [self.data(node)], shape,
                  attrs={"order": k % groups * (shape.c // groups) + k // groups})
        return True

    def split(self, node):
        """Split over channels: one "slice" layer an output."""
        name = node.input[0]
        rank = len(self.model.shapes[name])
        axis = _attr(node, "axis", 0) % rank
        shape = self.feature_map(node)
        if axis != 1:
            raise self.error(node, f"split over axis {_attr(node, 'axis', 0)} is unsupported (only "
                             "over channels, axis 1)")
        sizes = self.const(node, 1, "split") if len(node.input) > 1 else None
        sizes = _attr(node, "split") if sizes is None else sizes
        if sizes is None:       # equal parts, the last smaller (opset 18's num_outputs)
            part = -(-shape.c // len(node.output))
            sizes = [min(part, shape.c - part * k) for k in range(len(node.output))]
        sizes = [int(size) for size in sizes]
        if min(sizes) < 1 or sum(sizes) != shape.c:
            raise self.error(node, f"split sizes {sizes} must be positive and add up to the "
                             f"{shape.c} channels")
        start = 0
        for k, (output, size) in enumerate(zip(node.output, sizes)):
            if output:
                self.emit(node, "slice", [self.data(node)], Shape(size, shape.h, shape.w),
                          output=output, name=f"{node.name or output}:{k}",
                          attrs={"start": start, "stop": start + size})
            start += size

    def gather(self, node):
        """Gather of one of stacked tensors, of a unit axis, or of a sequence's last step."""
        name, shape = node.input[0], self.model.shapes[node.input[0]]
        axis = _attr(node, "axis", 0) % len(shape)
        index = self.const(node, 1, "indices")
        if index is None or index.size != 1:
            raise self.error(node, "only Gather of one constant index is supported")
        index = int(index.reshape(-1)[0]) % shape[axis]
        if name in self.stacks:
            picked = self.stacks[name][index]
            self.alias[node.output[0]] = self.alias[picked]
            if picked in self.hwc:
                self.hwc.add(node.output[0])
        elif shape[axis] == 1:
            self.view(node)
        else:
            self.select_last(node, axis, index)

    def slice(self, node):
        """A Slice keeping everything (a layout op) or only a sequence's last time step."""
        if self.model.opset < 10:
            raise self.error(node, "Slice before opset 10 is unsupported")
        shape = self.model.shapes[node.input[0]]
        starts, ends = self.const(node, 1, "starts"), self.const(node, 2, "ends")
        axes = self.const(node, 3, "axes")
        steps = self.const(node, 4, "steps")
        axes = range(len(starts)) if axes is None else [int(a) % len(shape) for a in axes]
        steps = np.ones(len(starts)) if steps is None else steps
        cut = []
        for axis, start, end, step in zip(axes, starts, ends, steps):
            kept = range(*slice(int(start), int(min(end, 2 ** 62)), int(step)).indices(shape[axis]))
            if list(kept) != list(range(shape[axis])):
                cut.append((axis, list(kept)))
        labels = self.labels(node.input[0]) if node.input[0] not in self.hwc else None
        if not cut:
            self.view(node)
        elif (len(cut) == 1 and labels and labels[cut[0][0]] == "c" and cut[0][1]
              and np.all(np.diff(cut[0][1]) == 1)):
            kept, shape = cut[0][1], self.feature_map(node)
            self.emit(node, "slice", [self.data(node)], Shape(len(kept), shape.h, shape.w),
                      attrs={"start": kept[0], "stop": kept[-1] + 1})
        elif len(cut) == 1 and len(cut[0][1]) == 1:
            self.select_last(node, cut[0][0], cut[0][1][0])
        else:
            raise self.error(node, "only a Slice of consecutive channels, or one that keeps one "
                             "time step of a sequence (the last), is supported")

    def select_last(self, node, axis, index):
        """Gather/Slice of step `index` on `axis` of ONNX tensor node.input[0]: the last step of
        a sequence."""
        name = node.input[0]
        labels = self.labels(name)
        x = self.data(node)
        shape = self.shapes[x]
        if name not in self.hwc or labels is None or labels[axis] != "w" or shape.h != 1:
            raise self.error(node, f"selects along axis {axis} of {self.model.shapes[name]}: "
                             "unsupported (only the last time step of a sequence)")
        if index != shape.w - 1:
            raise self.error(node, f"selects time step {index} of {shape.w}: only the last "
                             "step of a sequence is supported")
        self.emit(node, "last_step", [x], Shape(shape.c, 1, 1))

    def lstm(self, node):
        """A forward LSTM over a sequence; Y is the (hidden, 1, T) sequence, Y_h its last step."""
        hidden = _attr(node, "hidden_size")
        direction = _attr(node, "direction", b"forward")
        direction = direction.decode() if isinstance(direction, bytes) else direction
        if direction != "forward":
            raise self.error(node, f"direction '{direction}' is unsupported (forward LSTMs only)")
        acts = [a.decode() if isinstance(a, bytes) else a for a in _attr(node, "activations", [])]
        if acts and [a.lower() for a in acts] != ["sigmoid", "tanh", "tanh"]:
            raise self.error(node, f"activations {acts} are unsupported (Sigmoid, Tanh, Tanh only)")
        for name, default in (("clip", None), ("input_forget", 0)):
            if _attr(node, name, default) != default:
                raise self.error(node, f"attribute {name}={_attr(node, name)} is unsupported")
        if len(node.input) > 7 and node.input[7]:
            raise self.error(node, "peephole weights (input P) are unsupported")
        layout = _attr(node, "layout", 0)
        x_shape = self.model.shapes[node.input[0]]
        steps, n_in = (x_shape[1], x_shape[2]) if layout else (x_shape[0], x_shape[2])
        x = self.data(node)
        if self.labels(node.input[0]) is None or self.shapes[x] != Shape(n_in, 1, steps) or (
                steps > 1 and n_in > 1 and node.input[0] not in self.hwc):
            raise self.error(node, f"input '{node.input[0]}' of shape {x_shape} is not a sequence "
                             f"of {steps} steps of {n_in} features in time-major order")
        if len(node.input) > 4 and node.input[4]:
            lens = self.const(node, 4, "sequence_lens")
            if np.any(lens != steps):
                raise self.error(node, f"sequence_lens {lens.tolist()} differ from the {steps} "
                                 "steps of the input: unsupported")
        w, r = self.const(node, 1, "W")[0], self.const(node, 2, "R")[0]
        hidden = hidden or r.shape[-1]          # the attribute is optional: R is (4H, H)
        b = self.const(node, 3, "B")
        bias = np.zeros(4 * hidden) if b is None else b[0, :4 * hidden] + b[0, 4 * hidden:]
        states = {}
        for index, key in ((5, "h0"), (6, "c0")):
            value = self.const(node, index, f"initial state {key}")
            states[key] = None if value is None or not value.any() else value.reshape(hidden)
        outputs = list(node.output) + [""] * (3 - len(node.output))
        sequence = outputs[0] or f"{node.name}.Y"
        self.emit(node, "lstm", [x], Shape(hidden, 1, steps), hwc=True, output=sequence,
                  attrs={"hidden": hidden, "last": False, **states},
                  weight=np.concatenate([w, r], axis=1), bias=bias)
        if outputs[1]:
            self.emit(node, "last_step", [sequence], Shape(hidden, 1, 1), output=outputs[1],
                      name=f"{node.name}.Y_h")
        if outputs[2]:
            self.refused[outputs[2]] = (f"the cell state output Y_c of LSTM '{node.name}' is "
                                        "unsupported (only Y and Y_h)")

    def map(self, node):
        op = node.op_type
        handlers = {
            "Conv": self.conv, "ConvTranspose": self.conv_transpose, "Resize": self.resize,
            "Upsample": self.resize, "Gemm": self.gemm, "MatMul": self.matmul,
            "BatchNormalization": self.batchnormalization,
            "Add": self.elementwise, "Sub": self.elementwise, "Mul": self.elementwise,
            "Div": self.elementwise,
            "Clip": self.clip, "HardSwish": self.hard_swish,
            "MaxPool": self.maxpool, "AveragePool": self.averagepool,
            "GlobalAveragePool": lambda n: self.global_pool(n, "global_avgpool"),
            "GlobalMaxPool": lambda n: self.global_pool(n, "global_maxpool"),
            "ReduceMean": lambda n: self.reduce(n, "global_avgpool"),
            "ReduceMax": lambda n: self.reduce(n, "global_maxpool"),
            "Concat": self.concat, "Pad": self.pad, "Transpose": self.transpose,
            "Gather": self.gather, "Slice": self.slice, "Split": self.split, "LSTM": self.lstm,
            "Softmax": self.softmax, "LogSoftmax": self.softmax,
            **{layout_op: self.layout for layout_op in _LAYOUT_OPS},
            **{onnx_op: self.unary(name, attrs) for onnx_op, (name, attrs) in ops.unary().items()},
        }
        if node.domain not in ("", "ai.onnx") or op not in handlers:
            inputs = ", ".join(name or "''" for name in node.input)
            raise UserError(f"unsupported op '{op}' at node '{node.name}' (inputs: {inputs})")
        handlers[op](node)


def _sequence_input(model):
    """(IR shape, hwc) of the model input when it reaches an LSTM's input X through layout ops
    (a sequence (I, 1, T), HWC unless an odd number of Transposes swap time and features on the
    way), else None."""
    consumers = {}
    for node in model.nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    name, swapped = model.input, False
    while len(consumers.get(name, [])) == 1:
        node = consumers[name][0]
        if node.op_type == "LSTM" and node.input[0] == name:
            shape = model.shapes[name]
            layout = _attr(node, "layout", 0)
            if model.symbolic_first and not layout and name == model.input:
                raise UserError(f"input '{model.input}' has a dynamic sequence length (its first "
                                f"axis, LSTM '{node.name}''s time axis): export with a fixed "
                                "sequence length")
            steps, n_in = (shape[1], shape[2]) if layout else (shape[0], shape[2])
            return Shape(n_in, 1, steps), not swapped
        if node.op_type not in _VIEW_OPS:
            return None
        if node.op_type == "Transpose":
            big = [a for a, n in enumerate(model.shapes[name]) if n != 1]
            perm = list(_attr(node, "perm") or reversed(range(len(model.shapes[name]))))
            if len(big) == 2 and perm.index(big[0]) > perm.index(big[1]):
                swapped = not swapped
        name = node.output[0]
    return None


def map_nodes(model, path):
    """The mapper after mapping every node: its layers (with the temporary ops "affine" and
    "pad"), IR shapes, ONNX → IR aliases, reference output and notes."""
    mapper = _Mapper(model, path)
    for index, node in enumerate(model.nodes):
        if not node.name:
            node.name = f"{node.op_type}_{index}"
        mapper.map(node)
    return mapper
