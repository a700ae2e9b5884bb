"""The sliding window: a feature-map stream in, one kh×kw window per output pixel out.

The block walks the *padded* frame one word (one pixel's channel group) at a time. A word inside
the image is an input beat; a word in the padding is `pad_value`, inserted without consuming
input. A frame starts only once its first input beat is offered, so a window lying wholly in the
top padding is never emitted for a frame that has not arrived. Two delay lines hold the rest of the window:

- the line buffer, ``W_pad · C/lanes`` words deep, holds for every (column, channel group) of the
  padded row the same column of the kh - 1 rows above;
- the column buffer, ``C/lanes`` words deep, holds for every channel group the kw - 1 columns
  to the left of the current one.

A window is emitted when the current word completes one at the stride's phase, so output pixel
(ho, wo) is the window whose top-left corner is padded row ho·sh, column wo·sw, exactly as
`dnnhw.golden.window_view` defines it.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .. import geometry
from ..ir import Shape
from .common import pixel_layout, window_layout


__all__ = ["SlidingWindow", "DelayLine"]


class DelayLine(wiring.Component):
    """A word delayed by `depth` enabled cycles (a line buffer).

    On a cycle with `en` high, `o` is the word that `i` held on the `depth`-th previous cycle with
    `en` high, and `i` is stored. Before `depth` such cycles have passed, `o` is unspecified.

    A depth of one or two is a chain of registers. A larger depth is a memory of ``depth - 1``
    words, with one write port and one synchronous read port, followed by a register: the read
    port's data register always holds the word at the next address (it reads that address on
    every enabled cycle), and the output register takes it on the next enabled cycle, so a
    memory's slow read output only ever drives that register, and the line costs one read and
    one write per enabled cycle.

    Parameters
    ----------
    shape : shape-castable
        The word.
    depth : int
        The delay, at least 1.

    Members
    -------
    i : In(shape)
        The word to store.
    o : Out(shape)
        The word stored `depth` enabled cycles ago.
    en : In(1)
        Store `i` and advance.
    """

    def __init__(self, shape, depth):
        if depth < 1:
            raise ValueError(f"DelayLine: depth must be at least 1, not {depth}")
        self._shape = shape
        self._depth = depth
        super().__init__({"i": In(shape), "o": Out(shape), "en": In(1)})

    def elaborate(self, platform):
        m = Module()
        if self._depth <= 2:
            word = self.i
            for _ in range(self._depth - 1):
                word, last = Signal.like(self.o), word
                with m.If(self.en):
                    m.d.sync += word.eq(last)
            with m.If(self.en):
                m.d.sync += self.o.eq(word)
            return m
        lines = self._depth - 1
        m.submodules.mem = mem = memory.Memory(shape=self._shape, depth=lines, init=[])
        write, read = mem.write_port(), mem.read_port(domain="sync")
        addr = Signal(range(lines))
        next_addr = Mux(addr == lines - 1, 0, addr + 1)
        with m.If(self.en):
            m.d.sync += [addr.eq(next_addr), self.o.eq(read.data)]
        m.d.comb += [
            write.addr.eq(addr), write.data.eq(self.i), write.en.eq(self.en),
            read.addr.eq(next_addr), read.en.eq(self.en),
        ]
        return m


class _PaddedAxis(wiring.Component):
    """Position along one axis of the padded frame, stepping on `step`.

    `first`, `last`: the first and last padded positions. `inside`: a position of the image, not
    of the padding. `emit`: the position ends a window (the kernel fits before it and the
    window's first position is a multiple of the stride). Each is a register, computed for the
    next position when stepping, so that no comparison lies on the window's enable path.
    """

    step: In(1)
    first: Out(1)
    last: Out(1)
    inside: Out(1)
    emit: Out(1)

    def __init__(self, padded, pad_before, extent, kernel, stride):
        self._padded, self._before, self._extent = padded, pad_before, extent
        self._kernel, self._stride = kernel, stride
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        pos = Signal(range(self._padded))
        phase = Signal(range(max(self._kernel, self._stride)), init=self._kernel - 1)
        first, last = Signal(init=1), Signal(init=self._padded == 1)
        inside, emit = Signal(init=self._before == 0), Signal(init=self._kernel == 1)
        m.d.comb += [self.first.eq(first), self.last.eq(last), self.inside.eq(inside),
                     self.emit.eq(emit)]
        next_pos = Mux(last, 0, pos + 1)
        next_phase = Mux(last, self._kernel - 1, Mux(phase == 0, self._stride - 1, phase - 1))
        with m.If(self.step):
            m.d.sync += [
                pos.eq(next_pos), phase.eq(next_phase),
                first.eq(last),
                last.eq(next_pos == self._padded - 1),
                inside.eq((next_pos >= self._before) & (next_pos < self._before + self._extent)),
                emit.eq(next_phase == 0),
            ]
        return m


class SlidingWindow(wiring.Component):
    """kh×kw windows of a (C, H, W) feature-map stream, with stride and padding.

    Parameters
    ----------
    shape : ir.Shape
        The input map (C, H, W).
    kernel : (int, int)
        Window size (kh, kw).
    stride : (int, int)
        Step between windows (sh, sw).
    pads : (int, int, int, int)
        Padding (top, left, bottom, right); any side may exceed the kernel size minus one.
    bits : int
        Bits of a (signed) element.
    lanes : int
        Channels per beat; divides C.
    pad_value : int
        The value of every padded element.

    Members
    -------
    i : In(stream.Signature(pixel_layout(bits, lanes)))
        The input map, pixel by pixel, row-major, `lanes` channels per beat.
    o : Out(stream.Signature(window_layout(bits, lanes, kh·kw)))
        One beat per output pixel (row-major) and channel group: element [i·kw + j][lane] is
        padded row ho·sh + i, column wo·sw + j, channel group·lanes + lane
        (`golden.window_view`).

    Attributes
    ----------
    geometry : geometry.Window
    out_shape : ir.Shape
        (C, H_out, W_out) with H_out = (H_pad - kh) // sh + 1, W_out likewise.
    cycles_per_frame : int
        H_pad · W_pad · C/lanes: one padded word per cycle, when the input is always valid and
        the output always ready (exact).
    latency : int
        Cycles from the first input transfer to the first output transfer at that rate (exact,
        `geometry.Window.latency`); negative when a whole window lies in the top padding: that
        window leaves while the first input beat is offered but not yet taken.
    """

    def __init__(self, shape, kernel, stride, pads, bits, lanes, pad_value=0):
        self.shape, self.kernel, self.stride = Shape(*shape), tuple(kernel), tuple(stride)
        self.pads, self.bits, self.lanes, self.pad_value = tuple(pads), bits, lanes, pad_value
        (kh, kw), (sh, sw), (top, left, bottom, right) = self.kernel, self.stride, self.pads
        c, h, w = self.shape
        if c % lanes:
            raise ValueError(f"SlidingWindow: lanes={lanes} must divide {c} channels")
        if min(kh, kw, sh, sw) < 1 or min(self.pads) < 0:
            raise ValueError(f"SlidingWindow: kernel {self.kernel} and stride {self.stride} must "
                             f"be positive and pads {self.pads} not negative")
        self.padded = (h + top + bottom, w + left + right)
        if kh > self.padded[0] or kw > self.padded[1]:
            raise ValueError(f"SlidingWindow: kernel {kh}x{kw} is larger than the padded map "
                             f"{self.padded[0]}x{self.padded[1]}")
        if not -(1 << (bits - 1)) <= pad_value < 1 << (bits - 1):
            raise ValueError(f"SlidingWindow: pad_value {pad_value} does not fit in {bits} bits")
        self.geometry = walk = geometry.window(self.shape, kernel, stride, pads, lanes)
        self.groups = walk.groups
        self.out_shape = Shape(c, walk.out_h, walk.out_w)
        self.cycles_per_frame, self.latency = walk.cycles_per_frame, walk.latency
        super().__init__({
            "i": In(stream.Signature(pixel_layout(bits, lanes))),
            "o": Out(stream.Signature(window_layout(bits, lanes, kh * kw))),
        })

    def elaborate(self, platform):
        m = Module()
        (kh, kw), (sh, sw), (top, left, _, _) = self.kernel, self.stride, self.pads
        _, h, w = self.shape
        pixel = pixel_layout(self.bits, self.lanes)
        m.submodules.group = group = _PaddedAxis(self.groups, 0, self.groups, 1, 1)
        m.submodules.col = col = _PaddedAxis(self.padded[1], left, w, kw, sw)
        m.submodules.row = row = _PaddedAxis(self.padded[0], top, h, kh, sh)

        is_pad = ~(row.inside & col.inside)
        start = row.first & col.first & group.first
        available = self.i.valid | (is_pad & ~start)    # a frame starts once its input is there
        emit = row.emit & col.emit
        load = ~self.o.valid | self.o.ready             # the output register takes a new beat
        go = load | ~emit                               # the current word may advance
        advance = available & go
        word = Signal(pixel)
        m.d.comb += [
            self.i.ready.eq(~is_pad & go),
            group.step.eq(advance),
            col.step.eq(advance & group.last),
            row.step.eq(advance & group.last & col.last),
            word.eq(Mux(is_pad, pixel.const([self.pad_value] * self.lanes), self.i.payload)),
        ]

        column = [word]                             # rows r - kh + 1 .. r of this column
        if kh > 1:
            m.submodules.line_buffer = line = DelayLine(
                data.ArrayLayout(pixel, kh - 1), self.padded[1] * self.groups)
            column = [line.o[i] for i in range(kh - 1)] + column
            m.d.comb += [line.en.eq(advance), *(line.i[i].eq(column[i + 1]) for i in range(kh - 1))]
        columns = [column]                          # columns c - kw + 1 .. c of the window
        if kw > 1:
            m.submodules.column_buffer = cols = DelayLine(
                data.ArrayLayout(data.ArrayLayout(pixel, kh), kw - 1), self.groups)
            columns = [cols.o[j] for j in range(kw - 1)] + columns
            m.d.comb += [cols.en.eq(advance), *(cols.i[j][i].eq(columns[j + 1][i])
                                                for j in range(kw - 1) for i in range(kh))]

        with m.If(load):
            m.d.sync += self.o.valid.eq(available & emit)
            m.d.sync += [self.o.payload[i * kw + j].eq(columns[j][i])
                         for i in range(kh) for j in range(kw)]
        return m
