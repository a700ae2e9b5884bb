"""Stream layouts and fixed-point arithmetic shared by the layer blocks.

The arithmetic helpers build Amaranth expressions that compute exactly what `dnnhw.golden`'s
functions of the same name compute.
"""

from amaranth.hdl import Mux, signed
from amaranth.lib import data


__all__ = ["pixel_layout", "window_layout", "round_shift", "saturate", "shift_add_product"]


def pixel_layout(bits, lanes):
    """`lanes` consecutive channels of one pixel, each a signed `bits` integer."""
    return data.ArrayLayout(signed(bits), lanes)


def window_layout(bits, lanes, positions):
    """A window: `positions` kernel positions (row-major over kh×kw), each `lanes` channels."""
    return data.ArrayLayout(pixel_layout(bits, lanes), positions)


def round_shift(value, shift):
    """`value` shifted right by the constant `shift` rounding half up (left for a negative one)."""
    if shift > 0:
        return (value + (1 << (shift - 1))) >> shift
    return value << -shift


def saturate(value, bits):
    """`value` clipped to the range of a signed `bits` integer, as a `signed(bits)` expression."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return Mux(value > hi, hi, Mux(value < lo, lo, value))[:bits].as_signed()


def shift_add_product(a, b):
    """a · b of two signed values as a sum of shifted partial products, one per bit of the
    narrower operand (its sign bit's subtracted): logic and carry chains that Yosys does not
    recognise as a multiplication, so it stays out of the DSP blocks."""
    if len(b) > len(a):
        a, b = b, a
    terms = [Mux(b[i], a << i, 0) for i in range(len(b) - 1)]
    terms.append(-Mux(b[-1], a << (len(b) - 1), 0))
    while len(terms) > 1:
        terms = [terms[j] + terms[j + 1] if j + 1 < len(terms) else terms[j]
                 for j in range(0, len(terms), 2)]
    return terms[0][:len(a) + len(b)].as_signed()
