"""The conv engine: the multiply-accumulate core of a convolution (and of a fully connected layer).

It takes one window per output pixel (`window_layout`: kh·kw kernel positions × `coarse_in`
channels per beat, C_in / coarse_in beats per pixel) and produces the output pixel
(`pixel_layout`: `coarse_out` channels per beat, C_out / coarse_out beats per pixel), computing
exactly what `dnnhw.golden` computes for a conv layer:

    acc = bias + Σ x·w            (exact, in `acc_bits`)
    y   = round_shift(acc, shift) (per output channel, may be a left shift)
          round_shift(acc·R, shift) with requantization multipliers R (scales not powers of two)
    out = saturate(activation(y), out_bits)

Architecture (DESIGN.md, "Layers and folding"):

- `PixelBuffer` (`pixel_buffer.py`), a ping-pong memory, collects one pixel's window beats
  while the other bank is read by the compute pipeline.
- A sequencer walks, per pixel, ``for group, for output block (coarse_out channels), for input
  beat of the group (coarse_in channels), for kernel step (fine positions)``: one *step* per
  cycle, coarse_in·coarse_out·fine multiplications. With ``coarse_group`` groups side by side
  (a grouped convolution whose lanes hold whole groups) it walks groups of groups, and an
  output lane multiplies only its own group's coarse_in/coarse_group input lanes.
- Per output lane a weight ROM holds one word (fine × coarse_in weights) per step (per pair of
  lanes, with `paired` multipliers); per output block a channel ROM holds each lane's bias and
  shift (and multiplier). A `writable` engine has RAMs instead, empty until filled through its load port `w`
  (weights reloading: the same hardware computes each chunk of a layer's filters in turn).
- Multipliers (registered operands, each product registered), a pipelined adder
  tree per lane, an accumulator per lane loaded with the bias at the first step of an output
  block; at its last step the block's sums go to requantization and the fused activation, which
  produce one output beat.

Every register after the pixel buffer advances on one enable, ``advance = ~o.valid | o.ready``:
the pipeline stalls as a whole when its output is blocked, while the pixel buffer keeps taking
input until both banks are full.
"""

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .. import geometry, golden
from ..geometry import TREE_RADIX, signed_bits
from ..golden import leaky_floor
from ..ops._weighted import activation_of
from .common import (balanced_sum, clip, logic_product, pixel_layout, round_shift, saturate,
                     window_layout)
from .pixel_buffer import PixelBuffer


__all__ = ["ConvEngine", "activation_of", "engine_load_port", "leaky_floor"]


def engine_load_port(engine):
    """The weight load port a layer wrapping `engine` passes on: ``{"w": ...}`` if the engine is
    writable, else nothing."""
    return {"w": engine.signature.members["w"]} if engine.writable else {}


class ConvEngine(wiring.Component):
    """Multipliers, adder trees, accumulators, bias, requantization and a fused activation.

    Folding: `coarse_in` input channels (the input lanes) times `coarse_out` output channels
    (the output lanes) times `fine` kernel positions are multiplied on every cycle, by
    ``coarse_in · coarse_out · fine`` multipliers.

    Rate. A pixel takes ``beats = C_in / coarse_in`` input beats and
    ``steps = groups · (C_out/groups/coarse_out) · (C_in/groups/coarse_in) · (kh·kw/fine)``
    compute cycles (with ``coarse_group`` > 1: ``groups/coarse_group · kh·kw/fine``); with both
    streams unstalled an output pixel takes exactly ``cycles_per_pixel = max(beats, steps)`` cycles, and a frame of H_out·W_out pixels
    ``H_out · W_out · cycles_per_pixel``. When compute dominates this scales as
    1 / (coarse_in · coarse_out · fine); at full folding (groups = 1, coarse_in = C_in,
    coarse_out = C_out, fine = kh·kw) it is one window beat per cycle.

    Latency. The first output beat transfers exactly
    ``latency = beats + block_steps - 1 + depth`` cycles after the first input beat (no stalls),
    where ``block_steps = (C_in/groups/coarse_in) · (kh·kw/fine)`` is the steps of one output
    beat and ``depth = 7 + tree_stages`` (``9 + tree_stages`` with LeakyReLU) the pipeline depth
    from a step's issue to its result in the output register: issue, memory read, read register,
    operand register (after the kernel-step select, so that a multiplier block's paths run
    register to register), product register, `tree_stages` adder-tree registers
    (``ceil(log4(coarse_in / coarse_group · fine))``),
    the accumulator, the requantization register and the output register (LeakyReLU adds a clip
    register and its product register before it; requantization multipliers their product
    register).

    Requantization with per-channel shifts uses one constant shift `smax` (the largest shift)
    after a per-channel left shift: ``round_shift(acc, s) == round_shift(acc << (smax - s),
    smax)`` for every s ≤ smax (both are floor(acc · 2**-s + 1/2) when s > 0, and exact left
    shifts when s ≤ 0). The activation is a clip of the requantized value (None, relu and clamp
    are only that clip, to the output's range, to [0, max] and to the clamp bounds); LeakyReLU
    clips to [`leaky_floor`, max], then multiplies negative values by alpha_q.

    Parameters
    ----------
    in_channels, out_channels, groups : int
        C_in, C_out and the convolution's groups (depthwise: groups = C_in = C_out).
    kernel : (int, int)
        (kh, kw).
    in_bits, out_bits : int
        Widths of the input and output integers.
    wq : ir.WeightQuant
        Integer weights (C_out, C_in/groups, kh, kw), bias at the accumulator's scale, `acc_bits`.
    shift : int array
        Per-output-channel requantization shift (`golden.requant`), broadcast to C_out.
    activation : None, "relu", ("clamp", lo, hi) or ("leaky_relu", alpha_q)
        The fused activation with golden's integer constants (see `activation_of`).
    coarse_in, coarse_out, fine : int
        Folding; they must divide C_in/groups, C_out/groups and kh·kw.
    coarse_group : int
        Groups computed side by side; it must divide `groups`, and when it is more than one
        the lanes hold whole groups: coarse_in = coarse_group · C_in/groups and coarse_out =
        coarse_group · C_out/groups. ``coarse_in · coarse_out · fine / coarse_group``
        multipliers.
    logic_multipliers : int
        How many of the multipliers (the last ones, lane-major) are built from logic
        (`logic_product`: LUTs and carry chains) instead of DSP blocks; the rest are
        plain products, which Yosys maps to DSPs. Same results, rate and latency.
    block_weights : bool
        Put the weight ROMs in block RAM (``rom_style = "block"``) whatever their size, where
        Yosys would build small ones from LUTs. Same results, rate and latency.
    paired : bool
        Output lanes 2k and 2k+1 (of one group) share their multipliers. One ROM holds both
        lanes' weights,
        w_even and w_odd less one where w_even is negative (2 · weight bits + 1 a pair); wired
        together they are ``w_odd · 2**S + w_even`` (S = in_bits + weight bits), whose product
        with an input carries both products: ``x · w_even`` in its low S bits (signed) and
        ``x · w_odd`` above them, less one when the low part is negative (added back before
        the adder tree). A multiplier of in_bits × (in_bits + 2 · weight bits + 1) that fits
        one DSP (8-bit words on a DSP48E1's 25 × 18) computes two products. Needs an even
        coarse_out / coarse_group and no logic multipliers. Same results, rate and latency.
    writable : bool
        Weight and channel memories are RAMs written through `w`, empty after reset; `wq` and
        `shift` give their shapes and ranges only (and `load_words` their contents). A load is
        ``load.beats`` beats in the order `load_words` gives; no step issues from the first
        beat of a load until its last beat is written, one beat a cycle (``w.ready`` is
        always 1). A load must not start while a pixel is in the pipeline: the host sends
        weights only between runs, after the last output of the run before.
    mult : int array, optional
        Per-output-channel requantization multipliers R of `golden.REQUANT_BITS` bits
        (`golden.requant`), broadcast to C_out; None for a pure shift.
    shift_range : (int, int), optional
        The smallest and largest requantization shift the engine must handle, where more than
        `shift`'s (a writable engine loaded with other chunks' weights).

    Members
    -------
    i : In(stream.Signature(window_layout(in_bits, coarse_in, kh·kw)))
        One window beat per (output pixel, input channel group).
    o : Out(stream.Signature(pixel_layout(out_bits, coarse_out)))
        The output feature map, channels in order.
    w : In(stream.Signature(unsigned(load_bits)))
        With `writable` only: the weight load (`load_words`).

    Attributes
    ----------
    beats, steps, block_steps, tree_stages, depth, latency, cycles_per_pixel, multipliers : int
        As defined above.
    load : geometry.WeightLoad
        The load port's format (with `writable`); `load_bits` its width.

    Raises
    ------
    ValueError
        For a folding factor that does not divide its dimension, groups not dividing the
        channels, weights of the wrong shape or an unknown activation.
    """

    def __init__(self, in_channels, out_channels, groups, kernel, in_bits, out_bits, wq, shift,
                 activation=None, *, coarse_in=1, coarse_out=1, fine=1, coarse_group=1,
                 logic_multipliers=0, block_weights=False, paired=False, writable=False,
                 shift_range=None, mult=None):
        kh, kw = kernel
        positions = kh * kw
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide {in_channels} input and "
                             f"{out_channels} output channels")
        cin_g, cout_g = in_channels // groups, out_channels // groups
        if coarse_group < 1 or groups % coarse_group:
            raise ValueError(f"coarse_group={coarse_group} must divide the {groups} groups")
        whole = (coarse_group * cin_g, coarse_group * cout_g)
        if coarse_group > 1 and (coarse_in, coarse_out) != whole:
            raise ValueError(f"coarse_group={coarse_group} needs whole groups in the lanes: "
                             f"coarse_in={whole[0]}, coarse_out={whole[1]}")
        for name, factor, total, what in (("coarse_in", coarse_in // coarse_group, cin_g,
                                           "input channels per group"),
                                          ("coarse_out", coarse_out // coarse_group, cout_g,
                                           "output channels per group"),
                                          ("fine", fine, positions, "kernel positions")):
            if factor < 1 or total % factor:
                raise ValueError(f"{name}={factor} must divide {total} {what}")
        if wq.weight.shape != (out_channels, cin_g, kh, kw):
            raise ValueError(f"weights of shape {wq.weight.shape}; expected "
                             f"{(out_channels, cin_g, kh, kw)}")
        self.in_channels, self.out_channels, self.groups, self.kernel = in_channels, out_channels, groups, (kh, kw)
        self.in_bits, self.out_bits, self.wq = in_bits, out_bits, wq
        self.coarse_in, self.coarse_out, self.fine = coarse_in, coarse_out, fine
        self.coarse_group, self.positions = coarse_group, positions
        self.multipliers = coarse_in * coarse_out * fine // coarse_group
        if not 0 <= logic_multipliers <= self.multipliers:
            raise ValueError(f"logic_multipliers={logic_multipliers} must be within "
                             f"[0, {self.multipliers}] multipliers")
        if paired and (coarse_out // coarse_group % 2 or logic_multipliers):
            raise ValueError(f"paired multipliers need an even coarse_out per group (got "
                             f"{coarse_out // coarse_group}) and no logic multipliers (got "
                             f"{logic_multipliers})")
        self.logic_multipliers, self.block_weights = logic_multipliers, block_weights
        self.paired, self.writable = paired, writable
        self._activation(activation)
        self.geometry = g = geometry.engine(in_channels, out_channels, groups, positions,
                                            coarse_in, coarse_out, fine,
                                            leaky=self.alpha_q is not None,
                                            coarse_group=coarse_group, scaled=mult is not None)
        self.beats, self.blocks, self.block_steps, self.steps = g.beats, g.blocks, g.block_steps, g.steps
        self.tree_stages, self.depth, self.latency = g.tree_stages, g.depth, g.latency
        self.cycles_per_pixel = g.cycles_per_pixel
        shift = np.broadcast_to(np.asarray(shift, dtype=np.int64), (out_channels,))
        lo, hi = shift_range or (int(shift.min()), int(shift.max()))
        if not lo <= shift.min() <= shift.max() <= hi:
            raise ValueError(f"shifts {int(shift.min())} to {int(shift.max())} outside the "
                             f"shift range {(lo, hi)}")
        self.smax, self.shift = hi, shift
        self.mult = None if mult is None else np.broadcast_to(np.asarray(mult, np.int64),
                                                              (out_channels,))
        fields = {"bias": signed(self.wq.acc_bits), "left": range(hi - lo + 1)}
        if mult is not None:
            fields["mult"] = unsigned(golden.REQUANT_BITS)
        self.channel = data.ArrayLayout(data.StructLayout(fields), coarse_out)
        self.weight_rom, self.channel_rom = self._contents(wq, shift, self.mult)
        signature = {"i": In(stream.Signature(window_layout(in_bits, coarse_in, positions))),
                     "o": Out(stream.Signature(pixel_layout(out_bits, coarse_out)))}
        if writable:
            entry = self.channel.elem_shape.size
            self.load = geometry.weight_load(self._word().elem_shape.width,
                                             len(self.weight_rom) * self._word().length,
                                             self.steps, out_channels)
            self.load_bits = max(self.load.per_beat * self.load.element_bits, entry)
            if self.load_bits > geometry.LOAD_BITS:
                raise ValueError(f"a channel's bias, shift and multiplier take {entry} bits, more than a "
                                 f"{geometry.LOAD_BITS}-bit load beat")
            signature["w"] = In(stream.Signature(unsigned(self.load_bits)))
        super().__init__(signature)

    @classmethod
    def from_layer(cls, graph, layer, coarse_in=1, coarse_out=1, fine=1, coarse_group=1,
                   logic_multipliers=0, block_weights=False, paired=False, writable=False):
        """The engine of conv `layer` of the quantized `graph`, every constant from golden (a
        reloaded chunk's layer states the whole layer's shift range, `partition.subgraph`)."""
        mult, shift = golden.requant(graph, layer)
        try:
            return cls(graph.in_shape(layer).c, graph.out_shape(layer).c, layer.attrs["groups"],
                       layer.attrs["kernel"], graph.formats[layer.inputs[0]].bits,
                       graph.formats[layer.output].bits, layer.wq, shift,
                       activation_of(graph, layer),
                       coarse_in=coarse_in, coarse_out=coarse_out, fine=fine,
                       coarse_group=coarse_group, logic_multipliers=logic_multipliers,
                       block_weights=block_weights, paired=paired, writable=writable,
                       shift_range=layer.attrs.get("shift_range"), mult=mult)
        except ValueError as error:
            raise ValueError(f"Conv '{layer.name}': {error}") from None

    def cycles_per_frame(self, pixels):
        """Cycles between frames of `pixels` output pixels, both streams unstalled."""
        return pixels * self.cycles_per_pixel

    def _activation(self, activation):
        """The clip bounds applied after requantization, and LeakyReLU's slope (or None)."""
        lo, hi = -(1 << (self.out_bits - 1)), (1 << (self.out_bits - 1)) - 1
        self.alpha_q = None
        if activation is None:
            self.clip = (lo, hi)
        elif activation == "relu":
            self.clip = (0, hi)
        elif isinstance(activation, tuple) and activation[0] == "clamp":
            if not lo <= activation[1] <= activation[2] <= hi:
                raise ValueError(f"clamp bounds {activation[1:]} must be ordered and within "
                                 f"[{lo}, {hi}]")
            self.clip = tuple(activation[1:])
        elif isinstance(activation, tuple) and activation[0] == "leaky_relu":
            self.alpha_q = activation[1]
            self.clip = (leaky_floor(self.alpha_q, self.out_bits), hi)
        else:
            raise ValueError(f"unknown activation {activation!r}; expected None, 'relu', "
                             f"('clamp', lo, hi) or ('leaky_relu', alpha_q)")

    def _word(self):
        """The layout of a weight memory's word: fine × its group's input lanes."""
        wb = self.wq.bits
        return data.ArrayLayout(unsigned(2 * wb + 1) if self.paired else signed(wb),
                                self.fine * self.coarse_in // self.coarse_group)

    def _contents(self, wq, shift, mult):
        """(weight memory words, one per step: per output lane, or per pair of lanes with
        `paired`; channel memory words, one per block) of weights `wq`, shifts `shift` and
        requantization multipliers `mult` (or None)."""
        cg, fine, g = self.coarse_group, self.fine, self.groups
        ci, co = self.coarse_in // cg, self.coarse_out // cg        # a group's lanes
        weight = np.asarray(wq.weight, dtype=np.int64).reshape(
            g // cg, cg, self.out_channels // g // co, co, self.in_channels // g // ci, ci,
            self.positions // fine, fine)
        # (lane: group in the lanes, its lane; groups of groups, block, beat, kernel step,
        # position in step, input lane)
        words = weight.transpose(1, 3, 0, 2, 4, 6, 7, 5).reshape(self.coarse_out, self.steps,
                                                                  fine * ci)
        if self.paired:     # per pair: w_even, and w_odd less one where w_even is negative
            wb = wq.bits
            words = np.stack([(even & ((1 << wb) - 1)) | ((odd - (even < 0)) & ((1 << (wb + 1)) - 1)) << wb
                              for even, odd in zip(words[0::2], words[1::2])])
        left = (self.smax - shift).reshape(self.blocks, self.coarse_out)
        bias = np.asarray(wq.bias, dtype=np.int64).reshape(self.blocks, self.coarse_out)
        ones = np.ones_like(left) if mult is None else mult.reshape(left.shape)
        channel = [[{"bias": int(b), "left": int(s), **({} if mult is None else {"mult": int(r)})}
                    for b, s, r in zip(*row)] for row in zip(bias, left, ones)]
        return words, channel

    def load_words(self, wq=None, shift=None, mult=None):
        """The load port's beats (unsigned integers) that fill a writable engine with weights
        `wq`, shifts `shift` and multipliers `mult` (default: its own), as `load` says: per
        step, the memories' elements memory-major, `load.per_beat` a beat (the first lowest);
        then per output channel, in order, its bias (low `acc_bits` bits), left shift above it
        and multiplier above that."""
        shift = self.shift if shift is None else np.broadcast_to(
            np.asarray(shift, dtype=np.int64), (self.out_channels,))
        if mult is not None:
            mult = np.broadcast_to(np.asarray(mult, dtype=np.int64), (self.out_channels,))
        words, channel = self._contents(wq or self.wq, shift,
                                        self.mult if mult is None else mult)
        k, bits = self.load.per_beat, self.load.element_bits
        row = words.transpose(1, 0, 2).reshape(-1, k) & ((1 << bits) - 1)
        beats = [sum(int(e) << (bits * j) for j, e in enumerate(r)) for r in row]
        acc, left = self.wq.acc_bits, Shape.cast(self.channel.elem_shape["left"].shape).width
        beats += [(entry["bias"] & ((1 << acc) - 1)) | entry["left"] << acc
                  | entry.get("mult", 0) << (acc + left) for block in channel for entry in block]
        return beats

    def elaborate(self, platform):
        m = Module()
        m.submodules.buffer = buffer = PixelBuffer(self.i.payload.shape(), self.beats)
        wiring.connect(m, wiring.flipped(self.i), buffer.i)
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)

        def stage(value, name):
            """`value` registered: one pipeline stage later."""
            reg = Signal.like(value, name=name)
            with m.If(advance):
                m.d.sync += reg.eq(value)
            return reg

        weights, channels = self._memories(m)
        loaded = self._loader(m, weights, channels) if self.writable else 1
        controls, step = self._sequencer(m, buffer, advance, loaded)
        products = self._multiply(m, stage, buffer, step, controls, weights)
        sums = self._adder_trees(stage, products, controls)
        acc, left, mult, done = self._accumulate(m, stage, advance, sums, controls, channels)
        self._requantize(m, stage, advance, acc, left, mult, done)
        return m

    def _sequencer(self, m, buffer, advance, loaded):
        """Issue one step per cycle while the pixel buffer holds a pixel and the weights are
        `loaded`; returns the control of
        the issued step (valid, first and last step of an output block, kernel step, block) as
        the first of the list of its pipeline stages, and the step's index (the weight ROMs'
        address)."""
        kernel_steps, groups = self.positions // self.fine, self.geometry.groups
        group_beats = self.in_channels // groups // self.coarse_in
        step = Signal(range(self.steps))
        k = Signal(range(kernel_steps))                      # kernel step
        beat = Signal(range(group_beats))                    # input beat within the group
        block = Signal(range(self.blocks))                   # output block (group-major)
        in_group = Signal(range(self.blocks // groups))      # output block within the group
        base = Signal(range(self.beats))                     # first input beat of the group
        control = Signal(data.StructLayout({"valid": 1, "first": 1, "last": 1,
                                            "k": range(kernel_steps), "block": range(self.blocks)}))
        last_k, last_beat = k == kernel_steps - 1, beat == group_beats - 1
        last_block = last_k & last_beat
        last_in_group = in_group == self.blocks // groups - 1
        last_pixel = step == self.steps - 1
        pending = buffer.full & loaded
        issue = advance & pending
        m.d.comb += [
            buffer.addr.eq(base + beat),
            buffer.en.eq(advance),
            buffer.release.eq(issue & last_pixel),
            control.valid.eq(pending),
            control.first.eq((k == 0) & (beat == 0)),
            control.last.eq(last_block),
            control.k.eq(k),
            control.block.eq(block),
        ]
        with m.If(issue):
            m.d.sync += [step.eq(Mux(last_pixel, 0, step + 1)), k.eq(Mux(last_k, 0, k + 1))]
            with m.If(last_k):
                m.d.sync += beat.eq(Mux(last_beat, 0, beat + 1))
            with m.If(last_block):
                m.d.sync += [block.eq(Mux(last_pixel, 0, block + 1)),
                             in_group.eq(Mux(last_in_group, 0, in_group + 1))]
                with m.If(last_in_group):
                    m.d.sync += base.eq(Mux(last_pixel, 0, base + group_beats))
        return [control], step

    def _memories(self, m):
        """The weight memories (one per output lane, or pair of lanes) and the channel memory:
        ROMs of the engine's weights, or empty RAMs if `writable`."""
        word, writable = self._word(), self.writable
        style = {("ram_style" if writable else "rom_style"): "block"} if self.block_weights else None
        weights = []
        for lane, rom in enumerate(self.weight_rom):
            m.submodules[f"weights{lane}"] = mem = memory.Memory(
                shape=word, depth=self.steps, init=[] if writable else [list(map(int, w)) for w in rom],
                attrs=style)
            weights.append(mem)
        m.submodules.channels = channels = memory.Memory(
            shape=self.channel, depth=self.blocks, init=[] if writable else self.channel_rom)
        return weights, channels

    def _loader(self, m, weights, channels):
        """The write side of a writable engine's memories, fed by `w` in `load_words`' order;
        returns `loaded`: the last load is complete (0 after reset)."""
        n, co = self._word().length, self.coarse_out
        row, k, bits = len(weights) * n, self.load.per_beat, self.load.element_bits
        step = Signal(range(self.steps))            # weight memory address
        part = Signal(range(row // k))              # beat within the address's row
        block = Signal(range(self.blocks))          # channel memory address
        lane = Signal(range(co))                    # channel entry within the block
        filling_channels, loaded = Signal(), Signal()
        beat, take = self.w.payload, self.w.valid
        m.d.comb += self.w.ready.eq(1)
        for index, mem in enumerate(weights):       # element e of memory `index`: row place p
            places = [index * n + e for e in range(n)]
            port = mem.write_port(granularity=1)
            m.d.comb += [
                port.addr.eq(step),
                port.data.eq(Cat(beat[bits * (p % k):bits * (p % k + 1)] for p in places)),
                port.en.eq(Cat((part == p // k) & take & ~filling_channels for p in places)),
            ]
        port = channels.write_port(granularity=1)
        m.d.comb += [
            port.addr.eq(block),
            port.data.eq(beat[:self.channel.elem_shape.size].replicate(co)),
            port.en.eq(Cat((lane == j) & take & filling_channels for j in range(co))),
        ]
        last_part, last_step = part == row // k - 1, step == self.steps - 1
        last_lane, last_block = lane == co - 1, block == self.blocks - 1
        with m.If(take & ~filling_channels):
            m.d.sync += [part.eq(Mux(last_part, 0, part + 1)), loaded.eq(0)]
            with m.If(last_part):
                m.d.sync += step.eq(Mux(last_step, 0, step + 1))
                m.d.sync += filling_channels.eq(last_step)
        with m.If(take & filling_channels):
            m.d.sync += lane.eq(Mux(last_lane, 0, lane + 1))
            with m.If(last_lane):
                m.d.sync += block.eq(Mux(last_block, 0, block + 1))
                with m.If(last_block):
                    m.d.sync += [filling_channels.eq(0), loaded.eq(1)]
        return loaded

    def _multiply(self, m, stage, buffer, step, controls, memories):
        """The window's read register and kernel-step select, the weight memory reads (one
        stage later), both into the operand registers, and the multipliers, each product
        registered; returns the products per output lane."""
        wb, low = self.wq.bits, self.in_bits + self.wq.bits   # low: bits of x · w_even
        word = self._word()
        weights = []
        step_read = stage(step, "step_read")    # the weights are read a stage after the window
        for mem in memories:
            port = mem.read_port(transparent_for=())
            m.d.comb += [port.addr.eq(step_read), port.en.eq(buffer.en)]
            weights.append(port.data)
        controls.append(stage(controls[-1], "control_read"))
        controls.append(stage(controls[-1], "control_select"))
        window = stage(buffer.data, "window")
        operands = self.fine * self.coarse_in
        select = window.as_value().word_select(controls[-1].k, operands * self.in_bits)
        inputs = stage(data.ArrayLayout(signed(self.in_bits), operands)(select), "operands")
        weights = [stage(w, f"operand_weight{lane}") for lane, w in enumerate(weights)]
        controls.append(stage(controls[-1], "control_operands"))
        controls.append(stage(controls[-1], "control_product"))
        first_logic = self.multipliers - self.logic_multipliers
        ci = self.coarse_in // self.coarse_group                # a group's input lanes
        memories_per_group = len(weights) // self.coarse_group

        def product(memory, j, w):
            # term j of the word: kernel position j // ci, lane j % ci of the memory's group
            x = inputs[j // ci * self.coarse_in + memory // memories_per_group * ci + j % ci]
            if self.paired:     # w_odd · 2**low + w_even: w_even sign-extended to low bits
                even = w[j][:wb]
                return x * Cat(even, even[-1].replicate(low - wb), w[j][wb:]).as_signed()
            if memory * word.length + j >= first_logic:
                return logic_product(x, w[j])
            return x * w[j]

        products = [[stage(product(memory, j, w), f"product{memory}_{j}")
                     for j in range(word.length)] for memory, w in enumerate(weights)]
        if not self.paired:
            return products
        out = []
        for pair in products:                   # low part: x · w_even; high part: x · w_odd
            out.append([p[:low].as_signed() for p in pair])
            out.append([(p[low:].as_signed() + p[low - 1])[:low].as_signed() for p in pair])
        return out

    def _adder_trees(self, stage, products, controls):
        """Per output lane, the sum of its products, `TREE_RADIX` terms per registered stage."""
        product_max = 1 << (self.in_bits + self.wq.bits - 2)
        terms_total = self.coarse_in // self.coarse_group * self.fine
        for level in range(self.tree_stages):
            summed = []
            for lane, terms in enumerate(products):
                groups = [terms[j:j + TREE_RADIX] for j in range(0, len(terms), TREE_RADIX)]
                leaves = min(TREE_RADIX ** (level + 1), terms_total)
                width = min(signed_bits(leaves * product_max), self.wq.acc_bits)
                summed.append([stage(balanced_sum(group)[:width].as_signed(),
                                     f"sum{level}_{lane}_{j}") for j, group in enumerate(groups)])
            products = summed
            controls.append(stage(controls[-1], f"control_tree{level}"))
        return [terms[0] for terms in products]

    def _accumulate(self, m, stage, advance, sums, controls, channels):
        """Accumulators, loaded with the bias at an output block's first step; returns them, the
        block's per-lane left shift and multiplier (None without) and `done` (the accumulators
        hold a finished block)."""
        port = channels.read_port(transparent_for=())
        # read two stages ahead, so that the registered word meets the sums of its block
        m.d.comb += [port.addr.eq(controls[-3].block), port.en.eq(advance)]
        channel = stage(port.data, "channel")
        control = controls[-1]
        acc = [Signal(signed(self.wq.acc_bits), name=f"acc{lane}") for lane in range(self.coarse_out)]
        left = [Signal.like(channel[lane].left, name=f"left{lane}") for lane in range(self.coarse_out)]
        mult = None if self.mult is None else [
            Signal.like(channel[lane].mult, name=f"mult{lane}") for lane in range(self.coarse_out)]
        with m.If(advance & control.valid):
            for lane in range(self.coarse_out):
                with m.If(control.first):
                    m.d.sync += [acc[lane].eq(channel[lane].bias + sums[lane]),
                                 left[lane].eq(channel[lane].left)]
                    if mult is not None:
                        m.d.sync += mult[lane].eq(channel[lane].mult)
                with m.Else():
                    m.d.sync += acc[lane].eq(acc[lane] + sums[lane])
        return acc, left, mult, stage(control.valid & control.last, "done")

    def _requantize(self, m, stage, advance, acc, left, mult, done):
        """The multiplier's product (registered, with multipliers), requantization (registered),
        the activation's clip (registered), LeakyReLU's product and rounding (registered each),
        into the output register."""
        lanes = range(self.coarse_out)
        shifted = [acc[lane] << left[lane] for lane in lanes]
        if mult is not None:
            shifted = [stage(shifted[lane] * mult[lane], f"scaled_acc{lane}") for lane in lanes]
            done = stage(done, "scaled_valid")
        requantized = [stage(round_shift(shifted[lane], self.smax), f"requantized{lane}")
                       for lane in lanes]
        values = [clip(requantized[lane], *self.clip) for lane in lanes]
        valid = stage(done, "requantized_valid")
        if self.alpha_q is not None:
            clipped = [stage(values[lane], f"clipped{lane}") for lane in lanes]
            scaled = [stage(clipped[lane] * self.alpha_q, f"scaled{lane}") for lane in lanes]
            clipped = [stage(clipped[lane], f"clipped_delayed{lane}") for lane in lanes]
            values = [Mux(clipped[lane] < 0,
                          saturate(round_shift(scaled[lane], golden.LEAKY_FRAC), self.out_bits),
                          clipped[lane]) for lane in lanes]
            valid = stage(stage(valid, "clipped_valid"), "scaled_valid")
        with m.If(advance):
            m.d.sync += self.o.valid.eq(valid)
            m.d.sync += [self.o.payload[lane].eq(values[lane]) for lane in lanes]
