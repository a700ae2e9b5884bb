"""The performance model: rate and latency of every layer for a folding, without building hardware.

Plain Python over the graph IR (no Amaranth), so that the DSE can evaluate thousands of foldings
per second. Every formula is the one the corresponding block in `dnnhw.layers` states and sets as
its `cycles_per_frame` and `latency` attributes, which are exact against cocotb + Verilator
measurements with both streams unstalled; `tests/test_model.py` checks the model equals those
attributes for a matrix of layers and foldings.

Definitions used below (per layer; ``ceil`` rounds up):

- (C_in, H, W) the input shape, (C_out, H_out, W_out) the output shape, g the groups,
  (kh, kw), (sh, sw), (top, left, bottom, right) the kernel, stride and pads,
  H_pad = H + top + bottom, W_pad = W + left + right;
- ci, co, f the folding's `coarse_in`, `coarse_out`, `fine`; "lanes" of a layer without weights
  is ci = co.
"""

import functools
import math
from dataclasses import dataclass, field

import numpy as np


__all__ = ["Folding", "LayerPerf", "NetworkPerf", "Edge", "foldings", "check", "in_lanes",
           "out_lanes", "cycles_per_frame", "latency", "edges", "network", "converter_latency",
           "fifo_latency", "lstm_cycles", "ACTIVATION_LATENCY", "TREE_RADIX", "LSTM_PIPELINE"]


#: Terms an adder tree of the conv engine adds between two registers (two adder levels).
TREE_RADIX = 4

#: Latency of the elementwise `Activation` block per kind.
ACTIVATION_LATENCY = {"relu": 1, "clamp": 1, "leaky_relu": 2, "sigmoid": 4, "tanh": 4}

#: `LSTMCell`: cycles from a group's last beat to its first unit's output beat (5 engine stages,
#: the serializer, 10 state-update stages, the output register).
LSTM_PIPELINE = 17

_WEIGHTED = ("conv", "fc")
_POOL = ("maxpool", "avgpool")
_LANES = (*_POOL, "global_avgpool", *ACTIVATION_LATENCY, "add", "concat")


@dataclass(frozen=True)
class Folding:
    """A layer's parallelism: input lanes, output lanes, kernel positions per cycle, how many
    of its coarse_in·coarse_out·fine multipliers are built from logic rather than DSP blocks,
    whether its weight ROMs are forced into block RAM, and whether pairs of output lanes share
    each multiplier (`layers.conv_engine.ConvEngine`'s `paired`: two products per DSP where
    the packed operand fits one); the last three change resources only, not rate or latency
    (conv and fc layers).

    Layers without weights use `coarse_in` = `coarse_out` (their lanes), `fine` = 1 and no
    multipliers.
    """
    coarse_in: int = 1
    coarse_out: int = 1
    fine: int = 1
    logic_multipliers: int = 0
    block_weights: bool = False
    paired: bool = False

    @property
    def multipliers(self):
        return self.coarse_in * self.coarse_out * self.fine


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def _conv_dims(graph, layer):
    """(C_in/g, C_out/g, kh·kw) of a conv layer."""
    g = layer.attrs.get("groups", 1)
    kh, kw = layer.attrs["kernel"]
    return graph.in_shape(layer).c // g, graph.out_shape(layer).c // g, kh * kw


def _lane_channels(graph, layer):
    """The channel counts a lanes-only layer's lanes must divide (every input's C)."""
    return [graph.shapes[t].c for t in layer.inputs]


def foldings(graph, layer):
    """Every valid folding of `layer`, sorted by (coarse_in, coarse_out, fine).

    - conv: ci | C_in/g, co | C_out/g, f | kh·kw;
    - fc: ci | C_in (the channels of its (C, H, W) input, as the stream delivers them),
      co | N_out, f = 1;
    - pooling, global pooling, activations, add, concat: lanes ci = co dividing the C of every
      input, f = 1.
    """
    op = layer.op
    if op == "conv":
        cin_g, cout_g, positions = _conv_dims(graph, layer)
        return [Folding(ci, co, f) for ci in _divisors(cin_g) for co in _divisors(cout_g)
                for f in _divisors(positions)]
    if op == "fc":
        return [Folding(ci, co) for ci in _divisors(graph.in_shape(layer).c)
                for co in _divisors(graph.out_shape(layer).c)]
    if op in _LANES:
        channels = _lane_channels(graph, layer)
        return [Folding(n, n) for n in _divisors(min(channels))
                if all(c % n == 0 for c in channels)]
    if op == "lstm":
        n_in, hidden = graph.in_shape(layer).c, layer.attrs["hidden"]
        return [Folding(ci, co) for ci in _divisors(math.gcd(n_in, hidden))
                for co in _divisors(hidden) if co <= (n_in + hidden) // ci]
    raise ValueError(f"model: unknown op {op!r} of layer '{layer.name}'")


def check(graph, layer, folding):
    """Raise ValueError unless `folding` is one of `foldings(graph, layer)`."""
    op, (ci, co, f) = layer.op, (folding.coarse_in, folding.coarse_out, folding.fine)
    if min(ci, co, f) < 1:
        raise ValueError(f"'{layer.name}': folding factors must be positive, got {folding}")
    logic = folding.logic_multipliers
    if folding.block_weights and op not in _WEIGHTED:
        raise ValueError(f"'{layer.name}' ({op}): block_weights is for conv and fc layers")
    if logic and (op not in _WEIGHTED or not 0 <= logic <= folding.multipliers):
        raise ValueError(f"'{layer.name}' ({op}): logic_multipliers={logic} must be within the "
                         f"layer's {folding.multipliers if op in _WEIGHTED else 0} multipliers")
    if folding.paired and (op not in _WEIGHTED or co % 2 or logic):
        raise ValueError(f"'{layer.name}' ({op}): paired multipliers are for conv and fc layers "
                         f"with an even coarse_out and no logic multipliers, got {folding}")
    if op == "conv":
        totals = _conv_dims(graph, layer)
    elif op == "fc":
        totals = (graph.in_shape(layer).c, graph.out_shape(layer).c, 1)
    elif op == "lstm":
        n_in, hidden = graph.in_shape(layer).c, layer.attrs["hidden"]
        if n_in % ci or hidden % ci or hidden % co or co > (n_in + hidden) // ci or f != 1:
            raise ValueError(f"'{layer.name}' (lstm): needs coarse_in dividing {n_in} inputs and "
                             f"{hidden} hidden units, coarse_out dividing {hidden} and at most "
                             f"(I + H) / coarse_in, fine = 1; got {folding}")
        return
    elif op in _LANES:
        if ci != co or f != 1 or any(c % ci for c in _lane_channels(graph, layer)):
            raise ValueError(f"'{layer.name}' ({op}): needs coarse_in = coarse_out dividing "
                             f"{_lane_channels(graph, layer)} channels and fine = 1, got {folding}")
        return
    else:
        raise ValueError(f"model: unknown op {op!r} of layer '{layer.name}'")
    for name, factor, total in zip(("coarse_in", "coarse_out", "fine"), (ci, co, f), totals):
        if total % factor:
            raise ValueError(f"'{layer.name}' ({op}): {name}={factor} must divide {total}")


def in_lanes(layer, folding):
    """Channels per input beat: `coarse_in` (the lanes for layers without weights)."""
    return folding.coarse_in


def out_lanes(layer, folding):
    """Channels per output beat: `coarse_out` (the lanes for layers without weights); an
    LSTM's hidden states leave one per beat."""
    return 1 if layer.op == "lstm" else folding.coarse_out


# -- the LSTM cell --------------------------------------------------------------------------------


def lstm_cycles(n_in, hidden, steps, coarse_in, coarse_out, last):
    """(cycles per step, cycles per frame, latency) of `LSTMCell`, both streams unstalled.

    A step runs G = H/co groups of K = (I + H)/ci beats. A step's recurrent beats wait for the
    previous step's last h, written LSTM_PIPELINE - 1 + co cycles after that step's last beat
    (``co - 1`` more units leave the serializer after the first); its I/ci input beats come
    first, so every step but a frame's first stalls
    ``stall = max(0, LSTM_PIPELINE - 2 + co - I/ci)`` cycles. Per frame:
    ``T·G·K + (T - 1)·stall``. Latency, first input beat to first output beat: the first input
    vector (I/ci beats), then the first group (all: step 0; last: step T-1), then
    LSTM_PIPELINE: ``I/ci + K - 1 + LSTM_PIPELINE`` (+ (T-1)·(G·K + stall) if `last`).
    """
    x_words = n_in // coarse_in
    beats = x_words + hidden // coarse_in
    step = (hidden // coarse_out) * beats
    stall = max(0, LSTM_PIPELINE - 2 + coarse_out - x_words)
    latency = x_words + beats - 1 + LSTM_PIPELINE + ((steps - 1) * (step + stall) if last else 0)
    return step + stall, steps * step + (steps - 1) * stall, latency


def _lstm(graph, layer, folding):
    shape = graph.in_shape(layer)
    return lstm_cycles(shape.c, layer.attrs["hidden"], shape.w, folding.coarse_in,
                       folding.coarse_out, layer.attrs["last"])


# -- the conv engine ------------------------------------------------------------------------------


def _tree_stages(terms):
    """Adder-tree register stages for `terms` products: ceil(log4(terms))."""
    stages = 0
    while terms > 1:
        terms, stages = -(-terms // TREE_RADIX), stages + 1
    return stages


@dataclass(frozen=True)
class _Engine:
    """`ConvEngine`'s counts: beats = C_in/ci, block_steps = (C_in/g/ci)·(kh·kw/f),
    steps = (C_out/co)·block_steps, cycles_per_pixel = max(beats, steps),
    depth = 7 + ceil(log4(ci·f)) (+2 with LeakyReLU),
    latency = beats + block_steps - 1 + depth."""
    beats: int
    block_steps: int
    steps: int
    depth: int

    @property
    def cycles_per_pixel(self):
        return max(self.beats, self.steps)

    @property
    def latency(self):
        return self.beats + self.block_steps - 1 + self.depth


def _engine(c_in, c_out, groups, positions, folding, act):
    ci, co, f = folding.coarse_in, folding.coarse_out, folding.fine
    block_steps = (c_in // groups // ci) * (positions // f)
    depth = 7 + _tree_stages(ci * f) + (2 if act == "leaky_relu" else 0)
    return _Engine(c_in // ci, block_steps, (c_out // co) * block_steps, depth)


# -- conv: window, queue, engine ------------------------------------------------------------------


def _conv_parts(graph, layer, folding):
    """(engine, window cycles or None, window latency, FIFO latency, output pixels)."""
    a = layer.attrs
    (kh, kw), (sh, sw) = a["kernel"], a["stride"]
    top, left, bottom, right = a["pads"]
    c_in, h, w = graph.in_shape(layer)
    out = graph.out_shape(layer)
    h_out, w_out = (h + top + bottom - kh) // sh + 1, (w + left + right - kw) // sw + 1
    engine = _engine(c_in, out.c, a.get("groups", 1), kh * kw, folding, layer.act)
    pointwise = (kh, kw) == (1, 1) and (sh, sw) == (1, 1) and not any(a["pads"])
    if pointwise:
        return engine, None, 0, 0, h_out * w_out
    rows, cols = h + top + bottom, w + left + right
    groups = c_in // folding.coarse_in
    window_cycles = rows * cols * groups
    window_latency = ((kh - 1 - top) * cols + kw - 1 - left) * groups + 1
    depth = _queue_depth(rows, cols, (sh, sw), h_out, w_out, engine)
    fifo_latency = 0 if depth == 0 else (2 if depth > 1 else 1)
    return engine, window_cycles, window_latency, fifo_latency, h_out * w_out


def _queue_depth(rows, cols, stride, h_out, w_out, engine):
    """Window beats `Conv` queues in a (buffered) FIFO before the engine, 0 for none.

    The window emits at padded positions (kh-1 + i·sh)·W_pad + kw-1 + j·sw; the longest gap
    between two emits, in padded positions, is the largest of sw (within a row, W_out > 1),
    sh·W_pad - (W_out-1)·sw (to the next row, H_out > 1) and
    H_pad·W_pad - (H_out-1)·sh·W_pad - (W_out-1)·sw (to the next frame). With
    pixels = ceil(gap · beats / cycles_per_pixel), depth = (pixels + 1)·beats if pixels > 1.
    """
    sh, sw = stride
    span = (h_out - 1) * sh * cols + (w_out - 1) * sw      # first emit to last emit
    gaps = [rows * cols - span]
    if w_out > 1:
        gaps.append(sw)
    if h_out > 1:
        gaps.append(sh * cols - (w_out - 1) * sw)
    pixels = -(-max(gaps) * engine.beats // engine.cycles_per_pixel)
    return (pixels + 1) * engine.beats if pixels > 1 else 0


# -- per-layer rate and latency -------------------------------------------------------------------


def _window(graph, layer, lanes):
    """(cycles, latency) of the sliding window of a pooling layer with `lanes` lanes:
    H_pad·W_pad·C/lanes and ((kh-1-top)·W_pad + kw-1-left)·C/lanes + 1."""
    a = layer.attrs
    (kh, kw), (top, left, bottom, right) = a["kernel"], a["pads"]
    c, h, w = graph.in_shape(layer)
    cols, groups = w + left + right, c // lanes
    return ((h + top + bottom) * cols * groups,
            ((kh - 1 - top) * cols + kw - 1 - left) * groups + 1)


def cycles_per_frame(graph, layer, folding):
    """Cycles between frames with both streams unstalled (the layer's initiation interval).

    - conv: max(window, engine), window = H_pad·W_pad·C_in/ci (no window for a 1×1, stride 1,
      unpadded conv), engine = H_out·W_out·max(C_in/ci, (C_out/co)·(C_in/g/ci)·(kh·kw/f));
    - fc: (N_out/co)·(N_in/ci), N_in = C·H·W;
    - maxpool, avgpool: H_pad·W_pad·C/lanes;
    - global_avgpool, activations, add: C·H·W/lanes;
    - concat: H·W·ΣC_i/lanes.

    Raises
    ------
    ValueError
        For an invalid folding (`check`) or an unknown op.
    """
    check(graph, layer, folding)
    op, lanes = layer.op, folding.coarse_in
    if op == "conv":
        engine, window_cycles, _, _, pixels = _conv_parts(graph, layer, folding)
        return max(pixels * engine.cycles_per_pixel, window_cycles or 0)
    if op == "fc":
        return _fc_engine(graph, layer, folding).cycles_per_pixel
    if op in _POOL:
        return _window(graph, layer, lanes)[0]
    if op == "concat":
        shapes = [graph.shapes[t] for t in layer.inputs]
        return shapes[0].h * shapes[0].w * sum(s.c // lanes for s in shapes)
    if op == "lstm":
        return _lstm(graph, layer, folding)[1]
    return graph.in_shape(layer).size // lanes      # global_avgpool, activations, add


def _fc_engine(graph, layer, folding):
    """The fc layer's engine: a 1×1 conv over one pixel of N_in = C·H·W channels."""
    return _engine(graph.in_shape(layer).size, graph.out_shape(layer).c, 1, 1, folding, layer.act)


def latency(graph, layer, folding):
    """Cycles from the first input beat's transfer to the first output beat's, unstalled.

    - conv: window + FIFO + engine, where window = ((kh-1-top)·W_pad + kw-1-left)·C_in/ci + 1
      (0 and no FIFO for a 1×1, stride 1, unpadded conv), FIFO = 2 when `Conv` queues windows
      (see `_queue_depth`) else 0, engine = beats + block_steps - 1 + depth with
      beats = C_in/ci, block_steps = (C_in/g/ci)·(kh·kw/f),
      depth = 7 + ceil(log4(ci·f)) + (2 with a fused LeakyReLU);
    - fc: the engine's, 2·N_in/ci - 1 + depth (f = 1);
    - maxpool: window + 1; avgpool: window + 3 (window as for conv, with C/lanes);
    - global_avgpool: (H·W - 1)·C/lanes + 3;
    - relu, clamp: 1; leaky_relu: 2; sigmoid, tanh: 4;
    - add, concat: 1.

    Raises
    ------
    ValueError
        For an invalid folding (`check`) or an unknown op.
    """
    check(graph, layer, folding)
    op, lanes = layer.op, folding.coarse_in
    if op == "conv":
        engine, _, window_latency, fifo_latency, _ = _conv_parts(graph, layer, folding)
        return window_latency + fifo_latency + engine.latency
    if op == "fc":
        return _fc_engine(graph, layer, folding).latency
    if op in _POOL:
        return _window(graph, layer, lanes)[1] + (1 if op == "maxpool" else 3)
    if op == "global_avgpool":
        c, h, w = graph.in_shape(layer)
        return (h * w - 1) * (c // lanes) + 3
    if op in ACTIVATION_LATENCY:
        return ACTIVATION_LATENCY[op]
    if op == "lstm":
        return _lstm(graph, layer, folding)[2]
    return 1                                        # add, concat


# -- the network ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edge:
    """A tensor's connection to one reader, with what `accel.Accelerator` puts on it.

    Attributes
    ----------
    tensor : str
    reader : str or None
        The reading layer's name; None for the accelerator's output port.
    port : str
        The reader's input port ("i", or "i0", "i1", … for layers with several inputs).
    lanes_from, lanes_to : int
        The producer's lanes and the reader's; a `LaneConverter` sits between when they differ.
    fifo_depth : int
        Beats of the `StreamFIFO` on the edge (0 for none), of `fifo_lanes` channels: the FIFO
        sits on the wide side of the converter, so that a narrowing converter (one beat out per
        cycle) never throttles a producer that delivers in bursts. On every branch of a forked
        tensor and every input of a join: one frame of the tensor, +4. One frame bounds how far
        one branch can run ahead of another, since every block finishes a frame's output before
        it needs the next frame's input, so the branches cannot deadlock. Into a windowed layer:
        the rows it cannot take yet (`_tail_depth`). Out of a layer as slow as the network
        (`_NO_SLACK`): at least one row of the tensor. On a narrowing edge: at least
        `_NARROWING_DEPTH`.
    """
    tensor: str
    reader: str
    port: str
    lanes_from: int
    lanes_to: int
    fifo_depth: int

    @property
    def fifo_lanes(self):
        """Channels per beat of the edge's FIFO: the wider side's."""
        return max(self.lanes_from, self.lanes_to)


def edges(graph, plan):
    """Every tensor → reader connection of `graph` under `plan` (see `Edge`), in graph order."""
    fold = {layer.name: plan.get(layer.name, Folding()) for layer in graph.layers}
    lanes = {graph.input: in_lanes(graph.consumers(graph.input)[0],
                                   fold[graph.consumers(graph.input)[0].name])}
    for layer in graph.layers:
        lanes[layer.output] = out_lanes(layer, fold[layer.name])
    rate = max(cycles_per_frame(graph, layer, fold[layer.name]) for layer in graph.layers)
    out = []
    for tensor in [graph.input, *(layer.output for layer in graph.layers)]:
        readers = graph.consumers(tensor) + ([None] if tensor == graph.output else [])
        for reader in readers:
            if reader is None:
                out.append(Edge(tensor, None, "o", lanes[tensor], lanes[tensor], 0))
                continue
            join = len(readers) > 1 or len(reader.inputs) > 1
            port = f"i{reader.inputs.index(tensor)}" if len(reader.inputs) > 1 else "i"
            lanes_to = in_lanes(reader, fold[reader.name])
            if join:
                depth = graph.shapes[tensor].size // lanes_to + 4
            elif tensor == graph.input:     # the host waits without losing anything
                depth = 0
            else:
                depth = _tail_depth(graph, reader, fold[reader.name], lanes_to, rate)
                producer = graph.producer(tensor)
                if cycles_per_frame(graph, producer, fold[producer.name]) >= (1 - _NO_SLACK) * rate:
                    row = graph.shapes[tensor].w * graph.shapes[tensor].c // lanes_to
                    depth = max(depth, row + 4)
            wide = max(lanes[tensor], lanes_to)
            depth = -(-depth * lanes_to // wide)            # in beats of the wider side
            if lanes[tensor] > lanes_to:
                depth = max(depth, _NARROWING_DEPTH)
            out.append(Edge(tensor, reader.name, port, lanes[tensor], lanes_to, depth))
    return out


#: Wide beats queued before every narrowing lane converter: a pooled row arrives in a burst.
_NARROWING_DEPTH = 16

#: A layer within this fraction of the network's rate has no time to spare: its output gets a
#: row of queue (`edges`), so that a moment's stall downstream costs it no cycles.
_NO_SLACK = 0.02


def _tail_depth(graph, layer, folding, lanes, rate):
    """Beats to queue before a windowed layer so that its producer never waits on it.

    Its producer, at the network's `rate` (cycles per frame), delivers rows evenly; rows
    delivered before the layer can take them must wait in a queue, or the producer stalls — and
    a producer as slow as the network cannot make that time up.

    - A layer bound by its window (pooling; a conv whose engine keeps up) takes input as fast
      as it walks the padded frame, except while it walks the bottom and top padding rows: what
      arrives meanwhile waits. (Its own spare time per frame does not help: the blocks between
      it and the network's slowest layer hold almost nothing, so that layer would stall.)
    - A layer bound by its engine takes rows at the engine's pace (`_waiting_rows`).

    0 for layers without a window.
    """
    if layer.op not in ("conv", *_POOL):
        return 0
    a = layer.attrs
    shape, out = graph.in_shape(layer), graph.out_shape(layer)
    kh, sh = a["kernel"][0], a["stride"][0]
    top, left, bottom, right = a["pads"]
    cycles = cycles_per_frame(graph, layer, folding)
    if layer.op == "conv":
        engine, window_cycles, _, _, pixels = _conv_parts(graph, layer, folding)
        if window_cycles is None:
            return 0
        engine_bound = pixels * engine.cycles_per_pixel > window_cycles
    else:
        engine_bound = False
    if engine_bound:
        rows = _waiting_rows(shape.h, out.h, kh, sh, top, cycles, rate)
    else:
        padding_walk = (top + bottom) * (shape.w + left + right) * (shape.c // lanes)
        rows = math.ceil(padding_walk * shape.h / rate)
    return math.ceil(rows * shape.w * shape.c / lanes) + 4 if rows else 0


@functools.lru_cache(maxsize=65536)
def _waiting_rows(h, h_out, kh, sh, top, cycles, rate, frames=3):
    """Most input rows delivered but not yet taken at any time (see `_tail_depth`).

    Row r of frame k arrives at P = k·rate + (r+1)·rate/h. Output row i needs rows up to
    need(i) = min(h-1, i·sh + kh-1-top) and takes Q = cycles/h_out cycles, ending at
    E_i = max(P(need(i)), E_{i-1}) + Q (row after row, across frames). The window runs only a
    few windows ahead of the engine: it takes row need(i) while output row i is computed (from
    E_i - Q), and a row no window ends in once the windows before it are out (from E_j, j the
    last output row before it, in this frame or the previous one); or on arrival if later.
    Frame 0 is left out (a start-up transient).
    """
    per_row = cycles / h_out
    r, i = np.arange(h), np.arange(h_out)
    arrive = (r + 1) * rate / h
    need = np.minimum(h - 1, i * sh + kh - 1 - top)
    ready = np.concatenate([arrive[need] + k * rate for k in range(frames)]) + per_row
    ends = _after(ready, per_row)
    emits = i * sh + kh - 1 - top                       # input row each output row ends in
    before = np.searchsorted(emits, r, side="left") - 1 # last output row ending above row r
    ends_in = np.searchsorted(emits, r, side="left")    # output row ending in row r, if any
    ends_here = (ends_in < h_out) & (emits[np.minimum(ends_in, h_out - 1)] == r)
    times, got = [], []
    for k in range(1, frames):
        row_end = ends[k * h_out + before]              # before = -1: the previous frame's last
        taken = np.where(ends_here, ends[k * h_out + np.minimum(ends_in, h_out - 1)] - per_row,
                         row_end)
        times.append(arrive + k * rate)
        got.append(np.where(taken > times[-1] + 0.5, taken, times[-1]))
    times, got = np.concatenate(times), np.sort(np.concatenate(got))
    waiting = np.searchsorted(times, times, side="right") - np.searchsorted(got, times, side="right")
    return int(np.max(waiting))


def converter_latency(lanes_in, lanes_out):
    """`LaneConverter.latency`: lcm/lanes_in when widening, +1 when narrowing, 0 when equal."""
    wide = math.lcm(lanes_in, lanes_out)
    return (wide // lanes_in if wide > lanes_in else 0) + (wide > lanes_out)


def fifo_latency(depth):
    """`StreamFIFO.latency` of a buffered FIFO `depth` beats deep (0 for no FIFO)."""
    return 0 if depth == 0 else (2 if depth > 1 else 1)


@dataclass(frozen=True)
class LayerPerf:
    """One layer's folding, cycles per frame and latency."""
    folding: Folding
    cycles_per_frame: int
    latency: int


@dataclass(frozen=True)
class NetworkPerf:
    """The network's rate and batch-1 latency (`network`).

    Attributes
    ----------
    cycles_per_frame : int
        The slowest layer's cycles per frame: the initiation interval of frames back to back.
    bottleneck : str
        That layer's name (the first in graph order on a tie).
    latency : int
        Batch 1: cycles from the first input beat's transfer to the last output beat's, with
        the pipeline empty, the input offered every cycle and the output always ready.
    first_output : int
        Cycles from the first input beat to the first output beat, likewise.
    layers : dict
        Layer name → `LayerPerf`.
    edges : list of Edge
    """
    cycles_per_frame: int
    bottleneck: str
    latency: int
    first_output: int
    layers: dict = field(default_factory=dict)
    edges: list = field(default_factory=list)


def network(graph, plan):
    """The rate and batch-1 latency of `graph` with the foldings of `plan` (layer name →
    `Folding`; a layer missing from it takes ``Folding()``).

    cycles_per_frame = max over layers of `cycles_per_frame` (a pipeline runs at its slowest
    stage; lane converters, forks and FIFOs are never slower than the layers beside them).
    The latency follows one frame through the pipeline pixel by pixel (`_timing`): each layer
    starts a pixel when the input it needs has arrived *and* it has finished the previous one,
    so a layer behind a slow producer waits for that producer's rows, not just its own latency.

    Raises
    ------
    ValueError
        For an invalid folding or an unknown op.
    """
    perf = {}
    for layer in graph.layers:
        folding = plan.get(layer.name, Folding())
        perf[layer.name] = LayerPerf(folding, cycles_per_frame(graph, layer, folding),
                                     latency(graph, layer, folding))
    bottleneck = max(graph.layers, key=lambda l: perf[l.name].cycles_per_frame).name
    links = edges(graph, plan)
    first, last = _timing(graph, perf, links)
    return NetworkPerf(perf[bottleneck].cycles_per_frame, bottleneck, int(last), int(first),
                       perf, links)


# -- batch-1 timing, pixel by pixel ---------------------------------------------------------------
#
# A tensor's timing is two arrays over its pixels (row-major): the cycle of each pixel's first
# beat and of its last beat, counted from the first input beat (cycle 0). Each layer maps its
# inputs' timings to its output's. The recurrences "x[p] = max(a[p], x[p-1] + c)" (a pixel
# starts when its input is there and the stage is free) are evaluated with a running maximum:
# x = maximum.accumulate(a - p·c) + p·c. With input at full rate each layer's first output
# comes exactly `latency` cycles after its first input, as the blocks measure.


def _after(ready, step):
    """x[p] = max(ready[p], x[p-1] + step), x[0] = ready[0]."""
    ramp = np.arange(len(ready)) * step
    return np.maximum.accumulate(ready - ramp) + ramp


def _timing(graph, perf, links):
    """(first output beat, last output beat) of one frame, from the first input beat."""
    c = graph.shapes[graph.input]
    beats = c.c // links[0].lanes_from
    start = np.arange(c.h * c.w) * beats
    times = {graph.input: (start, start + beats - 1)}
    arrive = {}                                             # (tensor, reader) → timing
    by_name = {layer.name: layer for layer in graph.layers}
    for edge in links:
        first, last = times[edge.tensor] if edge.tensor in times else (None, None)
        if first is None:
            continue
        delay = converter_latency(edge.lanes_from, edge.lanes_to) + fifo_latency(edge.fifo_depth)
        if edge.reader is None:
            return first[0] + delay, last[-1] + delay
        arrive[edge.tensor, edge.reader] = (first + delay, last + delay)
        reader = by_name[edge.reader]
        if all((t, reader.name) in arrive for t in reader.inputs):
            ins = [arrive[t, reader.name] for t in reader.inputs]
            times[reader.output] = _layer_timing(graph, reader, perf[reader.name].folding, ins)
    raise ValueError(f"model: the output '{graph.output}' is not reached from the input")


def _layer_timing(graph, layer, folding, ins):
    """The output timing of `layer` given its inputs' (first, last) beat cycles per pixel."""
    op = layer.op
    (first, last), out = ins[0], graph.out_shape(layer)
    if op in ACTIVATION_LATENCY:
        return first + ACTIVATION_LATENCY[op], last + ACTIVATION_LATENCY[op]
    if op == "add":
        return np.maximum(first, ins[1][0]) + 1, np.maximum(last, ins[1][1]) + 1
    if op == "concat":
        return first + 1, np.max([t[1] for t in ins], axis=0) + 1
    if op == "global_avgpool":
        return first[-1:] + 3, last[-1:] + 3
    if op == "fc":
        engine = _fc_engine(graph, layer, folding)
        start = last[-1:] + engine.block_steps + engine.depth
        return start, start + (out.c // folding.coarse_out - 1) * engine.block_steps
    if op == "conv":
        engine, window_cycles, _, queue, _ = _conv_parts(graph, layer, folding)
        if window_cycles is None:
            need_first, need_last = first, last
        else:
            need_first, need_last = _window_timing(graph, layer, folding.coarse_in, first, last)
            need_first, need_last = need_first + queue, need_last + queue
        start = _after(need_last + engine.block_steps + engine.depth, engine.cycles_per_pixel)
        return start, start + (out.c // folding.coarse_out - 1) * engine.block_steps
    if op in _POOL:
        need_first, need_last = _window_timing(graph, layer, folding.coarse_in, first, last)
        stage = 1 if op == "maxpool" else 3
        return need_first + stage, need_last + stage
    if op == "lstm":
        return _lstm_timing(graph, layer, folding, last)
    raise ValueError(f"model: unknown op {op!r} of layer '{layer.name}'")


def _lstm_timing(graph, layer, folding, last):
    """A step starts once its input vector is in and the previous step (and its stall) is done;
    its units leave LSTM_PIPELINE cycles after each group's last beat, one per cycle."""
    shape, hidden = graph.in_shape(layer), layer.attrs["hidden"]
    ci, co = folding.coarse_in, folding.coarse_out
    beats = (shape.c + hidden) // ci
    per_step, _, _ = _lstm(graph, layer, folding)
    start = _after(last + 1, per_step)
    first_out = start + beats - 1 + LSTM_PIPELINE
    last_out = start + (hidden // co) * beats - 1 + LSTM_PIPELINE + co - 1
    if layer.attrs["last"]:
        return first_out[-1:], last_out[-1:]
    return first_out, last_out


def _window_timing(graph, layer, lanes, first, last):
    """(first, last) beat cycles at which `SlidingWindow` emits each output pixel's window.

    The window walks the padded grid one position per C/lanes beats; a real position also waits
    for its input pixel's beats, a padding position only for the walk. A position's first beat
    follows the previous position's last, and its window beat leaves one cycle after its input
    beat. The padding before the first input pixel is walked ahead of it (negative cycles).
    Output pixel (i, j) is emitted at position (i·sh + kh-1, j·sw + kw-1).
    """
    a = layer.attrs
    (kh, kw), (sh, sw) = a["kernel"], a["stride"]
    top, left, bottom, right = a["pads"]
    c, h, w = graph.in_shape(layer)
    beats, rows, cols = c // lanes, h + top + bottom, w + left + right
    real = np.full((rows, cols), -1, dtype=np.int64)
    real[top:top + h, left:left + w] = np.arange(h * w).reshape(h, w)
    real = real.ravel()
    never = np.iinfo(np.int64).min // 4
    arrive_first = np.where(real >= 0, first[real], never)
    arrive_last = np.where(real >= 0, last[real], never)
    # W_first[q] = max(W_first[q-1] + beats, first[q], last[q-1] + 1)
    ready = np.maximum(arrive_first, np.concatenate(([never], arrive_last[:-1] + 1)))
    ready[0] = max(ready[0], first[0] - (top * cols + left) * beats)   # leading padding: no wait
    walk_first = _after(ready, beats)
    walk_last = np.maximum(walk_first + beats - 1, arrive_last)
    out = graph.out_shape(layer)
    emit = ((np.arange(out.h)[:, None] * sh + kh - 1) * cols
            + np.arange(out.w)[None, :] * sw + kw - 1).ravel()
    return walk_first[emit] + 1, walk_last[emit] + 1
