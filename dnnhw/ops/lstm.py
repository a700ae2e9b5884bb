"""lstm: a forward LSTM over a sequence (I, 1, T) (`layers.lstm.LSTMCell`).

Folding: coarse_in dividing I and H, coarse_out dividing H and at most (I + H)/coarse_in,
fine = 1; hidden states leave one per beat. Rate and latency: `geometry.LSTMGeometry`. The
output, the hidden state, is in (bits, bits - 1); [W R] take one format for the layer, the bias
the aligned accumulator's scale (`golden.lstm_shifts`).
"""

import math
from dataclasses import dataclass

import numpy as np

from .. import geometry, golden, quant, resources
from ..folding import Folding
from ..ir import WeightQuant
from ..pixel_timing import after
from . import register
from ._base import Op, UnitFormat, divisors


@dataclass(frozen=True)
class LSTMSpec:
    """What an `LSTMCell` depends on besides its folding: sizes, bits, the gate sums' bits
    before (`acc_bits`) and after (`z_bits`) their round shift, initial states given, and the
    `resources.nonlinear_table` summaries of the gates' sigmoid and tanh and of tanh(c)."""
    n_in: int
    hidden: int
    in_bits: int
    bits: int
    acc_bits: int
    z_bits: int
    h0: bool
    c0: bool
    gate_tables: tuple
    cell_table: tuple


class LSTMOp(UnitFormat, Op):
    name = "lstm"
    attrs = ("hidden, last (output only the last step), h0, c0 (None: zeros); input a sequence "
             "(I, 1, T), output (hidden, 1, T) or (hidden, 1, 1)")

    def foldings(self, graph, layer):
        n_in, hidden = graph.in_shape(layer).c, layer.attrs["hidden"]
        return [Folding(ci, co) for ci in divisors(math.gcd(n_in, hidden))
                for co in divisors(hidden) if co <= (n_in + hidden) // ci]

    def check_parallelism(self, graph, layer, folding):
        ci, co, f = folding.coarse_in, folding.coarse_out, folding.fine
        n_in, hidden = graph.in_shape(layer).c, layer.attrs["hidden"]
        if n_in % ci or hidden % ci or hidden % co or co > (n_in + hidden) // ci or f != 1:
            raise ValueError(f"'{layer.name}' (lstm): needs coarse_in dividing {n_in} inputs and "
                             f"{hidden} hidden units, coarse_out dividing {hidden} and at most "
                             f"(I + H) / coarse_in, fine = 1; got {folding}")

    def out_lanes(self, folding):
        return 1

    def geometry(self, graph, layer, folding):
        shape = graph.in_shape(layer)
        return geometry.lstm(shape.c, layer.attrs["hidden"], shape.w, folding.coarse_in,
                             folding.coarse_out, layer.attrs["last"])

    def timing(self, graph, layer, folding, ins):
        """A step starts once its input vector is in and the previous step (and its stall) is
        done; its units leave LSTM_PIPELINE cycles after each group's last beat, one per
        cycle."""
        g = self.geometry(graph, layer, folding)
        start = after(ins[0][1] + 1, g.cycles_per_step)
        first_out = start + g.beats - 1 + geometry.LSTM_PIPELINE
        last_out = (start + g.groups * g.beats - 1 + geometry.LSTM_PIPELINE
                    + folding.coarse_out - 1)
        if layer.attrs["last"]:
            return first_out[-1:], last_out[-1:]
        return first_out, last_out

    def spec(self, graph, layer):
        fmt_in, fmt_out = graph.formats[layer.inputs[0]], graph.formats[layer.output]
        fmt_g, fmt_c, fmt_z = golden.lstm_formats(fmt_out.bits)
        _, _, z_shift = golden.lstm_shifts(fmt_in, fmt_out, layer.wq.frac[0])
        z_bits = resources.round_shift_bits(layer.wq.acc_bits, z_shift)
        gates = tuple(resources.nonlinear_table(kind, z_bits, fmt_z.frac, fmt_g.bits, fmt_g.frac)
                      for kind in ("sigmoid", "tanh"))
        a = layer.attrs
        return LSTMSpec(graph.in_shape(layer).c, a["hidden"], fmt_in.bits, fmt_out.bits,
                        layer.wq.acc_bits, z_bits, a.get("h0") is not None,
                        a.get("c0") is not None, gates,
                        resources.nonlinear_table("tanh", fmt_c.bits, fmt_c.frac, fmt_g.bits,
                                                  fmt_g.frac))

    def features(self, spec, folding, family):
        """`LSTMCell`: input buffer, weight and bias ROMs, the gate engine, accumulators and
        serializer, the state update (five `Interpolator`s, three multipliers, the c and h
        memories)."""
        t = resources.Features()
        ci, co = folding.coarse_in, folding.coarse_out
        n_in, hidden, in_bits, bits, acc_bits = spec.n_in, spec.hidden, spec.in_bits, spec.bits, spec.acc_bits
        z_bits, gate_tables, cell_table = spec.z_bits, spec.gate_tables, spec.cell_table
        x_words, h_words, groups = n_in // ci, hidden // ci, hidden // co
        beats = x_words + h_words
        cell_bits = bits + golden.LSTM_CELL_INT
        t.add("part:lstm", 1)
        resources.memory(t, 2 * x_words, ci * in_bits, family)                           # input buffer
        resources.memory(t, groups * beats, ci * bits, family, rom=True, sequential=True, count=4 * co)
        resources.memory(t, groups * (2 if spec.h0 else 1), acc_bits, family, rom=True, sequential=True, count=4 * co)
        vector = max(in_bits, bits)
        resources.mux(t, ci * vector, 3, family)                                         # x, h or 0
        t.add("reg", ci * vector)                                               # reads registered
        in_dsp = resources.multipliers(t, 4 * co * ci, vector, bits, family)
        t.add("reg_dsp" if in_dsp else "reg", 4 * co * ci * bits)               # the weights
        sum_bits = vector + bits + resources.counter_bits(ci)
        t.add("add", 4 * co * (ci - 1) * sum_bits)
        t.add("reg", 4 * co * sum_bits)
        t.add("add", 4 * co * acc_bits)                                         # accumulators
        resources.mux(t, 4 * co * acc_bits, 2, family)                   # the sum aligned for x or for h
        t.add("reg", 4 * co * (acc_bits + z_bits))                              # + serializer
        if z_bits <= acc_bits:                                  # a right round shift: an add
            t.add("add", 4 * co * z_bits)
        resources.mux(t, 4 * co * (acc_bits + z_bits), 2, family)        # bias or acc; load or shift
        for n in (groups, beats, groups * beats, hidden, ci, h_words, x_words):
            resources.counter(t, n)
        resources.interpolator_part(t, 3, z_bits, bits, gate_tables[0], family)
        resources.interpolator_part(t, 1, z_bits, bits, gate_tables[1], family)
        resources.interpolator_part(t, 1, cell_bits, bits, cell_table, family)
        resources.memory(t, hidden, cell_bits, family)                                   # c
        resources.memory(t, 2 * h_words, bits, family, count=ci)                         # h, one per lane
        if spec.c0:
            resources.memory(t, hidden, cell_bits, family, rom=True)
        resources.multipliers(t, 1, bits, cell_bits, family)                             # f·c
        resources.multipliers(t, 2, bits, bits, family)                                  # i·g, o·tanh(c)
        t.add("add", 2 * (bits + cell_bits) + 2 * bits)
        resources.saturate(t, 1, 2 * bits + golden.LSTM_CELL_INT, cell_bits)
        t.add("reg", 6 * bits + 4 * cell_bits + 40)                             # pipeline, tags
        t.add("handshake", 3)
        return t

    def run(self, graph, layer, xs):
        return golden.lstm_fixed(layer, xs[0], graph.formats[layer.inputs[0]],
                                 graph.formats[layer.output].bits)

    def run_float(self, graph, layer, xs):
        return golden.lstm_float(layer, xs[0])

    def macs(self, graph, layer):
        return int(layer.weight.size) * graph.in_shape(layer).w

    def quantize_weights(self, graph, layer, fmt_in, fmt_out, bits, per_channel):
        """[W R] at one frac for the layer, the bias at the accumulator's scale."""
        bits, hidden = fmt_out.bits, layer.attrs["hidden"]
        n_in = layer.weight.shape[1] - hidden
        frac = quant.frac_for(float(np.abs(layer.weight).max(initial=0)), bits)
        weight_q = golden.saturate(golden.round_half_up(layer.weight * 2.0 ** frac), bits)
        dx, dh, _ = golden.lstm_shifts(fmt_in, fmt_out, frac)
        bias_q = golden.round_half_up(layer.bias * 2.0 ** (max(fmt_in.frac, fmt_out.frac) + frac))
        w_max = 1 << (bits - 1)
        bound = ((n_in * (1 << (fmt_in.bits - 1)) * w_max << dx)
                 + (hidden * (1 << (bits - 1)) * w_max << dh)
                 + int(np.abs(bias_q).max(initial=0)))
        return WeightQuant(bits=bits, frac=np.full(len(weight_q), frac, dtype=np.int64),
                           weight=weight_q, bias=bias_q, acc_bits=bound.bit_length() + 1)

    def block(self, graph, layer, folding):
        from ..layers.lstm import LSTMCell
        return LSTMCell.from_layer(graph, layer, folding.coarse_in, folding.coarse_out)


register(LSTMOp())
