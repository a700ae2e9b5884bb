"""A convolution layer: the sliding window feeding the conv engine."""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .. import geometry, golden
from ..ir import Shape
from .common import pixel_layout
from .conv_engine import ConvEngine, activation_of, engine_load_port
from .fifo import StreamFIFO
from .sliding_window import SlidingWindow


__all__ = ["Conv"]


class Conv(wiring.Component):
    """A convolution of a (C_in, H, W) map: `SlidingWindow` → `StreamFIFO` → `ConvEngine`.

    A 1×1 convolution with stride 1 and no padding needs no window: its pixel beats go to the
    engine as 1-position windows. The FIFO, where needed, queues enough windows that the engine
    keeps computing while the window reads padding and the rows it needs before its next window
    (across row and frame boundaries), so that a frame takes exactly the slower stage's cycles
    (`geometry.queue_depth`).

    Parameters
    ----------
    in_shape : ir.Shape
        (C_in, H, W).
    out_channels, groups, kernel, stride, pads
        As the conv layer's attributes (DESIGN.md): kernel (kh, kw), stride (sh, sw), pads
        (top, left, bottom, right).
    in_bits, out_bits, wq, shift, activation
        As `ConvEngine` takes them.
    coarse_in, coarse_out, fine
        Folding (`ConvEngine`); `coarse_in` is also the window's lanes.
    **engine_options
        The engine's coarse_group and implementation options (logic_multipliers,
        block_weights, paired, writable, shift_range, mult: `ConvEngine`).

    Members
    -------
    i : In(stream.Signature(pixel_layout(in_bits, coarse_in)))
    o : Out(stream.Signature(pixel_layout(out_bits, coarse_out)))
    w : the engine's weight load port, if writable (`ConvEngine`)

    Attributes
    ----------
    geometry : geometry.ConvGeometry
        Its stages' counts, the FIFO's depth (`geometry.queue_depth`), rate and latency.
    out_shape : ir.Shape
    window : SlidingWindow or None
    fifo : StreamFIFO or None
    engine : ConvEngine
    cycles_per_frame : int
        The slower of the two stages, both streams unstalled: the window's
        H_pad · W_pad · C_in / coarse_in cycles, or the engine's H_out · W_out · cycles_per_pixel.
    latency : int
        First input beat to first output beat, unstalled: the sum of the stages' latencies.
    """

    def __init__(self, in_shape, out_channels, groups, kernel, stride, pads, in_bits, out_bits,
                 wq, shift, activation=None, *, coarse_in=1, coarse_out=1, fine=1,
                 **engine_options):
        self.engine = ConvEngine(in_shape.c, out_channels, groups, kernel, in_bits, out_bits, wq,
                                 shift, activation, coarse_in=coarse_in, coarse_out=coarse_out,
                                 fine=fine, **engine_options)
        self.geometry = g = geometry.conv(in_shape, out_channels, groups, kernel, stride, pads,
                                          coarse_in, coarse_out, fine,
                                          leaky=self.engine.alpha_q is not None,
                                          coarse_group=self.engine.coarse_group,
                                          scaled=self.engine.mult is not None)
        self.out_shape = Shape(out_channels, g.out_h, g.out_w)
        self.window = None
        if g.window is not None:
            self.window = SlidingWindow(in_shape, kernel, stride, pads, in_bits, coarse_in)
        self.fifo = None
        if g.queue_depth:
            self.fifo = StreamFIFO(None, None, g.queue_depth, layout=self.engine.i.payload.shape())
        self.cycles_per_frame, self.latency = g.cycles_per_frame, g.latency
        super().__init__({"i": In(stream.Signature(pixel_layout(in_bits, coarse_in))),
                          "o": Out(stream.Signature(pixel_layout(out_bits, coarse_out))),
                          **engine_load_port(self.engine)})

    @classmethod
    def from_layer(cls, graph, layer, coarse_in=1, coarse_out=1, fine=1, **impl):
        """Conv `layer` of the quantized `graph`, every constant from golden; `impl`: the
        engine's implementation options (`folding.Implementation`)."""
        a = layer.attrs
        mult, shift = golden.requant(graph, layer)
        try:
            return cls(graph.in_shape(layer), graph.out_shape(layer).c, a["groups"], a["kernel"],
                       a["stride"], a["pads"], graph.formats[layer.inputs[0]].bits,
                       graph.formats[layer.output].bits, layer.wq,
                       shift, activation_of(graph, layer),
                       coarse_in=coarse_in, coarse_out=coarse_out, fine=fine,
                       shift_range=a.get("shift_range"), mult=mult, **impl)
        except ValueError as error:
            raise ValueError(f"Conv '{layer.name}': {error}") from None

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self.engine
        if self.window is None:
            m.d.comb += [
                engine.i.valid.eq(self.i.valid),
                engine.i.payload.eq(self.i.payload),    # a pixel beat is a 1-position window
                self.i.ready.eq(engine.i.ready),
            ]
        else:
            m.submodules.window = window = self.window
            wiring.connect(m, wiring.flipped(self.i), window.i)
            if self.fifo is None:
                wiring.connect(m, window.o, engine.i)
            else:
                m.submodules.fifo = fifo = self.fifo
                wiring.connect(m, window.o, fifo.i)
                wiring.connect(m, fifo.o, engine.i)
        wiring.connect(m, engine.o, wiring.flipped(self.o))
        if "w" in self.signature.members:
            wiring.connect(m, wiring.flipped(self.w), engine.w)
        return m
