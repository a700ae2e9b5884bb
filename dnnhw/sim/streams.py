"""Feature maps as stream beats, and stream payloads as flat lists of integers.

A (C, H, W) map travels pixel by pixel, row-major, channels innermost; with `lanes` channels per
beat a pixel takes C / lanes beats (DESIGN.md, "Streams"). On the wire a payload built from
`ArrayLayout`s is one bit vector whose element j sits at bits [j·bits, (j+1)·bits).
"""

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data


__all__ = ["to_beats", "from_beats", "element_shape", "pack", "unpack"]


def to_beats(x, lanes):
    """(C, H, W) array → (H·W·C/lanes, lanes) beats in stream order."""
    c, h, w = x.shape
    assert c % lanes == 0, (c, lanes)
    return np.ascontiguousarray(np.asarray(x).transpose(1, 2, 0)).reshape(h * w * c // lanes, lanes)


def from_beats(beats, shape):
    """Beats in stream order → (C, H, W) array of `shape`."""
    c, h, w = shape
    return np.asarray(beats).reshape(h, w, c).transpose(2, 0, 1)


def element_shape(layout):
    """(count, Shape of one element) of a payload made of nested `ArrayLayout`s over one shape."""
    count = 1
    while isinstance(layout, data.ArrayLayout):
        count *= layout.length
        layout = layout.elem_shape
    return count, Shape.cast(layout)


def pack(values, shape):
    """Integers → one unsigned bit vector (element 0 in the low bits)."""
    mask = (1 << shape.width) - 1
    word = 0
    for j, v in enumerate(values):
        word |= (int(v) & mask) << (j * shape.width)
    return word


def unpack(word, count, shape):
    """One bit vector → `count` integers, sign-extended when `shape` is signed."""
    mask = (1 << shape.width) - 1
    out = []
    for j in range(count):
        v = (word >> (j * shape.width)) & mask
        if shape.signed and v >> (shape.width - 1):
            v -= 1 << shape.width
        out.append(v)
    return out
