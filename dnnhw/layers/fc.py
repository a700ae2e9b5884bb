"""A fully connected layer: the conv engine as a 1×1 convolution over one pixel of N_in channels.

A fully connected layer reads its whole (C, H, W) input as one vector of N_in = C·H·W features in
stream (HWC) order, which is the order the feature-map stream delivers it, and the frontend has
already permuted its weights (N_out, N_in) to that order. A window of one kernel position has the
same bits as a pixel beat, so the input stream feeds a `ConvEngine` (kernel 1×1, one pixel of
N_in channels per frame) directly: no second matrix-vector engine, no window buffer.
"""

from dataclasses import replace

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .. import geometry, golden
from .common import pixel_layout
from .conv_engine import ConvEngine, activation_of, engine_load_port


__all__ = ["FullyConnected"]


class FullyConnected(wiring.Component):
    """A fully connected layer with bias, requantization and a fused activation, as golden's
    ``fc``.

    Rate and latency are the `ConvEngine`'s for one pixel of N_in channels and a 1×1 kernel:
    ``cycles_per_frame = (N_out / coarse_out) · (N_in / coarse_in)`` with both streams unstalled
    (one output vector per frame), and the first output beat transfers
    ``latency = 2 · N_in / coarse_in - 1 + engine.depth`` cycles after the first input beat (the
    whole input vector is buffered before the first multiplication). Multipliers:
    ``coarse_in · coarse_out``.

    Parameters
    ----------
    in_shape : ir.Shape
        The (C, H, W) input feature map; `coarse_in` must divide C.
    out_features : int
        N_out; `coarse_out` must divide it.
    in_bits, out_bits : int
        Widths of the input and output integers.
    wq : ir.WeightQuant
        Integer weights (N_out, N_in) in stream (HWC) order, bias at the accumulator's scale,
        `acc_bits`.
    shift : int array
        Per-output requantization shift (`golden.requant`).
    activation : None, "relu", ("clamp", lo, hi) or ("leaky_relu", alpha_q)
        As `ConvEngine` takes it (see `activation_of`).
    coarse_in, coarse_out : int
        Input lanes and output lanes.
    **engine_options
        The engine's implementation options (logic_multipliers, block_weights, paired,
        writable, shift_range, mult: `ConvEngine`).

    Members
    -------
    i : In(stream.Signature(pixel_layout(in_bits, coarse_in)))
        The input feature map, one frame after another.
    o : Out(stream.Signature(pixel_layout(out_bits, coarse_out)))
        The (N_out, 1, 1) output, `coarse_out` features per beat.
    w : the engine's weight load port, if writable (`ConvEngine`)

    Attributes
    ----------
    engine : ConvEngine
    geometry : geometry.FCGeometry
    cycles_per_frame, latency : int
        As defined above.

    Raises
    ------
    ValueError
        For `coarse_in` not dividing C, `coarse_out` not dividing N_out, or weights of the wrong
        shape.
    """

    def __init__(self, in_shape, out_features, in_bits, out_bits, wq, shift, activation=None, *,
                 coarse_in=1, coarse_out=1, **engine_options):
        if in_shape.c % coarse_in:
            raise ValueError(f"coarse_in={coarse_in} must divide {in_shape.c} input channels")
        if out_features % coarse_out:
            raise ValueError(f"coarse_out={coarse_out} must divide {out_features} outputs")
        if wq.weight.shape != (out_features, in_shape.size):
            raise ValueError(f"weights of shape {wq.weight.shape}; expected "
                             f"{(out_features, in_shape.size)}")
        self.in_shape, self.out_features = in_shape, out_features
        self.engine = ConvEngine(in_shape.size, out_features, 1, (1, 1), in_bits, out_bits,
                                 replace(wq, weight=wq.weight.reshape(out_features, -1, 1, 1)),
                                 shift, activation, coarse_in=coarse_in, coarse_out=coarse_out,
                                 **engine_options)
        self.geometry = geometry.fc(in_shape.size, out_features, coarse_in, coarse_out,
                                    leaky=self.engine.alpha_q is not None,
                                    scaled=self.engine.mult is not None)
        self.cycles_per_frame, self.latency = self.geometry.cycles_per_frame, self.geometry.latency
        super().__init__({"i": In(stream.Signature(pixel_layout(in_bits, coarse_in))),
                          "o": Out(stream.Signature(pixel_layout(out_bits, coarse_out))),
                          **engine_load_port(self.engine)})

    @classmethod
    def from_layer(cls, graph, layer, coarse_in=1, coarse_out=1, **impl):
        """The fc `layer` of the quantized `graph`, every constant from golden; `impl`: the
        engine's implementation options (`folding.Implementation`)."""
        mult, shift = golden.requant(graph, layer)
        try:
            return cls(graph.in_shape(layer), graph.out_shape(layer).c,
                       graph.formats[layer.inputs[0]].bits, graph.formats[layer.output].bits,
                       layer.wq, shift, activation_of(graph, layer),
                       coarse_in=coarse_in, coarse_out=coarse_out,
                       shift_range=layer.attrs.get("shift_range"), mult=mult, **impl)
        except ValueError as error:
            raise ValueError(f"FC '{layer.name}': {error}") from None

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self.engine
        m.d.comb += [
            engine.i.valid.eq(self.i.valid),
            engine.i.payload.eq(self.i.payload),      # a pixel beat is a 1-position window
            self.i.ready.eq(engine.i.ready),
        ]
        wiring.connect(m, engine.o, wiring.flipped(self.o))
        if "w" in self.signature.members:
            wiring.connect(m, wiring.flipped(self.w), engine.w)
        return m
