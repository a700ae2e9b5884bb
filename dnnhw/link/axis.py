"""The accelerator behind AXI4-Stream ports, for SoC integration on Zynq-class parts.

`AxiStreamTop`'s ports are plain top-level signals named as Vivado's IP packager expects them
(`s_axis_tdata`, `s_axis_tvalid`, `s_axis_tready`, `s_axis_tlast`, `m_axis_...`), so it infers
an AXI4-Stream slave and master; Amaranth would name the members of a nested signature
`s_axis__tdata`. There is no TKEEP, TSTRB, TUSER, TID or TDEST: every byte of every beat is
data. The clock and reset are the `sync` domain's `clk` and `rst` (active high, synchronous);
on a Zynq, `rst` takes a Processor System Reset's `peripheral_reset`, not the active-low
`peripheral_aresetn`.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


__all__ = ["tdata_width", "AxiStreamTop"]


def tdata_width(lanes, bits):
    """TDATA's width for a beat of `lanes` values of `bits`: lanes · bits rounded up to whole
    bytes, as AXI4-Stream requires."""
    return -(-lanes * bits // 8) * 8


def _last_beat(m, name, beats, transfer):
    """A count of `transfer`s wrapping every `beats`; returns "the current beat ends a frame"."""
    position = Signal(range(beats), name=f"{name}_beat")
    last = position == beats - 1
    with m.If(transfer):
        m.d.sync += position.eq(Mux(last, 0, position + 1))
    return last


class AxiStreamTop(wiring.Component):
    """An `Accelerator` with an AXI4-Stream slave `s_axis` for input frames and a master
    `m_axis` for output frames.

    A beat is one accelerator beat: lane j is the two's-complement value in TDATA bits
    [j · bits, (j + 1) · bits), lane 0 lowest; TDATA is `tdata_width` bits, and the bits above
    the lanes are ignored on `s_axis` and zero on `m_axis`. A frame is a tensor's values in
    stream order (DESIGN.md, "Streams"): `in_beats` beats in, `out_beats` beats out. The
    handshakes are the accelerator's own (AXI4-Stream's VALID/READY rules are
    amaranth.lib.stream's): no buffering, no cycle added.

    `m_axis_tlast` is high on the last beat of every output frame. The accelerator counts
    positions itself, so `s_axis_tlast` does not frame the input: every beat goes to the
    accelerator whatever its TLAST. The top counts input beats; a beat whose TLAST disagrees
    with the count (high before the `in_beats`-th beat of a frame, or low on it) sets
    `frame_error`, which stays high until reset. Nothing is dropped or realigned: a sender whose
    frame was short or long has shifted every later frame, and only a reset starts afresh.

    Parameters
    ----------
    accel : accel.Accelerator

    Members
    -------
    s_axis_tdata : In(tdata_width(input lanes, input bits))
    s_axis_tvalid : In(1)
    s_axis_tready : Out(1)
    s_axis_tlast : In(1)
    m_axis_tdata : Out(tdata_width(output lanes, output bits))
    m_axis_tvalid : Out(1)
    m_axis_tready : In(1)
    m_axis_tlast : Out(1)
    frame_error : Out(1)
        An input beat's TLAST disagreed with the beat count, since reset.
    s_axis_weights_tdata, s_axis_weights_tvalid, s_axis_weights_tready
        Only for an accelerator with writable layers: a third stream, its weight loads
        (`Accelerator.w`, `load_beats` beats a load, the value in the low `load_bits` bits of
        TDATA), sent between runs as `Accelerator` says. No TLAST: the accelerator counts.

    Attributes
    ----------
    in_beats, out_beats : int
        Beats of an input and of an output frame.
    """

    def __init__(self, accel):
        graph = accel.graph
        self.accel = accel
        self.bits_in = graph.formats[graph.input].bits
        self.bits_out = graph.formats[graph.output].bits
        self.in_beats = graph.shapes[graph.input].size // accel.input_lanes
        self.out_beats = graph.shapes[graph.output].size // accel.output_lanes
        width_in = tdata_width(accel.input_lanes, self.bits_in)
        width_out = tdata_width(accel.output_lanes, self.bits_out)
        super().__init__({
            "s_axis_tdata": In(width_in), "s_axis_tvalid": In(1), "s_axis_tready": Out(1),
            "s_axis_tlast": In(1),
            "m_axis_tdata": Out(width_out), "m_axis_tvalid": Out(1), "m_axis_tready": In(1),
            "m_axis_tlast": Out(1),
            "frame_error": Out(1),
            **({"s_axis_weights_tdata": In(tdata_width(1, accel.load_bits)),
                "s_axis_weights_tvalid": In(1), "s_axis_weights_tready": Out(1)}
               if accel.loads else {}),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.accel = accel = self.accel
        lanes_in = accel.input_lanes * self.bits_in
        m.d.comb += [
            accel.i.valid.eq(self.s_axis_tvalid),
            accel.i.payload.eq(self.s_axis_tdata[:lanes_in]),
            self.s_axis_tready.eq(accel.i.ready),
            self.m_axis_tvalid.eq(accel.o.valid),
            self.m_axis_tdata.eq(accel.o.payload),
            accel.o.ready.eq(self.m_axis_tready),
        ]
        if accel.loads:
            m.d.comb += [accel.w.valid.eq(self.s_axis_weights_tvalid),
                         accel.w.payload.eq(self.s_axis_weights_tdata),
                         self.s_axis_weights_tready.eq(accel.w.ready)]
        taken = self.s_axis_tvalid & self.s_axis_tready
        last_in = _last_beat(m, "in", self.in_beats, taken)
        with m.If(taken & (self.s_axis_tlast != last_in)):
            m.d.sync += self.frame_error.eq(1)
        m.d.comb += self.m_axis_tlast.eq(
            _last_beat(m, "out", self.out_beats, self.m_axis_tvalid & self.m_axis_tready))
        return m
