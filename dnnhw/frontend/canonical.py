"""Rewrite mapped layers into canonical form.

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


from ..errors import UserError
from ..ir import ACTIVATIONS


__all__ = ["canonicalize"]


def canonicalize(layers, shapes, output):
    layers = list(layers)
    _prune(layers, output)
    _fold_last_steps(layers, output)
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
