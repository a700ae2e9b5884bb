"""Max and average pooling: a sliding window followed by a reduction over each window.

Max pooling pads with the most negative integer and takes the largest element of every window.
Average pooling pads with zero, sums each window exactly, then multiplies the sum by
m = `golden.avg_multiplier(n)` and round-shifts it, with n the output position's divisor from
`golden.avg_divisors`, and saturates. The output keeps the input's format.
"""

import numpy as np
from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .. import geometry, golden
from .common import clip, pixel_layout, round_shift, window_layout
from .sliding_window import SlidingWindow


__all__ = ["Pool", "WindowReduce", "AverageScale"]


def _tree(m, values, op, name):
    """`op` over `values` as a balanced binary tree, a signal per node (so that the comparator
    tree's shared operands stay shared in simulation)."""
    level = 0
    while len(values) > 1:
        pairs = [values[j:j + 2] for j in range(0, len(values), 2)]
        values = []
        for j, pair in enumerate(pairs):
            node = op(*pair) if len(pair) == 2 else pair[0]
            values.append(Signal(node.shape(), name=f"{name}_{level}_{j}"))
            m.d.comb += values[-1].eq(node)
        level += 1
    return values[0]


def _rom(values, index):
    """The constant `values[index]`, for a signal `index`, as a multiplexer of constants."""
    width = max(max(int(v) for v in values).bit_length(), 1)
    return Const(sum(int(v) << (j * width) for j, v in enumerate(values)),
                 width * len(values)).word_select(index, width)


class WindowReduce(wiring.Component):
    """The largest element, or the exact sum, of every window, per lane.

    Parameters
    ----------
    bits : int
        Bits of an input element.
    lanes : int
        Channels per beat.
    positions : int
        Kernel positions per window (kh·kw).
    kind : "max" or "sum"

    Members
    -------
    i : In(stream.Signature(window_layout(bits, lanes, positions)))
    o : Out(stream.Signature(pixel_layout(out_bits, lanes)))
        One beat per window; `out_bits` is `bits` for "max" and bits + ceil(log2(positions)) for
        "sum", so the sum never overflows.

    One beat per cycle; latency 1 cycle (a register stage after the comparator or adder tree).
    """

    latency = 1

    def __init__(self, bits, lanes, positions, kind):
        if kind not in ("max", "sum"):
            raise ValueError(f"WindowReduce: kind must be 'max' or 'sum', not {kind!r}")
        self._lanes, self._positions, self._kind = lanes, positions, kind
        self.out_bits = bits if kind == "max" else bits + (positions - 1).bit_length()
        super().__init__({
            "i": In(stream.Signature(window_layout(bits, lanes, positions))),
            "o": Out(stream.Signature(pixel_layout(self.out_bits, lanes))),
        })

    def elaborate(self, platform):
        m = Module()
        op = (lambda a, b: Mux(a > b, a, b)) if self._kind == "max" else (lambda a, b: a + b)
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.ready):
            m.d.sync += self.o.valid.eq(self.i.valid)
            for lane in range(self._lanes):
                values = [self.i.payload[k][lane] for k in range(self._positions)]
                m.d.sync += self.o.payload[lane].eq(_tree(m, values, op, f"{self._kind}{lane}"))
        return m


class AverageScale(wiring.Component):
    """Sums divided by the divisor of their output position, as golden's average pooling does.

    Every beat is one channel group of an output position; positions come row-major, each with
    `groups` beats. A sum x at a position of divisor n becomes
    ``saturate(round_shift(x · m, k), bits)`` with (m, k) = `golden.avg_multiplier(n)`: the
    product register holds x · m (m < 2**17, one DSP per lane) and which of the layer's shifts k
    applies; the output register takes the round shift and saturation. (m, k) is a constant when
    all divisors are equal; otherwise position counters select it from a table over (row class,
    column class), where rows (columns) with equal divisors share a class.

    Parameters
    ----------
    divisors : (H_out, W_out) int array
        The divisor of every output position (`golden.avg_divisors`).
    groups : int
        Beats per position (C / lanes).
    in_bits : int
        Bits of a sum.
    bits : int
        Bits of a result.
    lanes : int
        Channels per beat.
    ratio : float
        The input's scale over the output's (`golden.avg_multiplier`): 1 keeps the format.
    bounds : (int, int), optional
        The result's range, by default all of `bits`.

    Members
    -------
    i : In(stream.Signature(pixel_layout(in_bits, lanes)))
    o : Out(stream.Signature(pixel_layout(bits, lanes)))

    One beat per cycle; latency 2 cycles (product register, then output register).
    """

    latency = 2

    def __init__(self, divisors, groups, in_bits, bits, lanes, ratio=1.0, bounds=None):
        divisors = np.asarray(divisors, dtype=np.int64)
        self._groups, self._bits, self._lanes = groups, bits, lanes
        self._bounds = bounds or (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
        reciprocal = {int(n): golden.avg_multiplier(int(n), ratio) for n in np.unique(divisors)}
        self.shifts = sorted({k for _, k in reciprocal.values()})
        _, row_first, row_class = np.unique(divisors, axis=0, return_index=True, return_inverse=True)
        _, col_first, col_class = np.unique(divisors, axis=1, return_index=True, return_inverse=True)
        self._row_class, self._col_class = row_class.reshape(-1), col_class.reshape(-1)
        classes = [reciprocal[int(divisors[r, c])] for r in row_first for c in col_first]
        self._multipliers = [mult for mult, _ in classes]
        self._shift_index = [self.shifts.index(k) for _, k in classes]
        self._product_bits = in_bits + max(self._multipliers).bit_length()
        super().__init__({
            "i": In(stream.Signature(pixel_layout(in_bits, lanes))),
            "o": Out(stream.Signature(pixel_layout(bits, lanes))),
        })

    def _reciprocal(self, m, step):
        """(m, index of k) of the current position's divisor; counts positions on `step`."""
        if len(self._multipliers) == 1:
            return Const(self._multipliers[0]), Const(0)
        h_out, w_out = len(self._row_class), len(self._col_class)
        group, col, row = Signal(range(self._groups)), Signal(range(w_out)), Signal(range(h_out))
        with m.If(step):
            m.d.sync += group.eq(Mux(group == self._groups - 1, 0, group + 1))
            with m.If(group == self._groups - 1):
                m.d.sync += col.eq(Mux(col == w_out - 1, 0, col + 1))
                with m.If(col == w_out - 1):
                    m.d.sync += row.eq(Mux(row == h_out - 1, 0, row + 1))
        col_classes = int(self._col_class.max()) + 1
        index = _rom(self._row_class, row) * col_classes + _rom(self._col_class, col)
        return _rom(self._multipliers, index), _rom(self._shift_index, index)

    def elaborate(self, platform):
        m = Module()
        product = Signal(data.ArrayLayout(signed(self._product_bits), self._lanes))
        product_valid, shift = Signal(), Signal(range(len(self.shifts)))
        product_ready = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(~product_valid | product_ready)
        multiplier, shift_index = self._reciprocal(m, self.i.valid & self.i.ready)
        with m.If(self.i.ready):
            m.d.sync += [product_valid.eq(self.i.valid), shift.eq(shift_index)]
            m.d.sync += [product[lane].eq(self.i.payload[lane] * multiplier) for lane in range(self._lanes)]
        with m.If(product_ready):
            m.d.sync += self.o.valid.eq(product_valid)
            with m.Switch(shift):
                for index, k in enumerate(self.shifts):
                    with m.Case(index):
                        m.d.sync += [self.o.payload[lane].eq(clip(round_shift(product[lane], k),
                                                                   *self._bounds))
                                     for lane in range(self._lanes)]
        return m


class Pool(wiring.Component):
    """Max or average pooling of a (C, H, W) feature-map stream (ops "maxpool", "avgpool").

    A `SlidingWindow`, a `WindowReduce` and, for average pooling, an `AverageScale`.

    Parameters
    ----------
    shape : ir.Shape
        The input map (C, H, W).
    kernel, stride, pads : tuples
        (kh, kw), (sh, sw), (top, left, bottom, right), as the layer's attributes.
    bits : int
        Bits of an element, in and out (pooling keeps the input's format).
    lanes : int
        Channels per beat, in and out; divides C.
    kind : "max" or "avg"
    count_include_pad : bool
        Average pooling: divide by kh·kw everywhere (True) or by the number of the window's
        elements inside the image (False), as `golden.avg_divisors`.

    Members
    -------
    i : In(stream.Signature(pixel_layout(bits, lanes)))
        The input map, pixel by pixel, `lanes` channels per beat.
    o : Out(stream.Signature(pixel_layout(bits, lanes)))
        The pooled map (C, H_out, W_out), same order.

    Attributes
    ----------
    out_shape : ir.Shape
    cycles_per_frame : int
        H_pad · W_pad · C/lanes, the sliding window's rate (exact when never stalled).
    latency : int
        The sliding window's latency plus 1 (max) or 3 (average) (exact,
        `geometry.PoolGeometry`).
    """

    def __init__(self, shape, kernel, stride, pads, bits, lanes, kind="max", count_include_pad=False):
        if kind not in ("max", "avg"):
            raise ValueError(f"Pool: kind must be 'max' or 'avg', not {kind!r}")
        positions = kernel[0] * kernel[1]
        window = SlidingWindow(shape, kernel, stride, pads, bits, lanes,
                               pad_value=-(1 << (bits - 1)) if kind == "max" else 0)
        reduce = WindowReduce(bits, lanes, positions, "max" if kind == "max" else "sum")
        self._stages = {"window": window, "reduce": reduce}
        if kind == "avg":
            attrs = {"kernel": tuple(kernel), "stride": tuple(stride), "pads": tuple(pads),
                     "count_include_pad": count_include_pad}
            divisors = golden.avg_divisors(window.shape, attrs)
            if divisors.min() == 0:
                raise ValueError(f"Pool: a {kernel[0]}x{kernel[1]} window lies wholly in the "
                                 f"padding {tuple(pads)}; an average excluding padding is undefined")
            self._stages["scale"] = AverageScale(divisors, window.groups, reduce.out_bits, bits, lanes)
        self.out_shape = window.out_shape
        self.geometry = geometry.pool(shape, kernel, stride, pads, lanes, kind)
        self.cycles_per_frame, self.latency = self.geometry.cycles_per_frame, self.geometry.latency
        super().__init__({
            "i": In(stream.Signature(pixel_layout(bits, lanes))),
            "o": Out(stream.Signature(pixel_layout(bits, lanes))),
        })

    def elaborate(self, platform):
        m = Module()
        stages = list(self._stages.values())
        for name, stage in self._stages.items():
            m.submodules[name] = stage
        wiring.connect(m, wiring.flipped(self.i), stages[0].i)
        for source, sink in zip(stages, stages[1:]):
            wiring.connect(m, source.o, sink.i)
        wiring.connect(m, stages[-1].o, wiring.flipped(self.o))
        return m
