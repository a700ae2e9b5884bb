"""An LSTM layer: a sequence streams in one time step after another, hidden states stream out.

The cell computes exactly what `golden.lstm_step` computes, step after step, with its state kept
on chip. It is three stages in a row and the hidden-state memory they share:

- `GateEngine`: per step, for each group of `coarse_out` hidden units, one beat per cycle over
  the words of [x_t; h_{t-1}] (``K = (I + H) / coarse_in`` beats): 4·coarse_out·coarse_in
  multipliers (the four gates of every unit of the group), accumulators loaded with the bias
  on the group's first beat, and one output beat per group with its 4·coarse_out sums. x_t
  comes from a `PixelBuffer` (`pixel_buffer.py`, as in the conv engine): two input vectors of
  `coarse_in` features per word, one filled from the input stream while the other is read.
- `GateSerializer`: a group's sums, round-shifted to the pre-activations z, leave one unit per
  cycle (``coarse_out ≤ K`` keeps it ahead of the engine).
- `StateUpdate`, one unit per cycle: sigmoid and tanh `Interpolator`s for the gates, the cell
  state c read from and written back to an H-word memory, tanh(c) and h = o·tanh(c), written
  to the `HiddenBuffer` and offered on the output stream.
- `HiddenBuffer`: a ping-pong h memory (one memory per input lane, so that a word of
  `coarse_in` states is read in one cycle), written by the state update, read by the engine.
- **Recurrence**: a step's recurrent beats wait until every h of the previous step is written
  (`HiddenBuffer.full`); its input beats come first and hide part of that wait. The first step
  of a frame reads the initial state h0 (its recurrent product folded into the bias as golden's
  exact sum allows).

The stages share one enable, ``advance = ~o.valid | o.ready`` of the output register: it is the
state update's ``i.ready``, the serializer passes it on as its own, and the engine advances on
it, so every register after the input buffer advances on it and the pipeline stalls as a whole.

Rate (both streams unstalled), with G = H / coarse_out groups and K beats per group:
``cycles_per_step = G·K + stall``, ``stall = max(0, DEPENDENCY + coarse_out - I / coarse_in)``
for every step but a frame's first (`geometry.LSTMGeometry`), DEPENDENCY = the cycles from a step's
last beat to its last h being readable.
"""

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .. import geometry, golden
from ..geometry import LSTM_PIPELINE
from .common import balanced_sum, pixel_layout, round_shift, saturate
from .nonlinear import Interpolator
from .pixel_buffer import PixelBuffer


__all__ = ["LSTMCell", "GateEngine", "GateSerializer", "StateUpdate", "HiddenBuffer",
           "group_layout", "unit_layout"]


def group_layout(acc_bits, coarse_out):
    """A group's sums (`GateEngine.o`): ``acc[q][u]`` of gate q (ONNX order i, o, f, c) and unit
    u of the group, and whether the group belongs to a frame's first and last step."""
    gate = data.ArrayLayout(signed(acc_bits), coarse_out)
    return data.StructLayout({"acc": data.ArrayLayout(gate, 4), "first_step": 1, "last_step": 1})


def unit_layout(z_bits):
    """One unit's pre-activations (`GateSerializer.o`): ``z[q]`` of gate q, and whether the unit
    belongs to a frame's first and last step."""
    return data.StructLayout({"z": data.ArrayLayout(signed(z_bits), 4),
                              "first_step": 1, "last_step": 1})


class LSTMCell(wiring.Component):
    """A forward LSTM over sequences of `steps` input vectors, as golden's ``lstm``.

    Parameters
    ----------
    n_in, hidden, steps : int
        I, H and T. `coarse_in` must divide I and H, `coarse_out` must divide H and be at most
        K = (I + H) / coarse_in.
    in_bits, bits : int
        Width of the input integers, and the layer's bits (hidden state and gates, `golden.
        lstm_formats`).
    wq : ir.WeightQuant
        [W R] (4H, I + H) integers in ONNX gate order (i, o, f, c), bias at the accumulator's
        scale, `acc_bits`.
    shifts : (dx, dh, z_shift)
        From `golden.lstm_shifts`.
    h0, c0 : int arrays (H,)
        Initial states in their formats (`golden.lstm_initial`).
    last : bool
        Output only the last step's hidden state.
    coarse_in, coarse_out : int
        Input lanes of the gate engine (and of the input stream), hidden units per group.

    Members
    -------
    i : In(stream.Signature(pixel_layout(in_bits, coarse_in)))
        The (I, 1, T) sequence, time step after time step.
    o : Out(stream.Signature(pixel_layout(bits, 1)))
        The (H, 1, T) hidden states, or (H, 1, 1) if `last`, one per beat.

    Attributes
    ----------
    cycles_per_step, cycles_per_frame, latency : int
        `geometry.LSTMGeometry`: steady-state cycles per step and per frame with both streams
        unstalled, and cycles from the first input beat to the first output beat.
    """

    def __init__(self, n_in, hidden, steps, in_bits, bits, wq, shifts, h0, c0, *, last=False,
                 coarse_in=1, coarse_out=1):
        if n_in % coarse_in or hidden % coarse_in:
            raise ValueError(f"coarse_in={coarse_in} must divide the {n_in} inputs and {hidden} "
                             "hidden units")
        if hidden % coarse_out:
            raise ValueError(f"coarse_out={coarse_out} must divide {hidden} hidden units")
        beats = (n_in + hidden) // coarse_in
        if coarse_out > beats:
            raise ValueError(f"coarse_out={coarse_out} exceeds the {beats} beats per group")
        if wq.weight.shape != (4 * hidden, n_in + hidden):
            raise ValueError(f"weights of shape {wq.weight.shape}; expected {(4 * hidden, n_in + hidden)}")
        self.n_in, self.hidden, self.steps, self.last = n_in, hidden, steps, last
        self.in_bits, self.bits, self.wq, self.shifts = in_bits, bits, wq, shifts
        self.h0, self.c0 = np.asarray(h0, np.int64), np.asarray(c0, np.int64)
        self.coarse_in, self.coarse_out = coarse_in, coarse_out
        self.geometry = g = geometry.lstm(n_in, hidden, steps, coarse_in, coarse_out, last)
        self.cycles_per_step, self.cycles_per_frame, self.latency = (
            g.cycles_per_step, g.cycles_per_frame, g.latency)
        super().__init__({"i": In(stream.Signature(pixel_layout(in_bits, coarse_in))),
                          "o": Out(stream.Signature(pixel_layout(bits, 1)))})

    @classmethod
    def from_layer(cls, graph, layer, coarse_in=1, coarse_out=1):
        """The lstm `layer` of the quantized `graph`, every constant from golden."""
        fmt_x, fmt_h = graph.formats[layer.inputs[0]], graph.formats[layer.output]
        shape = graph.in_shape(layer)
        h0, c0 = golden.lstm_initial(layer, fmt_h.bits)
        try:
            return cls(shape.c, layer.attrs["hidden"], shape.w, fmt_x.bits, fmt_h.bits, layer.wq,
                       golden.lstm_shifts(fmt_x, fmt_h, layer.wq.frac[0]), h0, c0,
                       last=layer.attrs["last"], coarse_in=coarse_in, coarse_out=coarse_out)
        except ValueError as error:
            raise ValueError(f"LSTM '{layer.name}': {error}") from None

    def elaborate(self, platform):
        m = Module()
        dx, dh, z_shift = self.shifts
        ci, co = self.coarse_in, self.coarse_out
        m.submodules.engine = engine = GateEngine(
            self.n_in, self.hidden, self.steps, self.in_bits, self.bits, self.wq, (dx, dh), self.h0,
            coarse_in=ci, coarse_out=co)
        m.submodules.serializer = serializer = GateSerializer(self.wq.acc_bits, co, z_shift)
        m.submodules.update = update = StateUpdate(self.hidden, ci, self.bits, serializer.z_bits,
                                                   self.c0, last=self.last)
        m.submodules.h_buffer = h_buffer = HiddenBuffer(self.bits, ci, self.hidden // ci)
        wiring.connect(m, wiring.flipped(self.i), engine.i)
        wiring.connect(m, engine.o, serializer.i)
        wiring.connect(m, serializer.o, update.i)
        wiring.connect(m, update.o, wiring.flipped(self.o))
        wiring.connect(m, engine.h, h_buffer.r)
        wiring.connect(m, update.h, h_buffer.w)
        return m


class GateEngine(wiring.Component):
    """The four gates' matrix-vector products [W R]·[x_t; h_{t-1}] + bias, a group at a time.

    Per step t, for each group g of `coarse_out` hidden units, one beat per cycle over the
    ``K = (I + H) / coarse_in`` words of [x_t; h_{t-1}]: first the I / coarse_in words of x_t
    from the `PixelBuffer`, then the H / coarse_in words of h_{t-1} from the `HiddenBuffer`
    (0 on a frame's first step, whose h0 product is in the bias). Pipeline, one register per
    stage: issue (stage 0; the buffer and h reads), the reads registered and the weight ROMs
    read (from a copy of the address, a stage later), the 4·coarse_out·coarse_in products, each
    unit's sum over the lanes (and the bias ROM read), the accumulators (the bias plus the sums,
    input products shifted left by dx, recurrent ones by dh, `golden.lstm_shifts`). Weight ROMs:
    one per gate and unit of the group, ``(H / coarse_out) · K`` words of `coarse_in` weights;
    bias ROMs: one per gate and unit, a word per group (and one per group for a frame's first
    step, with the h0 product, where h0 is not zero).

    Parameters
    ----------
    n_in, hidden, steps, in_bits, bits, wq, h0, coarse_in, coarse_out
        As `LSTMCell`'s.
    shifts : (dx, dh)
        The first two of `golden.lstm_shifts`.

    Members
    -------
    i : In(stream.Signature(pixel_layout(in_bits, coarse_in)))
        The input vectors x_t, I / coarse_in beats each.
    h : Out(HiddenBuffer.read_signature(bits, coarse_in, H / coarse_in))
        Reads h_{t-1}; `release` at a step's last beat.
    o : Out(stream.Signature(group_layout(acc_bits, coarse_out)))
        One beat per group, `depth` cycles after the group's last beat issues. `o.ready` is the
        engine's enable: every register after the pixel buffer advances exactly when it is high
        (so a consumer must not wait for `o.valid` to raise it).

    Attributes
    ----------
    depth : int
        5: the registers from a beat's issue to its sums on `o`.
    """

    depth = 5

    def __init__(self, n_in, hidden, steps, in_bits, bits, wq, shifts, h0, *, coarse_in,
                 coarse_out):
        ci, co = coarse_in, coarse_out
        self.hidden, self.steps, self.acc_bits, self.w_bits = hidden, steps, wq.acc_bits, wq.bits
        self.coarse_in, self.coarse_out, (self.dx, self.dh) = ci, co, shifts
        self.x_words, self.groups = n_in // ci, hidden // co
        self.beats = self.x_words + hidden // ci
        self.weight_rom, self.bias_rom = {}, {}
        for q in range(4):
            for u in range(co):
                rows = slice(q * hidden + u, (q + 1) * hidden, co)      # rows g·co + u of gate q
                self.weight_rom[q, u] = [[int(v) for v in word]
                                         for word in wq.weight[rows].reshape(-1, ci)]
                bias = wq.bias[rows]
                h0_term = (wq.weight[rows, n_in:] @ h0) << self.dh
                self.bias_rom[q, u] = [int(v) for v in bias] + (
                    [int(v) for v in bias + h0_term] if h0.any() else [])
        self.h0_bias = bool(h0.any())
        super().__init__({
            "i": In(stream.Signature(pixel_layout(in_bits, ci))),
            "h": Out(HiddenBuffer.read_signature(bits, ci, hidden // ci)),
            "o": Out(stream.Signature(group_layout(wq.acc_bits, co)))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.x_buffer = x_buffer = PixelBuffer(self.i.payload.shape(), self.x_words)
        wiring.connect(m, wiring.flipped(self.i), x_buffer.i)
        advance = self.o.ready

        def stage(value, name):
            """`value` registered: one pipeline stage later."""
            reg = Signal(value.shape(), name=name)
            with m.If(advance):
                m.d.sync += reg.eq(value)
            return reg

        controls, address = self._sequencer(m, x_buffer, advance)
        vector = self._operands(stage, x_buffer, controls)
        sums = self._multiply(m, stage, advance, address, vector, controls)
        self._accumulate(m, stage, advance, sums, controls)
        return m

    def _sequencer(self, m, x_buffer, advance):
        """Issue one beat (step t, group g, beat k) per cycle while its word is readable: x_t's
        words once the pixel buffer holds it, h_{t-1}'s once the h buffer does (or at once on a
        frame's first step). Returns the issued beat's control as the first of the list of its
        pipeline stages, and the weight ROMs' address ``g·K + k``."""
        x_words, beats, groups, steps = self.x_words, self.beats, self.groups, self.steps
        t, g, k = Signal(range(steps)), Signal(range(groups)), Signal(range(beats))
        address = Signal(range(groups * beats))
        control = Signal(data.StructLayout({"valid": 1, "first": 1, "last": 1, "recurrent": 1,
                                            "first_step": 1, "last_step": 1,
                                            "group": range(groups)}))
        recurrent = k >= x_words
        issue = Signal()
        m.d.comb += issue.eq(advance & x_buffer.full & (~recurrent | (t == 0) | self.h.full))
        end_of_group, end_of_step = k == beats - 1, (k == beats - 1) & (g == groups - 1)
        m.d.comb += [
            x_buffer.addr.eq(k), x_buffer.en.eq(advance), x_buffer.release.eq(issue & end_of_step),
            self.h.addr.eq(k - x_words), self.h.en.eq(advance),
            self.h.release.eq(issue & end_of_step),
            control.valid.eq(issue), control.first.eq(k == 0), control.last.eq(end_of_group),
            control.recurrent.eq(recurrent), control.first_step.eq(t == 0),
            control.last_step.eq(t == steps - 1), control.group.eq(g),
        ]
        with m.If(issue):
            m.d.sync += [k.eq(Mux(end_of_group, 0, k + 1)), address.eq(address + 1)]
            with m.If(end_of_group):
                m.d.sync += g.eq(Mux(g == groups - 1, 0, g + 1))
            with m.If(end_of_step):
                m.d.sync += [address.eq(0), t.eq(Mux(t == steps - 1, 0, t + 1))]
        return [control], address

    def _operands(self, stage, x_buffer, controls):
        """Stage 1 → 2: the word read (x, h, or 0 for h on a frame's first step), registered."""
        control = stage(controls[-1], "control1")
        controls += [control, stage(control, "control2")]
        return [stage(Mux(control.recurrent, Mux(control.first_step, 0, self.h.data[lane]),
                          x_buffer.data[lane]), f"vector2_{lane}")
                for lane in range(self.coarse_in)]

    def _multiply(self, m, stage, advance, address, vector, controls):
        """The weight ROMs (read at stage 1 from a registered copy of the address, so that their
        data meets the registered word at stage 2), the products (stage 3) and each gate and
        unit's sum over the lanes (stage 4)."""
        address = stage(address, "address1")
        products = {}
        for (q, u), words in self.weight_rom.items():
            m.submodules[f"weights_{q}_{u}"] = rom = memory.Memory(
                shape=pixel_layout(self.w_bits, self.coarse_in), depth=len(words), init=words)
            read = rom.read_port()
            m.d.comb += [read.addr.eq(address), read.en.eq(advance)]
            products[q, u] = [stage(read.data[lane] * vector[lane], f"product3_{q}_{u}_{lane}")
                              for lane in range(self.coarse_in)]
        controls.append(stage(controls[-1], "control3"))
        controls.append(stage(controls[-1], "control4"))
        return {(q, u): stage(balanced_sum(p), f"sum4_{q}_{u}") for (q, u), p in products.items()}

    def _accumulate(self, m, stage, advance, sums, controls):
        """Stage 5: the accumulators, loaded with the bias (read a stage ahead) on a group's first
        beat; the group's sums go out on `o` after its last."""
        control3, control = controls[3], controls[4]
        acc = {}
        for key, total in sums.items():
            m.submodules[f"bias_{key[0]}_{key[1]}"] = rom = memory.Memory(
                shape=signed(self.acc_bits), depth=len(self.bias_rom[key]), init=self.bias_rom[key])
            read = rom.read_port()
            offset = Mux(control3.first_step, self.groups, 0) if self.h0_bias else 0
            m.d.comb += [read.addr.eq(control3.group + offset), read.en.eq(advance)]
            acc[key] = Signal(signed(self.acc_bits), name=f"acc_{key[0]}_{key[1]}")
            with m.If(advance & control.valid):
                shifted = Mux(control.recurrent, total << self.dh, total << self.dx)
                m.d.sync += acc[key].eq(Mux(control.first, read.data, acc[key]) + shifted)
            m.d.comb += self.o.payload.acc[key[0]][key[1]].eq(acc[key])
        m.d.comb += [self.o.valid.eq(stage(control.valid & control.last, "done")),
                     self.o.payload.first_step.eq(stage(control.first_step, "first_step5")),
                     self.o.payload.last_step.eq(stage(control.last_step, "last_step5"))]


class GateSerializer(wiring.Component):
    """A group's 4·coarse_out sums in, one unit's four pre-activations out per cycle.

    On a group's beat the registers load every unit's pre-activations
    ``z = round_shift(acc, z_shift)`` (`golden.lstm_step`); `o` then presents the group's units
    in order, one per cycle the pipeline advances, from the head of the shift registers.

    Parameters
    ----------
    acc_bits, coarse_out : int
        The engine's accumulator width and units per group.
    z_shift : int
        The last of `golden.lstm_shifts`.

    Members
    -------
    i : In(stream.Signature(group_layout(acc_bits, coarse_out)))
        ``i.ready = o.ready``: a group is taken on any cycle the pipeline advances, so groups
        must come at least `coarse_out` advancing cycles apart (the engine's ``coarse_out ≤ K``).
    o : Out(stream.Signature(unit_layout(z_bits)))
        Units in order; its registers advance when `o.ready` is high.

    Attributes
    ----------
    z_bits : int
        Width of a pre-activation.
    depth : int
        1: a group's first unit is on `o` a cycle after the group is taken.
    """

    depth = 1

    def __init__(self, acc_bits, coarse_out, z_shift):
        self.coarse_out, self.z_shift = coarse_out, z_shift
        self.z_bits = acc_bits - max(z_shift, 0) + max(-z_shift, 0) + 1
        super().__init__({"i": In(stream.Signature(group_layout(acc_bits, coarse_out))),
                          "o": Out(stream.Signature(unit_layout(self.z_bits)))})

    def elaborate(self, platform):
        m = Module()
        co = self.coarse_out
        z = [[Signal(signed(self.z_bits), name=f"z_{q}_{u}") for u in range(co)] for q in range(4)]
        left = Signal(range(co + 1))                    # units of the group still to present
        first_step, last_step = Signal(name="held_first_step"), Signal(name="held_last_step")
        m.d.comb += [self.i.ready.eq(self.o.ready), self.o.valid.eq(left != 0),
                     self.o.payload.first_step.eq(first_step),
                     self.o.payload.last_step.eq(last_step),
                     *(self.o.payload.z[q].eq(z[q][0]) for q in range(4))]
        with m.If(self.o.ready):
            with m.If(self.i.valid):
                m.d.sync += [left.eq(co), first_step.eq(self.i.payload.first_step),
                             last_step.eq(self.i.payload.last_step)]
                m.d.sync += [z[q][u].eq(round_shift(self.i.payload.acc[q][u], self.z_shift))
                             for q in range(4) for u in range(co)]
            with m.Elif(left != 0):
                m.d.sync += left.eq(left - 1)
                m.d.sync += [z[q][u].eq(z[q][u + 1]) for q in range(4) for u in range(co - 1)]
        return m


class StateUpdate(wiring.Component):
    """c_t = f·c_{t-1} + i·g and h_t = o·tanh(c_t) for one unit per cycle, as `golden.lstm_step`.

    Pipeline from a unit at the head of `i` (stage 0): the gates' `Interpolator`s (sigmoid for
    i, o, f, tanh for g; stage 3, registered at 4) while c_{t-1} is read from an H-word memory
    (c0 from a ROM, or 0, on a frame's first step); the products f·c and i·g (5); c_t rounded,
    saturated and written back (6); tanh(c_t) (9); o·tanh(c_t) (10), rounded to h_t, written to
    the h buffer and loaded into the output register.

    Parameters
    ----------
    hidden, coarse_in, bits : int
        H, the h buffer's lanes and the layer's bits.
    z_bits : int
        Width of a pre-activation (`GateSerializer.z_bits`).
    c0 : int array (H,)
        The initial cell state, in its format.
    last : bool
        Offer only the last step's hidden state.

    Members
    -------
    i : In(stream.Signature(unit_layout(z_bits)))
        Units in order, step after step. ``i.ready = ~o.valid | o.ready``, the enable of every
        register here (and the upstream stages').
    h : Out(HiddenBuffer.write_signature(bits, coarse_in, H / coarse_in))
        Every unit's h_t.
    o : Out(stream.Signature(pixel_layout(bits, 1)))
        The hidden states (only the last step's if `last`), one per beat.

    Attributes
    ----------
    depth : int
        11: a unit taken from `i` is on `o` 11 cycles later (10 stages, the output register).
    """

    depth = 11

    def __init__(self, hidden, coarse_in, bits, z_bits, c0, *, last):
        self.hidden, self.coarse_in, self.bits, self.last = hidden, coarse_in, bits, last
        self.h_words = hidden // coarse_in
        self.c0 = np.asarray(c0, np.int64)
        super().__init__({"i": In(stream.Signature(unit_layout(z_bits))),
                          "h": Out(HiddenBuffer.write_signature(bits, coarse_in, self.h_words)),
                          "o": Out(stream.Signature(pixel_layout(bits, 1)))})

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        def stage(value, name):
            """`value` registered: one pipeline stage later."""
            reg = Signal(value.shape(), name=name)
            with m.If(advance):
                m.d.sync += reg.eq(value)
            return reg

        fmt_g, fmt_c, fmt_z = golden.lstm_formats(self.bits)
        tags = self._unit_tags(m, stage, advance)
        sigmoid, tanh = Interpolator("sigmoid", fmt_z, fmt_g), Interpolator("tanh", fmt_z, fmt_g)
        gates = [(sigmoid if q < 3 else tanh).build(m, stage, advance, z, f"gate{q}")
                 for q, z in enumerate(self.i.payload.z)]
        gate4 = [stage(v, f"gate4_{q}") for q, v in enumerate(gates)]       # i, o, f, g
        c6 = self._cell_state(m, stage, advance, gate4, tags)
        out_gate6 = stage(stage(gate4[1], "out_gate5"), "out_gate6")
        tanh_c9 = Interpolator("tanh", fmt_c, fmt_g).build(m, stage, advance, c6, "tanh_c")
        out_gate9 = stage(stage(stage(out_gate6, "out_gate7"), "out_gate8"), "out_gate9")
        product10 = stage(out_gate9 * tanh_c9, "product10")
        h10 = round_shift(product10, fmt_g.frac)[:self.bits].as_signed()
        m.d.comb += [self.h.en.eq(advance & tags[10].valid), self.h.word.eq(tags[10].word),
                     self.h.lane.eq(tags[10].lane), self.h.data.eq(h10),
                     self.h.last.eq(tags[10].last_unit)]
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(tags[10].valid & (tags[10].last_step if self.last else 1)),
                         self.o.payload[0].eq(h10)]
        return m

    def _unit_tags(self, m, stage, advance):
        """The unit at the head of `i` (its index, h buffer lane and word, step flags) and its
        registered copies: element s of the list is the unit s stages after the head."""
        hidden, ci, h_words = self.hidden, self.coarse_in, self.h_words
        unit, lane, word = Signal(range(hidden)), Signal(range(ci)), Signal(range(h_words))
        with m.If(advance & self.i.valid):
            m.d.sync += [unit.eq(Mux(unit == hidden - 1, 0, unit + 1)),
                         lane.eq(Mux(lane == ci - 1, 0, lane + 1))]
            with m.If(lane == ci - 1):
                m.d.sync += word.eq(Mux(word == h_words - 1, 0, word + 1))
        head = Signal(data.StructLayout({"valid": 1, "unit": range(hidden), "lane": range(ci),
                                         "word": range(h_words), "first_step": 1, "last_step": 1,
                                         "last_unit": 1}))
        m.d.comb += [head.valid.eq(self.i.valid), head.unit.eq(unit), head.lane.eq(lane),
                     head.word.eq(word), head.first_step.eq(self.i.payload.first_step),
                     head.last_step.eq(self.i.payload.last_step),
                     head.last_unit.eq(unit == hidden - 1)]
        tags = [head]
        for s in range(1, 11):
            tags.append(stage(tags[-1], f"tags{s}"))
        return tags

    def _cell_state(self, m, stage, advance, gate4, tags):
        """c_{t-1} read (stage 1) and delayed to meet the gates (4), f·c and i·g (5), c_t (6)
        written back; returns c_t."""
        fmt_g, fmt_c, _ = golden.lstm_formats(self.bits)
        m.submodules.c_state = c_memory = memory.Memory(shape=signed(fmt_c.bits), depth=self.hidden,
                                                        init=[])
        c_read, c_write = c_memory.read_port(), c_memory.write_port()
        m.d.comb += [c_read.addr.eq(tags[0].unit), c_read.en.eq(advance)]
        c0 = 0
        if self.c0.any():
            m.submodules.c0 = rom = memory.Memory(shape=signed(fmt_c.bits), depth=self.hidden,
                                                  init=[int(v) for v in self.c0])
            read = rom.read_port()
            m.d.comb += [read.addr.eq(tags[0].unit), read.en.eq(advance)]
            c0 = read.data
        c_prev1 = Mux(tags[1].first_step, c0, c_read.data)
        c_prev4 = stage(stage(stage(c_prev1, "c_prev2"), "c_prev3"), "c_prev4")
        forget5 = stage(gate4[2] * c_prev4, "forget5")
        input5 = stage(gate4[0] * gate4[3], "input5")
        c6 = stage(saturate(round_shift(forget5 + input5, fmt_g.frac), fmt_c.bits), "c6")
        m.d.comb += [c_write.addr.eq(tags[6].unit), c_write.data.eq(c6),
                     c_write.en.eq(advance & tags[6].valid)]
        return c6


class HiddenBuffer(wiring.Component):
    """A ping-pong store of the hidden state: step s's h is written into bank s mod 2 while the
    engine reads step s-1's from the other.

    One memory per lane, so that the state update writes one unit per cycle (lane by lane) and
    the engine reads a word of `lanes` units per cycle. The buffer counts the steps written
    whole and the steps the reader has released (modulo 4); the bank being read is *full* when
    they are equal: the previous step's h is all written.

    Parameters
    ----------
    bits, lanes, words : int
        Bits per state, units per read word (coarse_in), words per step (H / coarse_in).

    Members
    -------
    w : In(write_signature(bits, lanes, words))
        On a cycle with `en`, `data` goes to lane `lane` of word `word`; `last` with `en` marks
        the step's last unit.
    r : In(read_signature(bits, lanes, words))
        `full`: the previous step's h is all written. With `en`, `data` takes word `addr` of it
        after the clock edge (a memory read port). `release`: the step being read for is issued.
    """

    def __init__(self, bits, lanes, words):
        self._bits, self._lanes, self._words = bits, lanes, words
        super().__init__({"w": In(self.write_signature(bits, lanes, words)),
                          "r": In(self.read_signature(bits, lanes, words))})

    @staticmethod
    def write_signature(bits, lanes, words):
        """The state update's side, as it sees it."""
        return wiring.Signature({"en": Out(1), "word": Out(range(words)), "lane": Out(range(lanes)),
                                 "data": Out(signed(bits)), "last": Out(1)})

    @staticmethod
    def read_signature(bits, lanes, words):
        """The engine's side, as it sees it."""
        return wiring.Signature({"full": In(1), "addr": Out(range(words)), "en": Out(1),
                                 "data": In(pixel_layout(bits, lanes)), "release": Out(1)})

    def elaborate(self, platform):
        m = Module()
        issued, written = Signal(2), Signal(2)  # steps released by the reader / written whole
        words = self._words
        for lane in range(self._lanes):
            m.submodules[f"h_state{lane}"] = h_memory = memory.Memory(
                shape=signed(self._bits), depth=2 * words, init=[])
            read, write = h_memory.read_port(), h_memory.write_port()
            m.d.comb += [read.addr.eq(Mux(issued[0], 0, words) + self.r.addr),
                         read.en.eq(self.r.en), self.r.data[lane].eq(read.data),
                         write.addr.eq(Mux(written[0], words, 0) + self.w.word),
                         write.data.eq(self.w.data), write.en.eq(self.w.en & (self.w.lane == lane))]
        m.d.comb += self.r.full.eq(issued == written)
        with m.If(self.r.release):
            m.d.sync += issued.eq(issued + 1)
        with m.If(self.w.en & self.w.last):
            m.d.sync += written.eq(written + 1)
        return m


# a group's last beat to its first unit on the output: engine, serializer, state update
assert GateEngine.depth + GateSerializer.depth + StateUpdate.depth == LSTM_PIPELINE
