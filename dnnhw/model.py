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

from dataclasses import dataclass, field


__all__ = ["Folding", "LayerPerf", "NetworkPerf", "foldings", "check", "in_lanes", "out_lanes",
           "cycles_per_frame", "latency", "network", "ACTIVATION_LATENCY", "TREE_RADIX"]


#: Terms an adder tree of the conv engine adds between two registers (two adder levels).
TREE_RADIX = 4

#: Latency of the elementwise `Activation` block per kind.
ACTIVATION_LATENCY = {"relu": 1, "clamp": 1, "leaky_relu": 2, "sigmoid": 4, "tanh": 4}

_WEIGHTED = ("conv", "fc")
_POOL = ("maxpool", "avgpool")
_LANES = (*_POOL, "global_avgpool", *ACTIVATION_LATENCY, "add", "concat")


@dataclass(frozen=True)
class Folding:
    """A layer's parallelism: input lanes, output lanes, kernel positions per cycle.

    Layers without weights use `coarse_in` = `coarse_out` (their lanes) and `fine` = 1.
    """
    coarse_in: int = 1
    coarse_out: int = 1
    fine: int = 1


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
    raise ValueError(f"model: unknown op {op!r} of layer '{layer.name}'")


def check(graph, layer, folding):
    """Raise ValueError unless `folding` is one of `foldings(graph, layer)`."""
    op, (ci, co, f) = layer.op, (folding.coarse_in, folding.coarse_out, folding.fine)
    if min(ci, co, f) < 1:
        raise ValueError(f"'{layer.name}': folding factors must be positive, got {folding}")
    if op == "conv":
        totals = _conv_dims(graph, layer)
    elif op == "fc":
        totals = (graph.in_shape(layer).c, graph.out_shape(layer).c, 1)
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
    """Channels per output beat: `coarse_out` (the lanes for layers without weights)."""
    return folding.coarse_out


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
    depth = 6 + ceil(log4(ci·f)) (+2 with LeakyReLU),
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
    depth = 6 + _tree_stages(ci * f) + (2 if act == "leaky_relu" else 0)
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
      depth = 6 + ceil(log4(ci·f)) + (2 with a fused LeakyReLU);
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
    return 1                                        # add, concat


# -- the network ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerPerf:
    """One layer's folding, cycles per frame and latency."""
    folding: Folding
    cycles_per_frame: int
    latency: int


@dataclass(frozen=True)
class NetworkPerf:
    """The network's rate and latency (`network`).

    Attributes
    ----------
    cycles_per_frame : int
        The slowest layer's cycles per frame.
    bottleneck : str
        That layer's name (the first in graph order on a tie).
    latency : int
        The largest sum of layer latencies along a path from the graph's input to its output.
    path : tuple of str
        The layers of that path, input to output.
    layers : dict
        Layer name → `LayerPerf`.
    """
    cycles_per_frame: int
    bottleneck: str
    latency: int
    path: tuple
    layers: dict = field(default_factory=dict)


def network(graph, plan):
    """The rate and latency of `graph` with the foldings of `plan` (layer name → `Folding`;
    a layer missing from it takes ``Folding()``).

    cycles_per_frame = max over layers of `cycles_per_frame` (a pipeline runs at its slowest
    stage). latency = max over input→output paths of Σ `latency` of the path's layers (a longest
    path in the DAG, in graph order). Not modelled yet: lane converters and FIFOs between layers
    whose lanes differ (they add a few cycles each, `lanes.LaneConverter.latency`), FIFO effects
    on branches (a branch's stall), and that a concat's first output beat waits only for its
    first input — the path through any input counts.

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
    bottleneck = max(graph.layers, key=lambda l: perf[l.name].cycles_per_frame).name if graph.layers else ""
    arrival = {graph.input: (0, ())}                # tensor → (latency to it, path of layers)
    for layer in graph.layers:
        reached = [arrival[t] for t in layer.inputs if t in arrival]
        if not reached:
            continue                                # not fed from the graph's input
        before, path = max(reached, key=lambda r: r[0])
        arrival[layer.output] = (before + perf[layer.name].latency, path + (layer.name,))
    total, path = arrival.get(graph.output, (0, ()))
    return NetworkPerf(perf[bottleneck].cycles_per_frame if bottleneck else 0, bottleneck, total,
                       path, perf)
