"""Block geometry: the counts, rates and latencies of the hardware blocks, each written once.

Plain Python over shapes and folding factors (no graph, no Amaranth). The blocks in
`dnnhw.layers` set their `cycles_per_frame`, `latency` and sizes from these records, and the
performance model (`dnnhw.ops`) and the resource model read the same records, so that a formula
exists in one place. Every rate and latency is exact against cocotb + Verilator with both
streams unstalled (`tests/test_model.py`).

Notation: (C, H, W) an input shape, (kh, kw), (sh, sw), (top, left, bottom, right) the kernel,
stride and pads, H_pad = H + top + bottom, W_pad = W + left + right; ci, co, f the folding's
`coarse_in`, `coarse_out`, `fine`.
"""

import math
from dataclasses import dataclass


__all__ = ["TREE_RADIX", "ACTIVATION_LATENCY", "HARD_SIGMOID_LATENCY", "LSTM_PIPELINE", "tree_stages", "signed_bits",
           "Window", "window", "Engine", "engine", "queue_depth", "ConvGeometry", "conv", "POOL_STAGES", "PoolGeometry", "pool", "Stream",
           "global_pool", "elementwise", "slice_", "concat", "FCGeometry", "fc",
           "LSTMGeometry", "lstm", "fifo_latency", "converter_latency"]


#: Terms an adder tree of the conv engine adds between two registers (two adder levels).
TREE_RADIX = 4

#: Latency of the elementwise `Activation` block per kind.
ACTIVATION_LATENCY = {"relu": 1, "clamp": 1, "leaky_relu": 2, "sigmoid": 4, "tanh": 4}

#: `HardSigmoid`: the product-and-bias register, then the output register.
HARD_SIGMOID_LATENCY = 2

#: `LSTMCell`: cycles from a group's last beat to its first unit's output beat (5 engine stages,
#: the serializer, 10 state-update stages, the output register).
LSTM_PIPELINE = 17


def tree_stages(terms):
    """Adder-tree register stages for `terms` products: ceil(log4(terms))."""
    stages = 0
    while terms > 1:
        terms, stages = -(-terms // TREE_RADIX), stages + 1
    return stages


def signed_bits(*values):
    """Width of a signed integer holding every one of `values`."""
    return max((v if v >= 0 else ~v).bit_length() for v in values) + 1


@dataclass(frozen=True)
class Window:
    """`SlidingWindow` over a (C, H, W) map with `lanes` channels per beat.

    Attributes
    ----------
    rows, cols : int
        H_pad, W_pad: the padded grid the window walks, one word (C/lanes beats) a position.
    groups : int
        C/lanes, beats per pixel.
    lanes : int
        Channels per beat.
    out_h, out_w : int
        (H_pad - kh) // sh + 1, (W_pad - kw) // sw + 1.
    cycles_per_frame : int
        H_pad · W_pad · C/lanes.
    latency : int
        ((kh-1-top) · W_pad + kw-1-left) · C/lanes + 1; negative when a whole window lies in the
        top padding.
    """
    rows: int
    cols: int
    groups: int
    lanes: int
    kernel: tuple
    stride: tuple
    pads: tuple

    @property
    def out_h(self):
        return (self.rows - self.kernel[0]) // self.stride[0] + 1

    @property
    def out_w(self):
        return (self.cols - self.kernel[1]) // self.stride[1] + 1

    @property
    def cycles_per_frame(self):
        return self.rows * self.cols * self.groups

    @property
    def latency(self):
        (kh, kw), (top, left, _, _) = self.kernel, self.pads
        return ((kh - 1 - top) * self.cols + kw - 1 - left) * self.groups + 1


def window(shape, kernel, stride, pads, lanes):
    """The `Window` of a (C, H, W) `shape`."""
    c, h, w = shape
    top, left, bottom, right = pads
    return Window(h + top + bottom, w + left + right, c // lanes, lanes, tuple(kernel),
                  tuple(stride), tuple(pads))


@dataclass(frozen=True)
class Engine:
    """`ConvEngine`'s counts.

    groups: the sequencer's groups, the convolution's groups / coarse_group (coarse_group groups
    side by side in the lanes); beats = C_in/ci input beats a pixel; blocks = C_out/co output
    beats a pixel; block_steps = (C_in/groups/ci)·(kh·kw/f) compute steps an output beat;
    steps = blocks·block_steps; depth = 7 + ceil(log4(ci·f/coarse_group)) (+2 with LeakyReLU,
    +1 with requantization multipliers), issue to output register;
    cycles_per_pixel = max(beats, steps); latency = beats + block_steps - 1 + depth.
    """
    groups: int
    beats: int
    blocks: int
    block_steps: int
    tree_stages: int
    depth: int

    @property
    def steps(self):
        return self.blocks * self.block_steps

    @property
    def cycles_per_pixel(self):
        return max(self.beats, self.steps)

    @property
    def latency(self):
        return self.beats + self.block_steps - 1 + self.depth


def engine(c_in, c_out, groups, positions, coarse_in, coarse_out, fine, leaky=False,
           coarse_group=1, scaled=False):
    """The `Engine` of C_in → C_out channels in `groups`, `positions` = kh·kw, `coarse_group`
    groups computed side by side, with a fused LeakyReLU when `leaky`, requantization
    multipliers when `scaled`."""
    stages = tree_stages(coarse_in // coarse_group * fine)
    sequenced = groups // coarse_group
    return Engine(sequenced, c_in // coarse_in, c_out // coarse_out,
                  (c_in // sequenced // coarse_in) * (positions // fine), stages,
                  7 + stages + (2 if leaky else 0) + (1 if scaled else 0))


#: Bits of a weight-load beat: one word of a 64-bit bus (a Zynq HP port's width).
LOAD_BITS = 64


@dataclass(frozen=True)
class WeightLoad:
    """How a writable `ConvEngine`'s memories are filled through its load port: per weight
    memory address (kernel step), the row of all its memories' elements (`row` elements of
    `element_bits`, memory-major) in beats of `per_beat` elements, then one beat per output
    channel with its bias and left shift. `per_beat` is the largest divisor of `row` whose
    elements fit `LOAD_BITS`."""
    element_bits: int
    per_beat: int
    weight_beats: int
    channel_beats: int

    @property
    def beats(self):
        return self.weight_beats + self.channel_beats


def weight_load(element_bits, row, steps, channels):
    """The `WeightLoad` of memories of `steps` addresses holding `row` elements of
    `element_bits` an address (all memories together), and `channels` channel entries."""
    per_beat = max(k for k in range(1, row + 1)
                   if row % k == 0 and k * element_bits <= max(LOAD_BITS, element_bits))
    return WeightLoad(element_bits, per_beat, steps * row // per_beat, channels)


def queue_depth(window, engine):
    """Window beats `Conv` queues in a FIFO before the engine so that the engine never waits
    for the window, 0 for none.

    The window emits at padded positions (kh-1 + i·sh)·W_pad + kw-1 + j·sw; the longest gap
    between two emits, in padded positions, is the largest of sw (within a row, W_out > 1),
    sh·W_pad - (W_out-1)·sw (to the next row, H_out > 1) and
    H_pad·W_pad - (H_out-1)·sh·W_pad - (W_out-1)·sw (to the next frame). With
    pixels = ceil(gap · beats / cycles_per_pixel), depth = (pixels + 1)·beats if pixels > 1.
    """
    (sh, sw), cols = window.stride, window.cols
    h_out, w_out = window.out_h, window.out_w
    span = (h_out - 1) * sh * cols + (w_out - 1) * sw      # first emit to last emit
    gaps = [window.rows * cols - span]
    if w_out > 1:
        gaps.append(sw)
    if h_out > 1:
        gaps.append(sh * cols - (w_out - 1) * sw)
    pixels = -(-max(gaps) * engine.beats // engine.cycles_per_pixel)
    return (pixels + 1) * engine.beats if pixels > 1 else 0


@dataclass(frozen=True)
class ConvGeometry:
    """`Conv`: a `Window` (None for a 1×1, stride 1, unpadded conv), a FIFO of `queue_depth`
    window beats (0: none), an `Engine`.

    cycles_per_frame = max(window, H_out·W_out·cycles_per_pixel);
    latency = window + FIFO + engine latencies.
    """
    window: Window | None
    engine: Engine
    queue_depth: int
    out_h: int
    out_w: int

    @property
    def pixels(self):
        return self.out_h * self.out_w

    @property
    def fifo_latency(self):
        return fifo_latency(self.queue_depth)

    @property
    def cycles_per_frame(self):
        window_cycles = self.window.cycles_per_frame if self.window else 0
        return max(self.pixels * self.engine.cycles_per_pixel, window_cycles)

    @property
    def latency(self):
        window_latency = self.window.latency if self.window else 0
        return window_latency + self.fifo_latency + self.engine.latency


def conv(shape, c_out, groups, kernel, stride, pads, coarse_in, coarse_out, fine, leaky=False,
         coarse_group=1, scaled=False):
    """The `ConvGeometry` of a convolution of a (C_in, H, W) `shape`."""
    (kh, kw), (sh, sw) = kernel, stride
    top, left, bottom, right = pads
    c_in, h, w = shape
    pe = engine(c_in, c_out, groups, kh * kw, coarse_in, coarse_out, fine, leaky, coarse_group,
                scaled)
    out_h = (h + top + bottom - kh) // sh + 1
    out_w = (w + left + right - kw) // sw + 1
    if tuple(kernel) == (1, 1) and tuple(stride) == (1, 1) and not any(pads):
        return ConvGeometry(None, pe, 0, out_h, out_w)
    walk = window(shape, kernel, stride, pads, coarse_in)
    return ConvGeometry(walk, pe, queue_depth(walk, pe), out_h, out_w)


#: Cycles `Pool` adds after its window: `WindowReduce` (1), and `AverageScale` (2) for "avg".
POOL_STAGES = {"max": 1, "avg": 3}


@dataclass(frozen=True)
class PoolGeometry:
    """`Pool`: a `Window`, then the reduction (and scaling) stages: cycles per frame the
    window's, latency the window's + POOL_STAGES[kind]."""
    window: Window
    stages: int

    @property
    def cycles_per_frame(self):
        return self.window.cycles_per_frame

    @property
    def latency(self):
        return self.window.latency + self.stages


def pool(shape, kernel, stride, pads, lanes, kind):
    """The `PoolGeometry` of "max" or "avg" pooling of a (C, H, W) `shape`."""
    return PoolGeometry(window(shape, kernel, stride, pads, lanes), POOL_STAGES[kind])


@dataclass(frozen=True)
class Stream:
    """A block without a window: its cycles per frame and latency."""
    cycles_per_frame: int
    latency: int


def global_pool(shape, lanes):
    """`GlobalAveragePool` of a (C, H, W) `shape`: H·W·C/lanes cycles (a beat a cycle),
    latency (H·W - 1)·C/lanes + 3 (the last pixel's sum, then `AverageScale`)."""
    c, h, w = shape
    return Stream(h * w * c // lanes, (h * w - 1) * (c // lanes) + 3)


def elementwise(shape, lanes, latency):
    """A block taking one beat of a (C, H, W) `shape` a cycle: C·H·W/lanes cycles per frame."""
    c, h, w = shape
    return Stream(c * h * w // lanes, latency)


def slice_(shape, lanes):
    """`Slice` of a (C, H, W) `shape`: H·W·C/lanes cycles per frame (every input beat, kept
    or dropped), latency 1."""
    return elementwise(shape, lanes, 1)


def multiply(shape, lanes, broadcast):
    """`Mul` over a (C, H, W) `shape`: C·H·W/lanes cycles per frame, C/lanes more when the
    second operand is a per-channel vector loaded each frame; latency 2."""
    c, h, w = shape
    return Stream((h * w + (1 if broadcast else 0)) * (c // lanes), 2)


def upsample(shape, scale, lanes):
    """`Upsample` of a (C, H, W) `shape` by (sh, sw): H·sh·W·sw·C/lanes cycles per frame (every
    output beat), latency W·C/lanes + 1 (the first row fills a bank)."""
    c, h, w = shape
    sh, sw = scale
    return Stream(h * sh * w * sw * c // lanes, w * c // lanes + 1)


def concat(shapes, lanes):
    """`Concat` of (C_i, H, W) `shapes`: H·W·ΣC_i/lanes cycles per frame, latency 1."""
    sizes = [tuple(s) for s in shapes]
    _, h, w = sizes[0]
    return Stream(h * w * sum(c // lanes for c, _, _ in sizes), 1)


@dataclass(frozen=True)
class FCGeometry:
    """`FullyConnected`: an `Engine` over one pixel of N_in = C·H·W channels, kernel 1×1:
    cycles_per_frame = max(N_in/ci, (N_out/co)·(N_in/ci)), latency = the engine's
    (2·N_in/ci - 1 + depth)."""
    engine: Engine

    @property
    def cycles_per_frame(self):
        return self.engine.cycles_per_pixel

    @property
    def latency(self):
        return self.engine.latency


def fc(in_features, out_features, coarse_in, coarse_out, leaky=False, scaled=False):
    """The `FCGeometry` of N_in = `in_features` → N_out = `out_features`."""
    return FCGeometry(engine(in_features, out_features, 1, 1, coarse_in, coarse_out, 1, leaky,
                             scaled=scaled))


@dataclass(frozen=True)
class LSTMGeometry:
    """`LSTMCell`, both streams unstalled.

    A step runs G = H/co groups of K = (I + H)/ci beats. A step's recurrent beats wait for the
    previous step's last h, written LSTM_PIPELINE - 1 + co cycles after that step's last beat
    (``co - 1`` more units leave the serializer after the first); its I/ci input beats come
    first, so every step but a frame's first stalls
    ``stall = max(0, LSTM_PIPELINE - 2 + co - I/ci)`` cycles. Per frame:
    ``T·G·K + (T - 1)·stall``. Latency, first input beat to first output beat: the first input
    vector (I/ci beats), then the first group (all: step 0; last: step T-1), then
    LSTM_PIPELINE: ``I/ci + K - 1 + LSTM_PIPELINE`` (+ (T-1)·(G·K + stall) if `last`).
    """
    x_words: int
    beats: int
    groups: int
    steps: int
    stall: int
    last: bool

    @property
    def cycles_per_step(self):
        return self.groups * self.beats + self.stall

    @property
    def cycles_per_frame(self):
        return self.steps * self.groups * self.beats + (self.steps - 1) * self.stall

    @property
    def latency(self):
        tail = (self.steps - 1) * self.cycles_per_step if self.last else 0
        return self.x_words + self.beats - 1 + LSTM_PIPELINE + tail


def lstm(n_in, hidden, steps, coarse_in, coarse_out, last):
    """The `LSTMGeometry` of I = `n_in` inputs, H = `hidden` units, T = `steps`."""
    x_words = n_in // coarse_in
    return LSTMGeometry(x_words, x_words + hidden // coarse_in, hidden // coarse_out, steps,
                        max(0, LSTM_PIPELINE - 2 + coarse_out - x_words), last)


def fifo_latency(depth):
    """`StreamFIFO.latency` of a buffered FIFO `depth` beats deep (0 for no FIFO)."""
    return 0 if depth == 0 else (2 if depth > 1 else 1)


def converter_latency(lanes_in, lanes_out):
    """`LaneConverter.latency`: lcm/lanes_in when widening, +1 when narrowing, 0 when equal."""
    wide = math.lcm(lanes_in, lanes_out)
    return (wide // lanes_in if wide > lanes_in else 0) + (wide > lanes_out)
