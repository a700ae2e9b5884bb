"""Gearboxes between the bus words of a feature map in memory and an accelerator's stream.

`WordsToLanes` turns the words `AxiReader` streams out into beats of `lanes` elements, dropping
each frame's padding; `LanesToWords` turns beats into the words `AxiWriter` writes, padding
each frame's last word with zeros. The memory layout is `layout`'s: elements of
``ceil(bits / 8)`` bytes, little-endian two's complement, each frame starting on a word.

Both keep the elements in one buffer register of `capacity` elements, the oldest lowest, with a
count: a transfer on `o` shifts the oldest elements out, a transfer on `i` writes its elements
just above the ones kept (a variable shift). Each side's handshake reads only registers
(``i.ready`` when the buffer has room for a whole input, ``o.valid`` when it holds a whole
output), and the capacity, out + 2 · in − 1 elements, is what keeps both sides at full rate
without a path from one side's ready to the other's: the narrower side then moves one transfer
per cycle.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..layers.common import pixel_layout
from .layout import check_layout, element_bytes, frame_words


__all__ = ["WordsToLanes", "LanesToWords"]


def _check(block, data_width, bits, lanes, frame_elements):
    check_layout(block, bits, data_width)
    if lanes < 1:
        raise ValueError(f"{block}: lanes must be at least 1, got {lanes}")
    if frame_elements < 1 or frame_elements % lanes:
        raise ValueError(f"{block}: lanes={lanes} must divide the frame's {frame_elements} "
                         f"elements")


class _Buffer:
    """The element buffer both gearboxes are built on: `capacity` elements of `bits` bits in
    `elements`, the oldest lowest, `count` of them valid."""

    def __init__(self, capacity, bits):
        self.capacity, self.bits = capacity, bits
        self.elements = Signal(capacity * bits)
        self.count = Signal(range(capacity + 1))

    def slot(self, j):
        return self.elements[j * self.bits:(j + 1) * self.bits]

    def update(self, m, put, data, put_count, take, take_count, short=None):
        """Each cycle: with `take`, shift out `take_count` elements, or ``short[1]`` while the
        condition ``short[0]`` holds; with `put`, write `data` (whole elements) just above the
        elements kept and count `put_count` of them."""
        b = self.bits
        kept, removed = self.elements[take_count * b:], Const(take_count)
        if short is not None:
            condition, count = short
            kept = Mux(condition, self.elements[count * b:], kept)
            removed = Mux(condition, count, take_count)
        shifted = Mux(take, kept, self.elements)
        base = Signal.like(self.count)                   # where `data` goes: the elements kept
        m.d.comb += base.eq(self.count - Mux(take, removed, 0))
        inserted = data << (base * b)
        m.d.sync += [
            self.elements.eq(Cat(*(Mux(put & (base <= j), inserted[j * b:(j + 1) * b],
                                       shifted[j * b:(j + 1) * b])
                                   for j in range(self.capacity)))),
            self.count.eq(base + Mux(put, put_count, 0)),
        ]


class WordsToLanes(wiring.Component):
    """Bus words of feature-map frames in `layout`'s memory layout → beats of `lanes`
    elements, in stream order, each frame's padding dropped.

    A word holds ``per_word = data_width / (8 · ceil(bits / 8))`` elements, element j in its
    bits [j · 8 · ceil(bits / 8), ... + bits) (the bits above them are ignored); a frame is
    `words` words, of which the last holds the frame's remaining elements and padding. `lanes`
    need not divide `per_word`: a beat may take elements from two words.

    Timing: an element is on `o` the cycle after the word holding it is taken (latency 1).
    ``i.ready`` is high while the buffer has room for a word, ``o.valid`` while it holds a
    beat; neither depends on the other side. Rate: one word per cycle while ``lanes ≥
    per_word``, otherwise one beat per cycle: a frame passes in max(`words`, frame_elements /
    lanes) cycles when neither side stalls.

    Parameters
    ----------
    data_width : int
        Bits of a bus word, a power of two from 8 to 1024.
    bits : int
        Bits of an element; its ceil(bits / 8) bytes must divide the word's.
    lanes : int
        Elements per output beat; must divide `frame_elements`.
    frame_elements : int
        Elements of a frame.

    Members
    -------
    i : In(stream.Signature(data_width))
    o : Out(stream.Signature(pixel_layout(bits, lanes)))

    Attributes
    ----------
    per_word, words : int
        Elements per word; words per frame (`layout.frame_words`).
    capacity : int
        Elements the buffer holds: lanes + 2 · per_word − 1.

    Raises
    ------
    ValueError
        If the layout is impossible (`layout.check_layout`) or `lanes` does not divide the
        frame.
    """

    def __init__(self, data_width, bits, lanes, frame_elements):
        _check("WordsToLanes", data_width, bits, lanes, frame_elements)
        self.data_width, self.bits, self.lanes = data_width, bits, lanes
        self.frame_elements = frame_elements
        self.slot_bits = 8 * element_bytes(bits)
        self.per_word = data_width // self.slot_bits
        self.words = frame_words(frame_elements, bits, data_width)
        self.capacity = lanes + 2 * self.per_word - 1
        super().__init__({"i": In(stream.Signature(data_width)),
                          "o": Out(stream.Signature(pixel_layout(bits, lanes)))})

    def elaborate(self, platform):
        m = Module()
        buffer = _Buffer(self.capacity, self.bits)
        word = Signal(range(self.words))                 # position of the next word in its frame
        last = word == self.words - 1
        tail = self.frame_elements - (self.words - 1) * self.per_word   # elements of a last word
        put, take = self.i.valid & self.i.ready, self.o.valid & self.o.ready
        data = Cat(*(self.i.payload[j * self.slot_bits:][:self.bits]
                     for j in range(self.per_word)))
        m.d.comb += [
            self.i.ready.eq(buffer.count + self.per_word <= self.capacity),
            self.o.valid.eq(buffer.count >= self.lanes),
            self.o.payload.eq(buffer.elements[:self.lanes * self.bits]),
        ]
        buffer.update(m, put, data, Mux(last, tail, self.per_word), take, self.lanes)
        with m.If(put):
            m.d.sync += word.eq(Mux(last, 0, word + 1))
        return m


class LanesToWords(wiring.Component):
    """Beats of `lanes` elements of feature-map frames, in stream order → bus words in
    `layout`'s memory layout, each frame's last word padded with zeros.

    A word holds ``per_word = data_width / (8 · ceil(bits / 8))`` elements, element j
    sign-extended to ceil(bits / 8) bytes in its bits [j · 8 · ceil(bits / 8), ...); a frame is
    `words` words, of which the last holds the frame's remaining elements and zero bytes after
    them. `lanes` need not divide `per_word`: a word may take elements from several beats, and
    a beat's elements may go into two words (never two frames: `lanes` divides the frame).

    Timing: a word is on `o` the cycle after the beat completing it is taken (latency 1), or
    the cycle after the word before it leaves if that is later (a beat can complete two words).
    ``i.ready`` is high while the buffer has room for a beat, ``o.valid`` while it holds a
    word's elements; neither depends on the other side. Rate: one beat per cycle while
    ``lanes ≤ per_word``, otherwise one word per cycle: a frame passes in
    max(frame_elements / lanes, `words`) cycles when neither side stalls.

    Parameters
    ----------
    data_width, bits, lanes, frame_elements : int
        As `WordsToLanes`'s.

    Members
    -------
    i : In(stream.Signature(pixel_layout(bits, lanes)))
    o : Out(stream.Signature(data_width))

    Attributes
    ----------
    per_word, words : int
        Elements per word; words per frame (`layout.frame_words`).
    capacity : int
        Elements the buffer holds: per_word + 2 · lanes − 1.

    Raises
    ------
    ValueError
        As `WordsToLanes`'s.
    """

    def __init__(self, data_width, bits, lanes, frame_elements):
        _check("LanesToWords", data_width, bits, lanes, frame_elements)
        self.data_width, self.bits, self.lanes = data_width, bits, lanes
        self.frame_elements = frame_elements
        self.slot_bits = 8 * element_bytes(bits)
        self.per_word = data_width // self.slot_bits
        self.words = frame_words(frame_elements, bits, data_width)
        self.capacity = self.per_word + 2 * lanes - 1
        super().__init__({"i": In(stream.Signature(pixel_layout(bits, lanes))),
                          "o": Out(stream.Signature(data_width))})

    def elaborate(self, platform):
        m = Module()
        buffer = _Buffer(self.capacity, self.bits)
        word = Signal(range(self.words))                 # position of the word on `o` in its frame
        last = word == self.words - 1
        tail = self.frame_elements - (self.words - 1) * self.per_word   # elements of a last word
        put, take = self.i.valid & self.i.ready, self.o.valid & self.o.ready
        slots = []
        for j in range(self.per_word):
            value = buffer.slot(j)
            extended = Cat(value, value[-1].replicate(self.slot_bits - self.bits))
            slots.append(Mux(last, 0, extended) if j >= tail else extended)
        m.d.comb += [
            self.i.ready.eq(buffer.count + self.lanes <= self.capacity),
            self.o.valid.eq(buffer.count >= Mux(last, tail, self.per_word)),
            self.o.payload.eq(Cat(*slots)),
        ]
        buffer.update(m, put, self.i.payload.as_value(), self.lanes, take, self.per_word,
                      short=(last, tail))
        with m.If(take):
            m.d.sync += word.eq(Mux(last, 0, word + 1))
        return m
