"""Rewrite mapped layers into canonical form.

- A channel shuffle ("permute") costs nothing: it moves past the layers that treat channels
  alike (pools, activations, per-channel affines, depthwise convolutions, adds, concatenations,
  slices), which take their per-channel parameters reordered, into the first conv or fc layer,
  whose weights take the channels in the order they come (`_absorb_permutes`).
- A zero Pad folds into the Conv (or AveragePool) it feeds.
- A per-channel affine (BatchNormalization, or Add/Sub/Mul/Div by a constant) folds into the
  conv or fc layer before it; one that cannot becomes a depthwise 1×1 convolution.
- ReLU, clamp (ReLU6, Clip) and LeakyReLU after a conv or fc layer become its fused activation.
- The last step of an LSTM's sequence, when nothing else reads the sequence, makes the LSTM
  output only its last step.
- Short branches first: of the layers ready to run, one whose output only joins other tensors
  (a residual block's projection, an Inception branch's 1×1 conv) comes before the rest, so that
  the tensor it reads dies early and a partition can cut the long branch (`dnnhw.partition`).

Folding happens only where the intermediate tensor has no other reader and is not the output.
"""


import numpy as np

from ..errors import UserError
from ..ir import ACTIVATIONS, Layer, Shape


__all__ = ["canonicalize"]


def canonicalize(layers, shapes, output):
    layers = list(layers)
    _prune(layers, output)
    _fold_last_steps(layers, output)
    _absorb_permutes(layers, shapes, output)
    _fold_pads(layers, output)
    _fold_affines(layers, output)
    _fuse_activations(layers, output)
    _prune(layers, output)
    return _short_branches_first(layers)


def _short_branches_first(layers):
    """`layers` in a topological order that runs, of the layers whose inputs are ready, first
    one whose output is read only by joins (layers of several inputs), else the first in
    the given order."""
    written = {layer.output for layer in layers}
    readers = {}
    for layer in layers:
        for t in layer.inputs:
            readers.setdefault(t, []).append(layer)
    done, todo, out = set(), list(layers), []
    while todo:
        ready = [l for l in todo if all(t not in written or t in done for t in l.inputs)]
        joins_only = [l for l in ready
                      if readers.get(l.output) and all(len(r.inputs) > 1 for r in readers[l.output])]
        layer = (joins_only or ready)[0]
        todo.remove(layer)
        done.add(layer.output)
        out.append(layer)
    return out


def _sole_reader(layers, tensor, output):
    readers = [layer for layer in layers if tensor in layer.inputs]
    return readers[0] if len(readers) == 1 and tensor != output else None


def _producer(layers, tensor, output):
    """The layer writing `tensor` if it is the tensor's only use, else None."""
    if tensor == output or sum(tensor in layer.inputs for layer in layers) != 1:
        return None
    return next((layer for layer in layers if layer.output == tensor), None)


def _fold_last_steps(layers, output):
    for select in [layer for layer in layers if layer.op == "last_step"]:
        producer = _producer(layers, select.inputs[0], output)
        if producer is None or producer.op != "lstm":
            raise UserError(f"'{select.name}' selects the last time step of '{select.inputs[0]}': "
                            "supported only when nothing else reads an LSTM's output sequence")
        producer.attrs["last"] = True
        producer.output = select.output
        layers.remove(select)


#: Ops that compute each channel alone: a permute of their input is one of their output.
_CHANNELWISE = {"affine", "pad", "maxpool", "avgpool", "global_avgpool", "global_maxpool",
                *ACTIVATIONS, "sigmoid", "tanh", "hard_sigmoid"}


def _absorb_permutes(layers, shapes, output):
    """Move every "permute" (attrs["order"]: output channel k is input channel order[k]) down
    the graph until a conv or fc layer absorbs it into its weights (`_past`)."""
    while True:
        permute = next((layer for layer in layers if layer.op == "permute"), None)
        if permute is None:
            return
        if permute.output == output:
            raise UserError(f"channel shuffle '{permute.name}' reorders the network's output: "
                            "unsupported (a shuffle must reach a Conv or Gemm, which takes the "
                            "channels in any order)")
        for reader in [layer for layer in layers if permute.output in layer.inputs]:
            if any(layer is reader for layer in layers):     # an add or concat of two
                # permutes moves past both
                _past(layers, shapes, permute, reader)
        layers.remove(permute)


def _past(layers, shapes, permute, reader):
    """Rewrite `reader` to read the channels in the order `permute` takes them in."""
    x, order = permute.inputs[0], permute.attrs["order"]
    inverse = np.argsort(order)
    direct = [x if t == permute.output else t for t in reader.inputs]
    if np.array_equal(order, np.arange(order.size)):
        reader.inputs = direct
    elif reader.op == "permute":
        reader.inputs, reader.attrs["order"] = direct, order[reader.attrs["order"]]
    elif reader.op == "conv" and reader.attrs["groups"] == 1:
        reader.weight, reader.inputs = reader.weight[:, inverse], direct
    elif reader.op == "fc":
        n_out = reader.weight.shape[0]
        reader.weight = reader.weight.reshape(n_out, -1, order.size)[:, :, inverse].reshape(n_out, -1)
        reader.inputs = direct
    elif reader.op in _CHANNELWISE or _depthwise(reader, order.size):
        _reorder_params(reader, inverse)
        _then_permute(layers, shapes, reader, direct, order)
    elif reader.op in ("add", "concat"):
        sources, orders = [], []
        for t in reader.inputs:
            producer = next((l for l in layers if l.output == t and l.op == "permute"), None)
            sources.append(t if producer is None else producer.inputs[0])
            orders.append(np.arange(shapes[t].c) if producer is None else producer.attrs["order"])
        if reader.op == "add" and not all(np.array_equal(o, order) for o in orders):
            raise UserError(f"Add '{reader.name}' adds tensors whose channels are shuffled "
                            "differently: unsupported")
        offsets = np.cumsum([0] + [o.size for o in orders[:-1]])
        joined = order if reader.op == "add" else np.concatenate(
            [o + offset for o, offset in zip(orders, offsets)])
        _then_permute(layers, shapes, reader, sources, joined)
    elif reader.op == "slice":
        _slice_past(layers, shapes, reader, x, order)
    else:
        raise UserError(f"channel shuffle '{permute.name}' feeds '{reader.name}' ({reader.op}), "
                        "which needs its channels in order: unsupported")


def _depthwise(layer, channels):
    return (layer.op == "conv" and layer.attrs["groups"] == channels
            and layer.weight.shape[0] == channels)


def _reorder_params(layer, inverse):
    """Per-channel parameters of a channelwise layer for its input's channels reordered."""
    c = inverse.size
    if layer.weight is not None:
        layer.weight = layer.weight[inverse]
    if layer.bias is not None:
        layer.bias = layer.bias[inverse]
    for key, value in layer.attrs.items():
        if isinstance(value, np.ndarray) and value.shape[:1] == (c,):
            layer.attrs[key] = value[inverse]
        elif key == "weight_format":
            bits, frac, mult = value
            layer.attrs[key] = (bits, np.asarray(frac)[inverse], np.asarray(mult)[inverse])


def _then_permute(layers, shapes, layer, inputs, order):
    """`layer` on `inputs` (its inputs' sources, before their shuffles), writing a new tensor,
    then a permute of it by `order` to the tensor `layer` wrote."""
    permuted = layer.output
    layer.inputs, layer.output = inputs, f"{permuted}:unshuffled"
    shapes[layer.output] = shapes[permuted]
    layers.insert(layers.index(layer) + 1, Layer(name=f"{layer.name}:shuffle", op="permute",
                                                 inputs=[layer.output], output=permuted,
                                                 attrs={"order": order}))


def _slice_past(layers, shapes, layer, x, order):
    """A slice of channels `start` to `stop` of shuffled `x`: the slices of `x` that hold them
    (each run of consecutive channels), concatenated, then permuted."""
    kept = order[layer.attrs["start"]:layer.attrs["stop"]]
    chosen = np.sort(kept)
    breaks = np.flatnonzero(np.diff(chosen) != 1) + 1
    runs = [(int(run[0]), int(run[-1]) + 1) for run in np.split(chosen, breaks)]
    at = layers.index(layer)
    h, w = shapes[x].h, shapes[x].w
    pieces = []
    for k, (start, stop) in enumerate(runs):
        piece = f"{layer.output}:run{k}" if len(runs) > 1 else f"{layer.output}:unshuffled"
        layers.insert(at, Layer(name=f"{layer.name}:run{k}", op="slice", inputs=[x], output=piece,
                                attrs={"start": start, "stop": stop}))
        shapes[piece] = Shape(stop - start, h, w)
        pieces.append(piece)
        at += 1
    if len(runs) > 1:
        layers.insert(at, Layer(name=f"{layer.name}:join", op="concat", inputs=pieces,
                                output=f"{layer.output}:unshuffled"))
        shapes[f"{layer.output}:unshuffled"] = shapes[layer.output]
        at += 1
    layers[at] = Layer(name=f"{layer.name}:shuffle", op="permute",
                       inputs=[f"{layer.output}:unshuffled"], output=layer.output,
                       attrs={"order": np.searchsorted(chosen, kept)})


def _fold_pads(layers, output):
    for pad in [layer for layer in layers if layer.op == "pad"]:
        reader = _sole_reader(layers, pad.output, output)
        if reader is not None and reader.op == "avgpool" and not any(reader.attrs["pads"]):
            reader.attrs["count_include_pad"] = True     # padded zeros count in the average
        elif reader is None or reader.op != "conv":
            raise UserError(f"Pad '{pad.name}': padding is supported only in front of a Conv or "
                            "an unpadded AveragePool")
        reader.attrs["pads"] = tuple(a + b for a, b in zip(reader.attrs["pads"], pad.attrs["pads"]))
        reader.inputs = list(pad.inputs)
        layers.remove(pad)


def _fold_affines(layers, output):
    for affine in [layer for layer in layers if layer.op == "affine"]:
        scale, shift = affine.attrs["scale"], affine.attrs["shift"]
        producer = _producer(layers, affine.inputs[0], output)
        if producer is not None and producer.op in ("conv", "fc") and producer.act is None:
            producer.weight = producer.weight * scale.reshape(-1, *[1] * (producer.weight.ndim - 1))
            producer.bias = producer.bias * scale + shift
            producer.attrs.pop("weight_format", None)   # the QDQ weights changed
            producer.output = affine.output
            layers.remove(affine)
        else:
            c = scale.size
            affine.op = "conv"
            affine.attrs = {"kernel": (1, 1), "stride": (1, 1), "pads": (0, 0, 0, 0),
                            "groups": c, "act": None}
            affine.weight = scale.reshape(c, 1, 1, 1).copy()
            affine.bias = shift.copy()


def _fuse_activations(layers, output):
    for act in [layer for layer in layers if layer.op in ACTIVATIONS]:
        producer = _producer(layers, act.inputs[0], output)
        if producer is not None and producer.op in ("conv", "fc") and producer.act is None:
            producer.attrs.update(act.attrs, act=act.op)
            producer.output = act.output
            layers.remove(act)


def _prune(layers, output):
    """Drop layers whose results never reach the output."""
    needed = {output}
    for layer in reversed(list(layers)):
        if layer.output in needed:
            needed.update(layer.inputs)
        else:
            layers.remove(layer)
