"""Transfer commands and their split into AXI4 INCR bursts."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .timing import PAGE_BYTES


__all__ = ["command_layout", "burst_layout", "check_burst_parameters", "BurstSplitter"]


def command_layout(address_width, data_width):
    """A transfer command: `address`, the base byte address (aligned to a beat: its low
    log2(data_width / 8) bits are ignored), and `beats`, the number of data words, wide enough
    for the whole address space (0 is a transfer of nothing)."""
    offset = (data_width // 8).bit_length() - 1
    return data.StructLayout({"address": address_width, "beats": address_width - offset + 1})


def burst_layout(address_width):
    """One AXI burst request: byte `address` and `length` in AXI's encoding, beats − 1."""
    return data.StructLayout({"address": address_width, "length": 8})


def check_burst_parameters(block, address_width, data_width, max_burst, outstanding, id_width):
    """Raise ValueError, naming `block`, if the parameters of an AXI4 burst master are out of
    range."""
    if data_width not in [8 << k for k in range(8)]:
        raise ValueError(f"{block}: data width {data_width} is not a power of two from 8 to "
                         f"1024 bits")
    if not 12 <= address_width <= 64:
        raise ValueError(f"{block}: address width {address_width} is outside 12 to 64 bits")
    if max_burst < 1:
        raise ValueError(f"{block}: burst length must be at least 1, got {max_burst}")
    if max_burst > 256:
        raise ValueError(f"{block}: burst length {max_burst} exceeds AXI4's 256 beats")
    if outstanding < 1:
        raise ValueError(f"{block}: outstanding requests must be at least 1, got {outstanding}")
    if id_width < 0:
        raise ValueError(f"{block}: ID width must be 0 or more, got {id_width}")


class BurstSplitter(wiring.Component):
    """Splits transfer commands into INCR bursts of at most `max_burst` beats, none crossing a
    4 KB boundary: each burst is as long as the beats left, `max_burst` and the beats to the
    next boundary allow (`timing.bursts` is the same rule in Python).

    A command is taken when the previous one's last burst leaves (in that same cycle), so
    back-to-back commands issue bursts on consecutive cycles. The burst on offer is computed
    combinationally from two registers (next word address, beats left); one burst per cycle.

    Parameters
    ----------
    address_width, data_width : int
        Byte address bits; bits of a beat.
    max_burst : int
        Beats of the longest burst, 1 to 256.

    Members
    -------
    i : In(stream.Signature(command_layout(address_width, data_width)))
    o : Out(stream.Signature(burst_layout(address_width)))
        Valid while the command taken has beats left.
    """

    def __init__(self, address_width, data_width, max_burst):
        self.address_width, self.data_width, self.max_burst = address_width, data_width, max_burst
        self.offset = (data_width // 8).bit_length() - 1          # byte-address bits of a beat
        self.page_words = PAGE_BYTES >> self.offset
        super().__init__({
            "i": In(stream.Signature(command_layout(address_width, data_width))),
            "o": Out(stream.Signature(burst_layout(address_width))),
        })

    def elaborate(self, platform):
        m = Module()
        word = Signal(self.address_width - self.offset)         # address of the next beat
        left = Signal.like(self.i.payload.beats)                # beats not yet requested
        in_page = word[:(self.page_words - 1).bit_length()]
        to_boundary = self.page_words - in_page
        limit = Mux(to_boundary < self.max_burst, to_boundary, self.max_burst)
        burst = Mux(left < limit, left, limit)
        m.d.comb += [
            self.o.valid.eq(left != 0),
            self.o.payload.address.eq(Cat(Const(0, self.offset), word)),
            self.o.payload.length.eq(burst - 1),
            self.i.ready.eq((left == 0) | (self.o.ready & (left <= limit))),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [word.eq(word + burst), left.eq(left - burst)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [word.eq(self.i.payload.address[self.offset:]),
                         left.eq(self.i.payload.beats)]
        return m
