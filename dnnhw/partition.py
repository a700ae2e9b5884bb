"""Partitions: a network too large for the chip, run as accelerators one after another.

fpgaConvNet's transform 3 ("partitioning") and 4 ("weights reloading"). A `Partition` is a run of
consecutive layers of a graph, cut where exactly one tensor crosses (`cuts`): a residual block
or anything else with two live tensors is never split, so every partition reads one tensor and
writes one. Over a batch of B frames the host runs partition 1 on every frame, loads the next
bitstream, runs partition 2 on partition 1's outputs, and so on; the feature maps between them
wait in the board's DRAM, or on the host where the DRAM does not survive a reconfiguration
(`dnnhw.schedule` models both).

With weights reloading (`reload` = wr > 1) the partition's last layer, a conv or fc, holds only
F/wr of its F filters: the partition runs wr times per batch, each run computing one chunk of
F/wr output channels with that chunk's weights loaded from memory first. Only the last layer may
reload, since every earlier layer's consumer needs all of its channels. The chunk's layer says so
in its attributes: ``reload`` (wr; the DSE then plans it writable, `folding.Implementation`) and
``shift_range`` (every chunk's requantization shifts, which its hardware must handle).

Plain Python over the IR: the DSE reads it, and `subgraph` gives each partition the graph its
accelerator, golden model and verification use.
"""

from dataclasses import dataclass, replace

from . import golden, ops
from .ir import WeightQuant


__all__ = ["Partition", "cuts", "reload_factors", "subgraph", "boundary"]


@dataclass(frozen=True)
class Partition:
    """Layers `start` to `stop` - 1 of a graph, the last holding 1/`reload` of its filters."""
    start: int
    stop: int
    reload: int = 1


def cuts(graph):
    """The layer indices i (0 < i < number of layers) before which `graph` can be cut: where
    the tensors written by the graph's input and layers[:i] and read by layers[i:] are exactly
    one, the output of layer i - 1."""
    live, found = {graph.input}, []
    readers = {}
    for k, layer in enumerate(graph.layers):
        for t in layer.inputs:
            readers.setdefault(t, set()).add(k)
    for i, layer in enumerate(graph.layers[:-1]):
        live.add(layer.output)
        live = {t for t in live if any(k > i for k in readers.get(t, ()))}
        if live == {layer.output}:
            found.append(i + 1)
    return found


def reload_factors(graph, layer):
    """The weights-reloading factors wr > 1 `layer` allows (`Op.reload_factors`)."""
    return ops.get(layer.op).reload_factors(graph, layer)


def boundary(graph, part):
    """(input tensor, output tensor) of `part` in `graph`."""
    first, last = graph.layers[part.start], graph.layers[part.stop - 1]
    return first.inputs[0], last.output


def subgraph(graph, part, chunk=0):
    """The graph of `part`: its layers, from the tensor it reads to the one it writes. With
    weights reloading the last layer is its `chunk`-th F/wr filters (output channels
    chunk·F/wr to (chunk + 1)·F/wr - 1), and so is the output tensor. The first partition keeps
    the graph's input description and the last its output description; between them a
    tensor's ONNX shape is (1, C, H, W)."""
    tensor_in, tensor_out = boundary(graph, part)
    layers = list(graph.layers[part.start:part.stop])
    shapes = {t: graph.shapes[t] for t in {tensor_in, *(layer.output for layer in layers)}}
    if part.reload > 1:
        layers[-1], shapes[tensor_out] = _chunk(graph, layers[-1], part.reload, chunk)
    first, last = part.start == 0, part.stop == len(graph.layers) and part.reload == 1
    s_in, s_out = shapes[tensor_in], shapes[tensor_out]
    return replace(
        graph, name=f"{graph.name}.p{part.start}-{part.stop - 1}", input=tensor_in,
        output=tensor_out, shapes=shapes, layers=layers,
        onnx_input_shape=graph.onnx_input_shape if first else (1, *s_in),
        onnx_output_shape=graph.onnx_output_shape if last else (1, *s_out),
        reference_output=graph.reference_output if last else "",
        formats={t: f for t, f in graph.formats.items() if t in shapes},
        format_hints={t: f for t, f in graph.format_hints.items() if t in shapes},
        notes=list(graph.notes), input_hwc=graph.input_hwc and first,
        output_hwc=graph.output_hwc and last)


def _chunk(graph, layer, reload, chunk):
    """(`layer` with its `chunk`-th of `reload` filter chunks only, that chunk's output shape)."""
    shape = graph.out_shape(layer)
    if reload not in reload_factors(graph, layer):
        raise ValueError(f"layer '{layer.name}': weights reloading by {reload} does not split its "
                         f"{shape.c} filters (allowed: {reload_factors(graph, layer) or 'none'})")
    size = shape.c // reload
    part = slice(chunk * size, (chunk + 1) * size)
    wq = layer.wq and WeightQuant(layer.wq.bits, layer.wq.frac[part], layer.wq.weight[part],
                                  layer.wq.bias[part], layer.wq.acc_bits)
    attrs = dict(layer.attrs, reload=reload)
    if layer.wq:    # the hardware that computes every chunk handles every chunk's shifts
        shift = golden.requant_shift(graph, layer)
        attrs["shift_range"] = (int(shift.min()), int(shift.max()))
    return (replace(layer, attrs=attrs, weight=layer.weight[part],
                    bias=None if layer.bias is None else layer.bias[part], wq=wq),
            replace(shape, c=size))
