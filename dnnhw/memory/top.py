"""The memory top: a stream accelerator that reads its input frames from, and writes its
output frames to, DRAM over AXI4, run by a host through AXI4-Lite registers."""

from amaranth.hdl import Module, Shape
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .axi import AxiLiteSignature, AxiSignature, connect_channels
from .control import ControlRegisters
from .gearbox import LanesToWords, WordsToLanes
from .reader import AxiReader
from .sequencer import RunSequencer
from .writer import AxiWriter


__all__ = ["MemoryAccelerator", "input_wait"]


def input_wait(accel):
    """Cycles `accel` holds its first input beat of a run while its first layer's sliding
    window walks the top and left padding (the window starts a frame once its first beat is
    offered): (top · padded width + left) · beats per pixel, for an `Accelerator` whose input
    feeds one windowed layer (conv, pool); 0 otherwise. For `timing.run_cycles`."""
    graph = getattr(accel, "graph", None)
    readers = graph.consumers(graph.input) if graph is not None else []
    if len(readers) != 1 or "pads" not in readers[0].attrs:
        return 0
    top, left, _, right = readers[0].attrs["pads"]
    shape = graph.shapes[graph.input]
    return (top * (shape.w + left + right) + left) * (shape.c // accel.input_lanes)


def _pixels(accel, name, flow):
    """(bits, lanes) of `accel`'s stream member `name`, which must be `flow` and carry a pixel
    layout (`layers.common.pixel_layout`)."""
    members, shape = accel.signature.members, None
    member = members[name] if name in members else None
    if (member is not None and member.is_signature and member.flow == flow
            and "payload" in member.signature.members):
        shape = member.signature.members["payload"].shape
    if not (isinstance(shape, data.ArrayLayout) and Shape.cast(shape.elem_shape).signed):
        raise ValueError(f"MemoryAccelerator: the accelerator needs a stream member {name!r} "
                         f"({flow.name}) of pixels, an ArrayLayout of signed elements")
    return Shape.cast(shape.elem_shape).width, shape.length


class MemoryAccelerator(wiring.Component):
    """A stream accelerator between DRAM and DRAM: it reads a batch of input frames over AXI4,
    streams them through `accel`, and writes the output frames back, started and polled by a
    host over AXI4-Lite (`ControlRegisters`).

    A run: the host writes the "input" and "output" buffer addresses and BATCH, then CONTROL
    with START (and MODE). The block reads BATCH input frames from the input address and
    writes BATCH output frames at the output address, the frames back to back in `layout`'s
    memory layout (elements of ceil(bits / 8) bytes in stream order, each frame starting on a
    bus word), and sets STATUS.DONE when the last write response has come back
    (`RunSequencer`). Reads and writes run at once, on the read and write channels of one
    AXI4 port: `AxiReader` → `WordsToLanes` → `accel.i`, `accel.o` → `LanesToWords` →
    `AxiWriter`.

    Weights: if `accel` has a member `w` (an In stream of ``unsigned(load_bits)``, `load_bits`
    ≤ `data_width`) and an attribute `load_beats`, a second, read-only AXI4 port
    `m_axi_weights` is added (for a second Zynq HP port). A run with MODE bit 0 set first
    reads `load_beats` bus words from the "weights" address and passes the low `load_bits` of
    each to `accel.w`, one word a beat; the input frames flow at the same time (the
    accelerator holds its compute until its weights are in), and DONE waits for the load too.

    Cycles from START to DONE: `timing.run_cycles`.

    Parameters
    ----------
    accel : wiring.Component
        With stream members `i` (In) and `o` (Out) of pixel layouts (an `accel.Accelerator`),
        and optionally `w` and `load_beats` as above.
    address_width : int
        AXI4 address bits, 12 to 64; the buffer address registers are 32 bits up to 32, 64
        bits above.
    data_width : int
        AXI4 data bits, a power of two from 8 to 1024, a multiple of each element's bytes.
    max_burst, outstanding, id_width : int
        Of the three AXI4 masters (`AxiReader`, `AxiWriter`).
    input_elements, output_elements : int, optional
        Elements of one input frame, one output frame; the sizes of `accel.graph`'s input and
        output tensors if not given.

    Members
    -------
    control : In(AxiLiteSignature(12))
        The register map of `ControlRegisters` ("input", "output", "weights" buffers, MODE of
        1 bit); `offsets` has it.
    m_axi : Out(AxiSignature(address_width, data_width, id_width))
    m_axi_weights : Out(AxiSignature(address_width, data_width, id_width, write=False))
        Only with a weights port.

    Attributes
    ----------
    accel : wiring.Component
    bits_in, lanes_in, bits_out, lanes_out : int
        Of `accel.i` and `accel.o`.
    input_words, output_words : int
        Bus words per input frame, per output frame (`layout.frame_words`).
    load_bits, load_beats : int
        Of the weights port; 0 without one.
    offsets : dict
        Register name → byte offset.

    Raises
    ------
    ValueError
        If `accel` lacks the stream members, the frame sizes are unknown or not divisible by
        the lanes, an element does not fit the bus words, `load_bits` exceeds `data_width`, or
        a master's parameter is out of range.
    """

    def __init__(self, accel, *, address_width=32, data_width=64, max_burst=16, outstanding=4,
                 id_width=0, input_elements=None, output_elements=None):
        self.accel = accel
        self.bits_in, self.lanes_in = _pixels(accel, "i", In)
        self.bits_out, self.lanes_out = _pixels(accel, "o", Out)
        graph = getattr(accel, "graph", None)
        if input_elements is None or output_elements is None:
            if graph is None:
                raise ValueError("MemoryAccelerator: give input_elements and output_elements "
                                 "for an accelerator without a graph")
            input_elements = input_elements or graph.shapes[graph.input].size
            output_elements = output_elements or graph.shapes[graph.output].size
        self.unpack = WordsToLanes(data_width, self.bits_in, self.lanes_in, input_elements)
        self.pack = LanesToWords(data_width, self.bits_out, self.lanes_out, output_elements)
        self.input_words, self.output_words = self.unpack.words, self.pack.words
        masters = dict(max_burst=max_burst, outstanding=outstanding, id_width=id_width)
        self.reader = AxiReader(address_width, data_width, **masters)
        self.writer = AxiWriter(address_width, data_width, **masters)
        self.load_bits, self.load_beats = self._weights_port(accel, data_width)
        self.registers = ControlRegisters(address_bits=32 if address_width <= 32 else 64,
                                          mode_bits=1)
        self.offsets = self.registers.offsets
        self.sequencer = RunSequencer(address_width, data_width, self.input_words,
                                      self.output_words, self.load_beats)
        members = {"control": In(AxiLiteSignature(12)),
                   "m_axi": Out(AxiSignature(address_width, data_width, id_width))}
        if self.load_beats:
            self.weights_reader = AxiReader(address_width, data_width, **masters)
            members["m_axi_weights"] = Out(AxiSignature(address_width, data_width, id_width,
                                                        write=False))
        super().__init__(members)

    @staticmethod
    def _weights_port(accel, data_width):
        """(load_bits, load_beats) of `accel`'s weights port, or (0, 0) without one."""
        if "w" not in accel.signature.members or not hasattr(accel, "load_beats"):
            return 0, 0
        load_bits = Shape.cast(accel.signature.members["w"].signature.members["payload"]
                               .shape).width
        if load_bits > data_width:
            raise ValueError(f"MemoryAccelerator: weight words of {load_bits} bits do not fit "
                             f"the {data_width}-bit bus")
        return load_bits, accel.load_beats

    def elaborate(self, platform):
        m = Module()
        m.submodules.registers = registers = self.registers
        m.submodules.sequencer = sequencer = self.sequencer
        m.submodules.reader, m.submodules.unpack = self.reader, self.unpack
        m.submodules.accel = accel = self.accel
        m.submodules.pack, m.submodules.writer = self.pack, self.writer
        wiring.connect(m, wiring.flipped(self.control), registers.s_axil)
        m.d.comb += [
            sequencer.start.eq(registers.start), sequencer.load.eq(registers.mode[0]),
            sequencer.batch.eq(registers.batch),
            sequencer.input_address.eq(registers.input_address),
            sequencer.output_address.eq(registers.output_address),
            sequencer.input_busy.eq(self.reader.busy), sequencer.output_busy.eq(self.writer.busy),
            registers.done.eq(sequencer.done),
        ]
        wiring.connect(m, sequencer.input, self.reader.cmd)
        wiring.connect(m, sequencer.output, self.writer.cmd)
        wiring.connect(m, self.reader.o, self.unpack.i)
        wiring.connect(m, self.unpack.o, accel.i)
        wiring.connect(m, accel.o, self.pack.i)
        wiring.connect(m, self.pack.o, self.writer.i)
        connect_channels(m, self.m_axi, self.reader.m_axi)
        connect_channels(m, self.m_axi, self.writer.m_axi)
        if self.load_beats:
            m.submodules.weights_reader = loader = self.weights_reader
            wiring.connect(m, sequencer.weights, loader.cmd)
            connect_channels(m, self.m_axi_weights, loader.m_axi)
            m.d.comb += [
                sequencer.weights_address.eq(registers.weights_address),
                sequencer.weights_busy.eq(loader.busy),
                accel.w.payload.eq(loader.o.payload[:self.load_bits]),
                accel.w.valid.eq(loader.o.valid), loader.o.ready.eq(accel.w.ready),
            ]
        return m
