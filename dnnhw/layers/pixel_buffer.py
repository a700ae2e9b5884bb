"""A ping-pong pixel buffer: the input store of the conv engine and of the LSTM's gate engine."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out


__all__ = ["PixelBuffer"]


class PixelBuffer(wiring.Component):
    """A ping-pong store of one pixel's beats: `i` fills one bank while the other is read.

    A pixel is the `beats` beats a reader needs at once: a conv window's input channel groups
    (`ConvEngine`), an LSTM input vector x_t (`GateEngine`). A bank is *full* once it holds all
    `beats` beats of a pixel; the reader then reads it at any addresses, in any order, and
    `release` hands it back to the writer. `i` is ready whenever the bank being written is not
    full, so the buffer takes one beat per cycle while the reader keeps up.

    Parameters
    ----------
    layout : data.Layout
        One beat.
    beats : int
        Beats per pixel.

    Members
    -------
    i : In(stream.Signature(layout))
        Beats, pixel after pixel.
    full : Out(1)
        The bank being read holds a whole pixel.
    addr : In(range(beats))
        Beat to read from the full bank.
    en : In(1)
        Read enable: on a cycle with `en` high, `data` takes the beat at `addr` after the clock
        edge (a memory read port; register it before use).
    data : Out(layout)
    release : In(1)
        The reader is done with the full bank (it may have read it on this same cycle).
    """

    def __init__(self, layout, beats):
        self._layout = layout
        self._beats = beats
        super().__init__({"i": In(stream.Signature(layout)), "full": Out(1),
                          "addr": In(range(beats)), "en": In(1), "data": Out(layout),
                          "release": In(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.memory = mem = memory.Memory(shape=self._layout, depth=2 * self._beats, init=[])
        write, read = mem.write_port(), mem.read_port(transparent_for=())
        full = [Signal(name=f"full{bank}") for bank in range(2)]
        count = Signal(range(self._beats))            # beat being written
        bank_w = Signal()                              # bank being written
        bank_r = Signal()                              # bank being read
        m.d.comb += [
            self.i.ready.eq(~Mux(bank_w, full[1], full[0])),
            write.addr.eq(Mux(bank_w, self._beats, 0) + count),
            write.data.eq(self.i.payload),
            write.en.eq(self.i.valid & self.i.ready),
            self.full.eq(Mux(bank_r, full[1], full[0])),
            read.addr.eq(Mux(bank_r, self._beats, 0) + self.addr),
            read.en.eq(self.en),
            self.data.eq(read.data),
        ]
        filled = write.en & (count == self._beats - 1)
        with m.If(write.en):
            m.d.sync += count.eq(Mux(filled, 0, count + 1))
        m.d.sync += [bank_w.eq(bank_w ^ filled), bank_r.eq(bank_r ^ self.release)]
        for bank in range(2):
            with m.If(filled & (bank_w == bank)):
                m.d.sync += full[bank].eq(1)
            with m.If(self.release & (bank_r == bank)):
                m.d.sync += full[bank].eq(0)
        return m
