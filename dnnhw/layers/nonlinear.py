"""Sigmoid and tanh by table interpolation: `golden.nonlinear` as a pipeline inside a block."""

from amaranth.hdl import Mux, Signal, signed
from amaranth.lib import data, memory

from .. import golden
from .common import round_shift


__all__ = ["Interpolator"]


class Interpolator:
    """`golden.nonlinear(kind, x, fmt_in, fmt_out)` built into a block's pipeline.

    A ROM of 2**TABLE_BITS entries (sample t[i] and delta t[i+1] − t[i]) read at the segment the
    input falls in, a register after the read, one multiplier (delta × position in the segment)
    followed by a register, and the rounding add. Input formats whose LSB is coarser than a
    segment (negative segment shift) index the table directly: the position is then 0 or 1.

    `build` returns the result `stages` = 3 pipeline stages after its input, as a combinational
    expression of `fmt_out.bits` bits.
    """

    stages = 3

    def __init__(self, kind, fmt_in, fmt_out):
        table = [int(t) for t in golden.nonlinear_table(kind, fmt_out)]
        shift = golden.segment_shift(kind, fmt_in)
        self.bits_out = fmt_out.bits
        self.pre_shift = max(-shift, 0)         # coarse inputs: scaled up to one segment per LSB
        self.segment_shift = max(shift, 0)
        self.segments = len(table) - 1
        self.address_bits = (self.segments - 1).bit_length()
        self.offset = (self.segments << self.segment_shift) // 2
        self.entry = data.StructLayout({"value": signed(fmt_out.bits), "delta": signed(fmt_out.bits + 1)})
        self.rom = [{"value": t, "delta": u - t} for t, u in zip(table, table[1:])]

    def build(self, m, step, advance, x, name):
        """The function of `x`, three `step`s later; `step(value, name)` registers a value on
        `advance`, `name` prefixes the signals and the ROM."""
        s, last = self.segment_shift, self.segments
        unclamped = (x << self.pre_shift) + self.offset        # p of golden.nonlinear
        p = Signal(unclamped.shape(), name=f"{name}_p")
        m.d.comb += p.eq(unclamped)
        low, high = p < 0, p >= last << s
        segment = Mux(low, 0, Mux(high, last - 1, p[s:s + self.address_bits]))
        position = Mux(low, 0, Mux(high, 1 << s, p[:s]))     # 0 ≤ position ≤ 2**s

        m.submodules[f"{name}_table"] = table = memory.Memory(shape=self.entry, depth=last, init=self.rom)
        read = table.read_port()
        m.d.comb += [read.addr.eq(segment), read.en.eq(advance)]
        position1 = step(position, f"{name}_position1")      # stage 1: the ROM read
        entry2 = step(read.data, f"{name}_entry2")           # stage 2: the read, registered
        position2 = step(position1, f"{name}_position2")
        value3 = step(entry2.value, f"{name}_value3")        # stage 3: the product, registered
        product3 = step(entry2.delta * position2, f"{name}_product3")
        # the interpolation stays between t[i] and t[i+1], so it fits bits_out as golden's saturate
        return (value3 + round_shift(product3, s))[:self.bits_out].as_signed()
