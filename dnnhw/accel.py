"""The streaming accelerator of a quantized graph: one block per layer, wired as the graph says.

`Accelerator(graph, plan)` instantiates each layer's block from `dnnhw.layers` with the plan's
folding, puts a `LaneConverter` on every edge whose producer and consumer differ in lanes, and
a `Fork` on every tensor read by several layers, with a `StreamFIFO` on each branch deep enough
that the branches cannot deadlock: one frame of the tensor, which bounds how far one branch can run
ahead of another.
"""

import itertools

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from . import golden, model
from .layers.activation import Activation
from .layers.add import Add
from .layers.common import pixel_layout
from .layers.concat import Concat
from .layers.conv import Conv
from .layers.fc import FullyConnected
from .layers.fifo import StreamFIFO
from .layers.fork import Fork
from .layers.global_pool import GlobalAveragePool
from .layers.lanes import LaneConverter
from .layers.pool import Pool


__all__ = ["Accelerator", "build_block"]


def build_block(graph, layer, folding):
    """The block computing `layer` of the quantized `graph` with `folding` (a `model.Folding`)."""
    ci, co, fine = folding.coarse_in, folding.coarse_out, folding.fine
    shape, out = graph.in_shape(layer), graph.formats[layer.output]
    fmt_in, a = graph.formats[layer.inputs[0]], layer.attrs
    if layer.op == "conv":
        return Conv.from_layer(graph, layer, ci, co, fine)
    if layer.op == "fc":
        return FullyConnected.from_layer(graph, layer, ci, co)
    if layer.op in ("maxpool", "avgpool"):
        return Pool(shape, a["kernel"], a["stride"], a["pads"], fmt_in.bits, ci,
                    kind=layer.op[:3], count_include_pad=a.get("count_include_pad", False))
    if layer.op == "global_avgpool":
        return GlobalAveragePool(shape, fmt_in.bits, ci)
    if layer.op == "add":
        fa, fb = (graph.formats[t] for t in layer.inputs)
        return Add(shape, ci, fa.bits, fa.frac, fb.bits, fb.frac, out.bits, out.frac)
    if layer.op == "concat":
        return Concat([graph.shapes[t] for t in layer.inputs], ci,
                      [graph.formats[t] for t in layer.inputs], out)
    if layer.op == "clamp":
        lo, hi = golden.clamp_bounds(a["lo"], a["hi"], out)
        return Activation(shape, fmt_in.bits, out.bits, ci, "clamp", lo=lo, hi=hi)
    if layer.op == "leaky_relu":
        return Activation(shape, fmt_in.bits, out.bits, ci, "leaky_relu",
                          alpha_q=golden.leaky_alpha(a["alpha"]))
    if layer.op in model.ACTIVATION_LATENCY:
        return Activation(shape, fmt_in.bits, out.bits, ci, layer.op, frac_in=fmt_in.frac,
                          frac_out=out.frac)
    raise NotImplementedError(layer.op)


class Accelerator(wiring.Component):
    """The whole network as one stream component.

    Parameters
    ----------
    graph : ir.Graph
        A quantized graph.
    plan : dict of layer name → model.Folding, optional
        Folding per layer; a layer missing from it gets `model.Folding()`.

    Members
    -------
    i : In(stream.Signature(pixel_layout(input bits, input lanes)))
        Input frames in stream order; `input_lanes` channels per beat.
    o : Out(stream.Signature(pixel_layout(output bits, output lanes)))
        Output frames; `output_lanes` channels per beat.
    """

    def __init__(self, graph, plan=None):
        self.graph = graph
        self.plan = {layer.name: (plan or {}).get(layer.name, model.Folding()) for layer in graph.layers}
        self.blocks = {layer.name: build_block(graph, layer, self.plan[layer.name])
                       for layer in graph.layers}
        self.perf = model.network(graph, self.plan)
        first = graph.consumers(graph.input)[0]
        self.input_lanes = model.in_lanes(first, self.plan[first.name])
        last = graph.producer(graph.output)
        self.output_lanes = model.out_lanes(last, self.plan[last.name])
        self._lanes = {graph.input: self.input_lanes}
        for layer in graph.layers:
            self._lanes[layer.output] = model.out_lanes(layer, self.plan[layer.name])
        fmt_in, fmt_out = graph.formats[graph.input], graph.formats[graph.output]
        super().__init__({"i": In(stream.Signature(pixel_layout(fmt_in.bits, self.input_lanes))),
                          "o": Out(stream.Signature(pixel_layout(fmt_out.bits, self.output_lanes)))})

    def _branch_depth(self, tensor):
        """Beats to queue on a branch carrying `tensor` into a join: one frame, which bounds how
        far one branch can run ahead of the other (every block finishes a frame's output
        before it needs the next frame's input)."""
        return self.graph.shapes[tensor].size // self._lanes[tensor] + 4

    def elaborate(self, platform):
        m = Module()
        graph = self.graph
        for index, block in enumerate(self.blocks.values()):
            m.submodules[f"layer{index}"] = block
        names = itertools.count()
        for tensor in [graph.input, *(layer.output for layer in graph.layers)]:
            source = (wiring.flipped(self.i) if tensor == graph.input
                      else self.blocks[graph.producer(tensor).name].o)
            readers = graph.consumers(tensor) + ([None] if tensor == graph.output else [])
            if len(readers) > 1:
                fork = Fork(graph.formats[tensor].bits, self._lanes[tensor], len(readers))
                m.submodules[f"fork{next(names)}"] = fork
                wiring.connect(m, source, fork.i)
                branches = [getattr(fork, f"o{k}") for k in range(len(readers))]
            else:
                branches = [source]
            for reader, branch in zip(readers, branches):
                if reader is None:
                    out = self._adapt(m, names, branch, tensor, self.output_lanes, None)
                    wiring.connect(m, out, wiring.flipped(self.o))
                    continue
                join = len(readers) > 1 or len(reader.inputs) > 1
                port = f"i{reader.inputs.index(tensor)}" if len(reader.inputs) > 1 else "i"
                lanes = model.in_lanes(reader, self.plan[reader.name])
                out = self._adapt(m, names, branch, tensor, lanes,
                                  self._branch_depth(tensor) if join else None)
                wiring.connect(m, out, getattr(self.blocks[reader.name], port))
        return m

    def _adapt(self, m, names, source, tensor, lanes, depth):
        """`source` converted to `lanes`, then queued `depth` beats deep if a depth is given."""
        bits, have = self.graph.formats[tensor].bits, self._lanes[tensor]
        if have != lanes:
            converter = LaneConverter(self.graph.shapes[tensor].c, bits, have, lanes)
            m.submodules[f"lanes{next(names)}"] = converter
            wiring.connect(m, source, converter.i)
            source = converter.o
        if depth:
            queue = StreamFIFO(bits, lanes, depth)
            m.submodules[f"fifo{next(names)}"] = queue
            wiring.connect(m, source, queue.i)
            source = queue.o
        return source
