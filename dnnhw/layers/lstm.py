"""An LSTM layer: a sequence streams in one time step after another, hidden states stream out.

The cell computes exactly what `golden.lstm_step` computes, step after step, with its state kept
on chip. Architecture:

- **Input buffer**: a ping-pong memory of two input vectors x_t (`coarse_in` features per word),
  filled from the input stream while the other is read.
- **Gate engine**: per step, for each group of `coarse_out` hidden units, one beat per cycle over
  the words of [x_t; h_{t-1}] (``K = (I + H) / coarse_in`` beats): 4·coarse_out·coarse_in
  multipliers (the four gates of every unit of the group), a register after the input and
  state reads (the weight ROMs are read a stage later, from a copy of the address), one after
  the products, one after each unit's sum over the lanes, and an accumulator per gate
  and unit loaded with the bias on the group's first beat. Input products are shifted by dx,
  recurrent ones by dh (`golden.lstm_shifts`). Weight ROMs: one per gate and unit of the group,
  ``(H / coarse_out) · K`` words of `coarse_in` weights.
- **Serializer**: at the end of a group its 4·coarse_out sums, round-shifted to the
  pre-activations z, leave one unit per cycle (``coarse_out ≤ K`` keeps it ahead of the engine).
- **State update**, one unit per cycle: sigmoid and tanh `Interpolator`s for the gates, the cell
  state c read from and written back to an H-word memory, tanh(c) and h = o·tanh(c); h is
  written to a ping-pong h memory (one memory per input lane, so that a word of `coarse_in`
  states is read in one cycle) and offered on the output stream.
- **Recurrence**: a step's recurrent beats wait until every h of the previous step is written;
  its input beats come first and hide part of that wait. The first step of a frame reads the
  initial state h0 (its recurrent product folded into the bias as golden's exact sum allows).

Every register after the input buffer advances on one enable, ``advance = ~o.valid | o.ready``.

Rate (both streams unstalled), with G = H / coarse_out groups and K beats per group:
``cycles_per_step = G·K + stall``, ``stall = max(0, DEPENDENCY + coarse_out - I / coarse_in)``
for every step but a frame's first (`geometry.LSTMGeometry`), DEPENDENCY = the cycles from a step's
last beat to its last h being readable.
"""

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .. import geometry, golden
from ..geometry import LSTM_PIPELINE
from .common import balanced_sum, pixel_layout, round_shift, saturate
from .nonlinear import Interpolator


__all__ = ["LSTMCell"]


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
        unstalled, and cycles from the first input beat to the frame's last output beat.
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
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)

        def step(value, name):
            """`value` one pipeline stage later."""
            reg = Signal(value.shape(), name=name)
            with m.If(advance):
                m.d.sync += reg.eq(value)
            return reg

        ci, co, hidden, steps = self.coarse_in, self.coarse_out, self.hidden, self.steps
        x_words, h_words = self.n_in // ci, hidden // ci
        beats, groups = x_words + h_words, hidden // co
        dx, dh, z_shift = self.shifts
        fmt_g, fmt_c, fmt_z = golden.lstm_formats(self.bits)

        # -- input buffer: two banks of one x_t each ---------------------------------------
        m.submodules.x_buffer = x_buffer = memory.Memory(
            shape=pixel_layout(self.in_bits, ci), depth=2 * x_words, init=[])
        x_write, x_read = x_buffer.write_port(), x_buffer.read_port()
        full = Signal(2)
        in_bank, in_word = Signal(), Signal(range(x_words))
        take = self.i.valid & self.i.ready
        m.d.comb += [
            self.i.ready.eq(~full.bit_select(in_bank, 1)),
            x_write.addr.eq(Mux(in_bank, x_words, 0) + in_word),
            x_write.data.eq(self.i.payload),
            x_write.en.eq(take),
        ]
        with m.If(take):
            m.d.sync += in_word.eq(Mux(in_word == x_words - 1, 0, in_word + 1))
            with m.If(in_word == x_words - 1):
                m.d.sync += in_bank.eq(~in_bank)

        # -- sequencer: step t, group g, beat k ---------------------------------------------
        t, g, k = Signal(range(steps)), Signal(range(groups)), Signal(range(beats))
        address = Signal(range(groups * beats))
        bank = Signal()                          # the x bank this step reads
        issued, written = Signal(2), Signal(2)   # steps fully issued / whose h is fully written
        recurrent = k >= x_words
        can_issue = full.bit_select(bank, 1) & (~recurrent | (t == 0) | (issued == written))
        issue = Signal()
        m.d.comb += issue.eq(advance & can_issue)
        end_of_group, end_of_step = k == beats - 1, (k == beats - 1) & (g == groups - 1)
        freed = issue & end_of_step
        for b in range(2):
            with m.If(take & (in_word == x_words - 1) & (in_bank == b)):
                m.d.sync += full[b].eq(1)
            with m.Elif(freed & (bank == b)):
                m.d.sync += full[b].eq(0)
        with m.If(issue):
            m.d.sync += [k.eq(Mux(end_of_group, 0, k + 1)), address.eq(address + 1)]
            with m.If(end_of_group):
                m.d.sync += g.eq(Mux(g == groups - 1, 0, g + 1))
            with m.If(end_of_step):
                m.d.sync += [address.eq(0), t.eq(Mux(t == steps - 1, 0, t + 1)), bank.eq(~bank),
                             issued.eq(issued + 1)]

        # stage 0 → 1: memory reads
        m.d.comb += [x_read.addr.eq(Mux(bank, x_words, 0) + k), x_read.en.eq(advance)]
        h_reads, h_writes = [], []
        for lane in range(ci):
            m.submodules[f"h_state{lane}"] = h_memory = memory.Memory(
                shape=signed(self.bits), depth=2 * h_words, init=[])
            read, write = h_memory.read_port(), h_memory.write_port()
            m.d.comb += [read.addr.eq(Mux(issued[0], 0, h_words) + (k - x_words)[:len(read.addr)]),
                         read.en.eq(advance)]
            h_reads.append(read)
            h_writes.append(write)
        first_step = t == 0
        weight_roms = {}
        address1 = step(address, "address1")     # ROMs read from a register of their own
        for q in range(4):
            for u in range(co):
                weight_roms[q, u] = self._weight_rom(m, q, u, beats, address1, advance)

        valid1 = step(issue, "valid1")
        tags = {"first": k == 0, "last": end_of_group, "recurrent": recurrent,
                "first_step": first_step, "last_step": t == steps - 1, "group": g}
        tags1 = {name: step(value, f"{name}1") for name, value in tags.items()}
        vector1 = [Mux(tags1["recurrent"], Mux(tags1["first_step"], 0, h_reads[lane].data),
                       x_read.data[lane]) for lane in range(ci)]

        # stage 2: reads registered; stage 3: products; stage 4: sums over the lanes
        valid2, tags2 = step(valid1, "valid2"), {n: step(v, f"{n}2") for n, v in tags1.items()}
        vector2 = [step(v, f"vector2_{lane}") for lane, v in enumerate(vector1)]
        weights2 = {key: rom.data for key, rom in weight_roms.items()}   # read a stage late
        valid3, tags3 = step(valid2, "valid3"), {n: step(v, f"{n}3") for n, v in tags2.items()}
        products3 = {key: [step(w[lane] * vector2[lane], f"product3_{key[0]}_{key[1]}_{lane}")
                           for lane in range(ci)] for key, w in weights2.items()}
        valid4, tags4 = step(valid3, "valid4"), {n: step(v, f"{n}4") for n, v in tags3.items()}
        sums4 = {key: step(balanced_sum(p), f"sum4_{key[0]}_{key[1]}") for key, p in products3.items()}
        bias4 = {(q, u): self._bias_rom(m, q, u, tags3["group"], tags3["first_step"], advance)
                 for q, u in sums4}

        # stage 5: accumulators; the group's sums are complete when `done` is high
        acc = {key: Signal(signed(self.wq.acc_bits), name=f"acc_{key[0]}_{key[1]}") for key in sums4}
        with m.If(advance & valid4):
            for key, total in sums4.items():
                shifted = Mux(tags4["recurrent"], total << dh, total << dx)
                m.d.sync += acc[key].eq(Mux(tags4["first"], bias4[key], acc[key]) + shifted)
        done = step(valid4 & tags4["last"], "done")
        group_tags = {n: step(tags4[n], f"{n}5") for n in ("first_step", "last_step")}

        # serializer: the group's pre-activations leave one unit per cycle
        z_bits = self.wq.acc_bits - max(z_shift, 0) + max(-z_shift, 0) + 1
        z = {key: Signal(signed(z_bits), name=f"z_{key[0]}_{key[1]}") for key in acc}
        left = Signal(range(co + 1))
        held = {n: Signal(name=f"held_{n}") for n in group_tags}
        with m.If(advance):
            with m.If(done):
                m.d.sync += [left.eq(co), *(z[key].eq(round_shift(acc[key], z_shift)) for key in acc),
                             *(held[n].eq(group_tags[n]) for n in held)]
            with m.Elif(left != 0):
                m.d.sync += left.eq(left - 1)
                m.d.sync += [z[q, u].eq(z[q, u + 1]) for q in range(4) for u in range(co - 1)]

        # state update, one unit j per cycle: u0 is the serializer's head
        unit, lane, word = Signal(range(hidden)), Signal(range(ci)), Signal(range(h_words))
        valid_u = left != 0
        with m.If(advance & valid_u):
            m.d.sync += [unit.eq(Mux(unit == hidden - 1, 0, unit + 1)),
                         lane.eq(Mux(lane == ci - 1, 0, lane + 1))]
            with m.If(lane == ci - 1):
                m.d.sync += word.eq(Mux(word == h_words - 1, 0, word + 1))
        head = {"valid": valid_u, "unit": unit, "lane": lane, "word": word,
                "first_step": held["first_step"], "last_step": held["last_step"],
                "last_unit": unit == hidden - 1}

        m.submodules.c_state = c_memory = memory.Memory(shape=signed(fmt_c.bits), depth=hidden, init=[])
        c_read, c_write = c_memory.read_port(), c_memory.write_port()
        m.d.comb += [c_read.addr.eq(unit), c_read.en.eq(advance)]
        c0 = self._state_rom(m, "c0", self.c0, fmt_c.bits, unit, advance)

        sigmoid, tanh = Interpolator("sigmoid", fmt_z, fmt_g), Interpolator("tanh", fmt_z, fmt_g)
        gates = [(sigmoid if q < 3 else tanh).build(m, step, advance, z[q, 0], f"gate{q}")
                 for q in range(4)]

        def delay(tags, stages, at):
            for s in range(stages):
                tags = {n: step(v, f"{n}_u{at + s + 1}") for n, v in tags.items()}
            return tags

        tags_u1 = delay(head, 1, 0)
        c_prev1 = Mux(tags_u1["first_step"], 0 if c0 is None else c0, c_read.data)
        c_prev3 = step(step(c_prev1, "c_prev2"), "c_prev3")
        tags_u3 = delay(tags_u1, 2, 1)
        gate4 = [step(v, f"gate4_{q}") for q, v in enumerate(gates)]       # i, o, f, g
        c_prev4, tags_u4 = step(c_prev3, "c_prev4"), delay(tags_u3, 1, 3)
        forget5 = step(gate4[2] * c_prev4, "forget5")
        input5 = step(gate4[0] * gate4[3], "input5")
        out_gate5, tags_u5 = step(gate4[1], "out_gate5"), delay(tags_u4, 1, 4)
        c6 = step(saturate(round_shift(forget5 + input5, fmt_g.frac), fmt_c.bits), "c6")
        out_gate6, tags_u6 = step(out_gate5, "out_gate6"), delay(tags_u5, 1, 5)
        m.d.comb += [c_write.addr.eq(tags_u6["unit"]), c_write.data.eq(c6),
                     c_write.en.eq(advance & tags_u6["valid"])]
        tanh_c9 = Interpolator("tanh", fmt_c, fmt_g).build(m, step, advance, c6, "tanh_c")
        out_gate9 = step(step(step(out_gate6, "out_gate7"), "out_gate8"), "out_gate9")
        tags_u9 = delay(tags_u6, 3, 6)
        product10, tags_u10 = step(out_gate9 * tanh_c9, "product10"), delay(tags_u9, 1, 9)
        h10 = round_shift(product10, fmt_g.frac)[:self.bits].as_signed()
        assert 5 + 1 + 10 + 1 == LSTM_PIPELINE      # engine, serializer, update, output register

        write_h = advance & tags_u10["valid"]
        for lane_index, write in enumerate(h_writes):
            m.d.comb += [write.addr.eq(Mux(written[0], h_words, 0) + tags_u10["word"]),
                         write.data.eq(h10), write.en.eq(write_h & (tags_u10["lane"] == lane_index))]
        with m.If(write_h & tags_u10["last_unit"]):
            m.d.sync += written.eq(written + 1)
        offered = tags_u10["valid"] & (tags_u10["last_step"] if self.last else 1)
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(offered), self.o.payload[0].eq(h10)]
        return m

    def _weight_rom(self, m, q, u, beats, address, advance):
        """ROM of gate q, unit u of every group: word g·K + k holds the beat's coarse_in weights."""
        ci, co, hidden = self.coarse_in, self.coarse_out, self.hidden
        rows = self.wq.weight[q * hidden + u::co][:hidden // co]       # rows g·co + u of gate q
        init = [[int(v) for v in word] for word in rows.reshape(-1, ci)]
        m.submodules[f"weights_{q}_{u}"] = rom = memory.Memory(
            shape=pixel_layout(self.wq.bits, ci), depth=len(init), init=init)
        read = rom.read_port()
        m.d.comb += [read.addr.eq(address), read.en.eq(advance)]
        return read

    def _bias_rom(self, m, q, u, group, first_step, advance):
        """Bias of gate q, unit u per group, read one stage ahead of the accumulator; the first
        step's bias also holds the recurrent product of h0 (exact, so golden's sum is kept)."""
        dx, dh, _ = self.shifts
        rows = slice(q * self.hidden + u, (q + 1) * self.hidden, self.coarse_out)
        bias = self.wq.bias[rows]
        h0_term = (self.wq.weight[rows, self.n_in:] @ self.h0) << dh
        init = [int(v) for v in bias] + ([int(v) for v in bias + h0_term] if self.h0.any() else [])
        m.submodules[f"bias_{q}_{u}"] = rom = memory.Memory(
            shape=signed(self.wq.acc_bits), depth=len(init), init=init)
        read = rom.read_port()
        offset = Mux(first_step, len(bias), 0) if self.h0.any() else 0
        m.d.comb += [read.addr.eq(group + offset), read.en.eq(advance)]
        return read.data

    def _state_rom(self, m, name, values, bits, unit, advance):
        """A ROM of initial state values read at `unit`, or None when they are all zero."""
        if not values.any():
            return None
        m.submodules[name] = rom = memory.Memory(shape=signed(bits), depth=len(values),
                                                 init=[int(v) for v in values])
        read = rom.read_port()
        m.d.comb += [read.addr.eq(unit), read.en.eq(advance)]
        return read.data
