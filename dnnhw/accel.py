"""The streaming accelerator of a quantized graph: one block per layer, wired as the graph says.

`Accelerator(graph, plan)` instantiates each layer's block from `dnnhw.layers` with the plan's
folding, puts a `LaneConverter` on every edge whose producer and consumer differ in lanes, and
a `Fork` on every tensor read by several layers, with a `StreamFIFO` on each branch deep enough
that the branches cannot deadlock: the connections `interconnect.edges` lists. Layers planned
`writable` (weights reloading) share one weight load port, `w`, in layer order.
"""

import itertools

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from . import model, ops
from .folding import Folding
from .layers.common import pixel_layout
from .layers.fifo import StreamFIFO
from .layers.fork import Fork
from .layers.lanes import LaneConverter


__all__ = ["Accelerator", "build_block", "load_words"]


def build_block(graph, layer, folding):
    """The block computing `layer` of the quantized `graph` with `folding` (a `Folding`,
    checked by `ops.check`)."""
    ops.check(graph, layer, folding)
    return ops.get(layer.op).block(graph, layer, folding)


def load_words(graph, plan):
    """The beats of `Accelerator.w` that load the weights of `graph`'s writable layers under
    `plan`, in layer order: the accelerator of `graph`'s, or of another chunk of a reloaded
    partition (`partition.subgraph`: the same layers with other filters)."""
    return [word for layer in graph.layers if plan[layer.name].impl.writable
            for word in build_block(graph, layer, plan[layer.name]).engine.load_words()]


class Accelerator(wiring.Component):
    """The whole network as one stream component.

    Parameters
    ----------
    graph : ir.Graph
        A quantized graph.
    plan : dict of layer name → model.Folding, optional
        Folding per layer; a layer missing from it gets `Folding()`.

    Members
    -------
    i : In(stream.Signature(pixel_layout(input bits, input lanes)))
        Input frames in stream order; `input_lanes` channels per beat.
    o : Out(stream.Signature(pixel_layout(output bits, output lanes)))
        Output frames; `output_lanes` channels per beat.
    w : In(stream.Signature(unsigned(load_bits)))
        Only with writable layers (`loads` names them, in layer order): their weight loads one
        after another, `load_beats` beats in all (`load_words`). A load goes between runs: after
        the last output of the frames before it, and before the first input beat of the frames
        it serves.

    Attributes
    ----------
    in_shape, out_shape : ir.Shape
    in_bits, out_bits : int
        An input and an output frame, and the bits of their values: what a host link needs.
    """

    def __init__(self, graph, plan=None):
        self.graph = graph
        self.plan = {layer.name: (plan or {}).get(layer.name, Folding()) for layer in graph.layers}
        self.blocks = {layer.name: build_block(graph, layer, self.plan[layer.name])
                       for layer in graph.layers}
        self.perf = model.network(graph, self.plan)
        first = graph.consumers(graph.input)[0]
        self.input_lanes = model.in_lanes(first, self.plan[first.name])
        last = graph.producer(graph.output)
        self.output_lanes = model.out_lanes(last, self.plan[last.name])
        fmt_in, fmt_out = graph.formats[graph.input], graph.formats[graph.output]
        self.in_shape, self.out_shape = graph.shapes[graph.input], graph.shapes[graph.output]
        self.in_bits, self.out_bits = fmt_in.bits, fmt_out.bits
        signature = {"i": In(stream.Signature(pixel_layout(fmt_in.bits, self.input_lanes))),
                     "o": Out(stream.Signature(pixel_layout(fmt_out.bits, self.output_lanes)))}
        self.loads = [name for name, block in self.blocks.items() if "w" in block.signature.members]
        self.load_beats = sum(self.blocks[name].engine.load.beats for name in self.loads)
        self.load_bits = max((self.blocks[name].engine.load_bits for name in self.loads), default=0)
        if self.loads:
            signature["w"] = In(stream.Signature(unsigned(self.load_bits)))
        super().__init__(signature)


    def elaborate(self, platform):
        m = Module()
        graph = self.graph
        for index, block in enumerate(self.blocks.values()):
            m.submodules[f"layer{index}"] = block
        names = itertools.count()
        links = {}
        for edge in self.perf.edges:
            links.setdefault(edge.tensor, []).append(edge)
        for tensor, readers in links.items():
            source = (wiring.flipped(self.i) if tensor == graph.input
                      else self.blocks[graph.producer(tensor).name].o)
            if len(readers) > 1:
                fork = Fork(graph.formats[tensor].bits, readers[0].lanes_from, len(readers))
                m.submodules[f"fork{next(names)}"] = fork
                wiring.connect(m, source, fork.i)
                branches = [getattr(fork, f"o{k}") for k in range(len(readers))]
            else:
                branches = [source]
            for edge, branch in zip(readers, branches):
                out = self._adapt(m, names, branch, edge)
                sink = (wiring.flipped(self.o) if edge.reader is None
                        else getattr(self.blocks[edge.reader], edge.port))
                wiring.connect(m, out, sink)
        if self.loads:
            self._route_loads(m)
        return m

    def _route_loads(self, m):
        """`w`'s beats to the writable layers in turn, each its load's beats."""
        beat = Signal(range(self.load_beats))
        start, taken = 0, []
        for name in self.loads:
            port, count = self.blocks[name].w, self.blocks[name].engine.load.beats
            here = (beat >= start) & (beat < start + count)
            m.d.comb += [port.valid.eq(self.w.valid & here), port.payload.eq(self.w.payload)]
            taken.append(here & port.ready)
            start += count
        m.d.comb += self.w.ready.eq(Cat(taken).any())
        with m.If(self.w.valid & self.w.ready):
            m.d.sync += beat.eq(Mux(beat == self.load_beats - 1, 0, beat + 1))

    def _adapt(self, m, names, source, edge):
        """`source` queued and converted to the reader's lanes, as `edge` says: the FIFO on the
        wider side of the converter."""
        bits = self.graph.formats[edge.tensor].bits

        def queue(source):
            if not edge.fifo_depth:
                return source
            fifo = StreamFIFO(bits, edge.fifo_lanes, edge.fifo_depth)
            m.submodules[f"fifo{next(names)}"] = fifo
            wiring.connect(m, source, fifo.i)
            return fifo.o

        if edge.lanes_from > edge.lanes_to:
            source = queue(source)
        if edge.lanes_from != edge.lanes_to:
            converter = LaneConverter(self.graph.shapes[edge.tensor].c, bits, edge.lanes_from,
                                      edge.lanes_to)
            m.submodules[f"lanes{next(names)}"] = converter
            wiring.connect(m, source, converter.i)
            source = converter.o
        if edge.lanes_from <= edge.lanes_to:
            source = queue(source)
        return source
