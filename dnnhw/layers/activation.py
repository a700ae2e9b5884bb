"""Elementwise activations on a pixel stream: ReLU, clamp, LeakyReLU, sigmoid and tanh."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .. import geometry, golden
from ..geometry import ACTIVATION_LATENCY
from ..ir import Format
from .common import pixel_layout, round_shift, saturate
from .nonlinear import Interpolator


__all__ = ["Activation"]


KINDS = ("relu", "clamp", "leaky_relu", "sigmoid", "tanh")


class Activation(wiring.Component):
    """An activation applied to every channel of a feature-map stream, as `golden` defines it.

    - ``relu``: ``max(x, 0)``, saturated to `bits_out`.
    - ``clamp``: ``min(max(x, lo), hi)`` with the integer bounds of `golden.clamp_bounds`,
      saturated to `bits_out`.
    - ``leaky_relu``: ``x < 0 → round_shift(x × alpha_q, LEAKY_FRAC)`` with
      ``alpha_q = golden.leaky_alpha(alpha)``, saturated to `bits_out`. One constant multiplier
      per lane, followed by a register.
    - ``sigmoid``, ``tanh``: `golden.nonlinear`, an `Interpolator` per lane (a table ROM and
      one multiplier).

    The pipeline advances as a whole when its output register is empty or being read
    (``i.ready = ~o.valid | o.ready``).

    Parameters
    ----------
    shape : ir.Shape
        The (C, H, W) shape of the feature map; `lanes` must divide C.
    bits_in, bits_out : int
        Width of the input and output integers.
    lanes : int
        Channels per beat.
    kind : str
        One of ``relu``, ``clamp``, ``leaky_relu``, ``sigmoid``, ``tanh``.
    lo, hi : int
        ``clamp`` only: the integer bounds from `golden.clamp_bounds`.
    alpha_q : int
        ``leaky_relu`` only: the slope at scale 2**-LEAKY_FRAC from `golden.leaky_alpha`.
    frac_in, frac_out : int
        ``sigmoid`` and ``tanh`` only: the input's and the output's frac.

    Members
    -------
    i : In(stream.Signature(pixel_layout(bits_in, lanes)))
    o : Out(stream.Signature(pixel_layout(bits_out, lanes)))

    Attributes
    ----------
    latency : int
        Cycles from an input transfer to its output being offered: 1 (relu, clamp),
        2 (leaky_relu), 4 (sigmoid, tanh).
    cycles_per_frame : int
        C·H·W / lanes: one beat per cycle.

    Raises
    ------
    ValueError
        For an unknown `kind`, `lanes` not dividing C, or a missing parameter of the `kind`.
    """

    def __init__(self, shape, bits_in, bits_out, lanes, kind, *, lo=None, hi=None, alpha_q=None,
                 frac_in=None, frac_out=None):
        if kind not in KINDS:
            raise ValueError(f"Activation: unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        if shape.c % lanes:
            raise ValueError(f"Activation: lanes={lanes} must divide {shape.c} channels")
        needed = {"clamp": {"lo": lo, "hi": hi}, "leaky_relu": {"alpha_q": alpha_q},
                  "sigmoid": {"frac_in": frac_in, "frac_out": frac_out},
                  "tanh": {"frac_in": frac_in, "frac_out": frac_out}}.get(kind, {})
        missing = [name for name, value in needed.items() if value is None]
        if missing:
            raise ValueError(f"Activation {kind}: needs {' and '.join(missing)}")
        self.shape, self.bits_in, self.bits_out, self.lanes, self.kind = shape, bits_in, bits_out, lanes, kind
        self.lo, self.hi, self.alpha_q = lo, hi, alpha_q
        if kind in ("sigmoid", "tanh"):
            self.interpolator = Interpolator(kind, Format(bits_in, frac_in), Format(bits_out, frac_out))
        self.geometry = geometry.elementwise(shape, lanes, ACTIVATION_LATENCY[kind])
        self.cycles_per_frame, self.latency = self.geometry.cycles_per_frame, self.geometry.latency
        super().__init__({"i": In(stream.Signature(pixel_layout(bits_in, lanes))),
                          "o": Out(stream.Signature(pixel_layout(bits_out, lanes)))})

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        def step(value, name):
            """`value` one pipeline stage later."""
            reg = Signal(value.shape(), name=name)
            with m.If(advance):
                m.d.sync += reg.eq(value)
            return reg

        valid = self.i.valid
        for stage in range(1, self.latency):
            valid = step(valid, f"valid{stage}")
        with m.If(advance):
            m.d.sync += self.o.valid.eq(valid)
        function = {"relu": self._relu, "clamp": self._clamp, "leaky_relu": self._leaky_relu,
                    "sigmoid": self._nonlinear, "tanh": self._nonlinear}[self.kind]
        for lane in range(self.lanes):
            y = function(m, step, advance, lane, self.i.payload[lane])
            with m.If(advance):
                m.d.sync += self.o.payload[lane].eq(y)
        return m

    def _relu(self, m, step, advance, lane, x):
        return saturate(Mux(x < 0, 0, x), self.bits_out)

    def _clamp(self, m, step, advance, lane, x):
        above_lo = Mux(x < self.lo, self.lo, x)
        return saturate(Mux(above_lo > self.hi, self.hi, above_lo), self.bits_out)

    def _leaky_relu(self, m, step, advance, lane, x):
        x1 = step(x, f"x{lane}")
        product = step(x * self.alpha_q, f"product{lane}")
        return saturate(Mux(x1 < 0, round_shift(product, golden.LEAKY_FRAC), x1), self.bits_out)

    def _nonlinear(self, m, step, advance, lane, x):
        return self.interpolator.build(m, step, advance, x, f"lane{lane}")
