"""Partitions: a network too large for the chip, run as accelerators one after another.

fpgaConvNet's transform 3 ("partitioning") and 4 ("weights reloading"). A `Partition` is a run of
consecutive layers of a graph. Between two partitions wait the tensors that are live there
(`live`: written before the cut and read after it): one in a chain, two inside a residual block
(the skip and the branch). A cut is allowed where the live tensors share one height and width
(`cuts`), so that they travel as one: packed over channels, in the order they were written,
each channel keeping its own tensor's integers (concat with ``pack``). A partition takes the
tensors it reads back out with slices and packs what is live after it, passing through a skip
tensor it does not touch. Every partition therefore reads one tensor and writes one, as any
accelerator does. Over a batch of B frames the host runs partition 1 on every frame, loads the
next bitstream, runs partition 2 on partition 1's outputs, and so on; the feature maps between
them wait in the board's DRAM, or on the host where the DRAM does not survive a reconfiguration
(`dnnhw.schedule` models both).

With weights reloading (`reload` = wr > 1) the partition's last layer, a conv or fc, holds only
F/wr of its F filters: the partition runs wr times per batch, each run computing one chunk of
F/wr output channels with that chunk's weights loaded from memory first. Only the last layer may
reload, since every earlier layer's consumer needs all of its channels. The other tensors live
after the partition were written before its last layer, so every run writes them alike: a
chunk's output is those tensors, then its own channels, and the host joins the runs' outputs
(`shared_channels`). The chunk's layer says so in its attributes: ``reload`` (wr; the DSE then
plans it writable, `folding.Implementation`) and ``shift_range`` (every chunk's requantization
shifts, which its hardware must handle).

Plain Python over the IR: the DSE reads it, and `subgraph` gives each partition the graph its
accelerator, golden model and verification use.
"""

from dataclasses import astuple, dataclass, replace

import numpy as np

from . import golden, ops
from .ir import Format, Layer, Shape, WeightQuant


__all__ = ["Partition", "live", "cuts", "reload_factors", "subgraph", "boundary",
           "shared_channels", "joined_channels", "reloaded", "boundary_value"]


@dataclass(frozen=True)
class Partition:
    """Layers `start` to `stop` - 1 of a graph, the last holding 1/`reload` of its filters."""
    start: int
    stop: int
    reload: int = 1


def live(graph, i):
    """The tensors live before layer i (0 ≤ i ≤ number of layers): written by the graph's input
    or layers[:i] and read by layers[i:] (after the last layer: the graph's output), in the order
    they were written."""
    if i == len(graph.layers):
        return [graph.output]
    read = {t for layer in graph.layers[i:] for t in layer.inputs}
    return [t for t in [graph.input, *(layer.output for layer in graph.layers[:i])] if t in read]


def cuts(graph):
    """The layer indices i (0 < i < number of layers) before which `graph` can be cut: where
    the live tensors share one height and width, so they pack into one."""
    return [i for i in range(1, len(graph.layers))
            if len({tuple(graph.shapes[t])[1:] for t in live(graph, i)}) == 1]


def reload_factors(graph, layer):
    """The weights-reloading factors wr > 1 `layer` allows (`Op.reload_factors`)."""
    return ops.get(layer.op).reload_factors(graph, layer)


def boundary(graph, part):
    """(tensors read, tensors written) by `part` in `graph`: those live before and after it."""
    return live(graph, part.start), live(graph, part.stop)


def shared_channels(graph, part):
    """Channels at the start of every chunk's output of a reloading `part`: the tensors live
    after it other than its last layer's, the same in every run (0 without any)."""
    return sum(graph.shapes[t].c for t in live(graph, part.stop)[:-1])


def joined_channels(chunk_channels, shared, reload):
    """Channels of a reloading partition's joined output: the `shared` ones once, then every
    one of the `reload` chunks' own (each chunk writes `chunk_channels` in all)."""
    return shared + (chunk_channels - shared) * reload


def reloaded(sub):
    """The layer of the sub-graph `sub` that reloads its weights, or None."""
    return next((layer for layer in sub.layers if layer.attrs.get("reload")), None)


def boundary_value(sub, tensor, values):
    """The integer value of `sub`'s input or output `tensor` given `values`, the whole
    network's (`golden.run_fixed`): its own, or the pack of the tensors it holds (with weights
    reloading, of all the reloaded layer's channels)."""
    if tensor in values:
        return values[tensor]
    if tensor == sub.output:
        held = sub.layers[-1].inputs
    else:
        held = [layer.output for layer in sub.layers if layer.inputs == [tensor]]
    return np.concatenate([values[t] for t in held])


def subgraph(graph, part, chunk=0):
    """The graph of `part`: its layers, from the tensor it reads to the one it writes. Where
    several tensors are live at an end, that end is their pack (a tensor named ``cut_<i>``,
    frac 0): slices take the live tensors out of the input, a concat with ``pack`` joins the
    ones live after it. With weights reloading the last layer is its `chunk`-th F/wr filters
    (output channels chunk·F/wr to (chunk + 1)·F/wr - 1), and so is its part of the output.
    The first partition keeps the graph's input description and the last its output
    description; between them a tensor's ONNX shape is (1, C, H, W)."""
    reads, writes = boundary(graph, part)
    layers = list(graph.layers[part.start:part.stop])
    shapes = {t: graph.shapes[t] for t in {*reads, *(layer.output for layer in layers)}}
    formats = {t: f for t, f in graph.formats.items() if t in shapes}
    if part.reload > 1:
        layers[-1], shapes[layers[-1].output] = _chunk(graph, layers[-1], part.reload, chunk)
    tensor_in, tensor_out = reads[0], writes[0]
    if len(reads) > 1:
        tensor_in = _packed(graph, part.start)
        layers[:0] = _unpack(graph, reads, tensor_in)
    if len(writes) > 1:
        tensor_out = _packed(graph, part.stop)
        layers.append(Layer(tensor_out, "concat", list(writes), tensor_out, {"pack": True}))
    for tensor, ts in ((tensor_in, reads), (tensor_out, writes)):
        if len(ts) > 1:
            h, w = tuple(shapes[ts[0]])[1:]
            shapes[tensor] = Shape(sum(shapes[t].c for t in ts), h, w)
            formats[tensor] = Format(max(graph.formats[t].bits for t in ts), 0)
    first, last = part.start == 0, part.stop == len(graph.layers) and part.reload == 1
    s_in, s_out = shapes[tensor_in], shapes[tensor_out]
    return replace(
        graph, name=f"{graph.name}.p{part.start}-{part.stop - 1}", input=tensor_in,
        output=tensor_out, shapes=shapes, layers=layers,
        onnx_input_shape=graph.onnx_input_shape if first else (1, *s_in),
        onnx_output_shape=graph.onnx_output_shape if last else (1, *s_out),
        reference_output=graph.reference_output if last else "",
        formats=formats,
        format_hints={t: f for t, f in graph.format_hints.items() if t in shapes},
        notes=list(graph.notes), input_hwc=graph.input_hwc and first,
        output_hwc=graph.output_hwc and last)


def _packed(graph, i):
    """The name of the pack of the tensors live before layer i."""
    name = f"cut_{i}"
    while name in graph.shapes:
        name += "_"
    return name


def _unpack(graph, tensors, packed):
    """The slices taking each of `tensors` (packed in that order) out of `packed`."""
    out, start = [], 0
    for t in tensors:
        fmt, stop = graph.formats[t], start + graph.shapes[t].c
        out.append(Layer(f"{packed}_{t}", "slice", [packed], t,
                         {"start": start, "stop": stop, "format": astuple(fmt)}))
        start = stop
    return out


def _chunk(graph, layer, reload, chunk):
    """(`layer` with its `chunk`-th of `reload` filter chunks only, that chunk's output shape)."""
    shape = graph.out_shape(layer)
    if reload not in reload_factors(graph, layer):
        raise ValueError(f"layer '{layer.name}': weights reloading by {reload} does not split its "
                         f"{shape.c} filters (allowed: {reload_factors(graph, layer) or 'none'})")
    size = shape.c // reload
    part = slice(chunk * size, (chunk + 1) * size)
    wq = layer.wq and WeightQuant(layer.wq.bits, layer.wq.frac[part], layer.wq.weight[part],
                                  layer.wq.bias[part], layer.wq.acc_bits, layer.wq.mult[part])
    attrs = dict(layer.attrs, reload=reload)
    if layer.wq:    # the hardware that computes every chunk handles every chunk's shifts
        shift = golden.requant(graph, layer)[1]
        attrs["shift_range"] = (int(shift.min()), int(shift.max()))
    return (replace(layer, attrs=attrs, weight=layer.weight[part],
                    bias=None if layer.bias is None else layer.bias[part], wq=wq),
            replace(shape, c=size))
