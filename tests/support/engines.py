"""What the conv engine and fully connected tests share: activation attributes, the variant table
of their generated matrices, input frames, and the checks in amaranth.sim and cocotb + Verilator."""

import numpy as np

from dnnhw import golden
from dnnhw.sim import run_stream_bench
from dnnhw.sim.amaranth_sim import run_stream_sim


ACTS = {None: {}, "relu": {"act": "relu"}, "clamp": {"act": "clamp", "lo": -0.75, "hi": 1.5},
        "leaky": {"act": "leaky_relu", "alpha": 0.1},
        "leaky_steep": {"act": "leaky_relu", "alpha": 1.5},
        "leaky_negative": {"act": "leaky_relu", "alpha": -0.3}}

# (bits, activation, negative shift) cycled through the generated matrices
VARIANTS = [(8, "relu", False), (16, "leaky", False), (8, "clamp", True), (4, None, False),
            (16, None, True), (8, "leaky", False), (4, "relu", True)]


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def input_frames(graph, count, seed=0):
    """Quantized normal data, then frames uniform over the input format's whole range."""
    rng = np.random.default_rng(seed + 1000)
    fmt, shape = graph.formats[graph.input], tuple(graph.shapes[graph.input])
    frames = [golden.quantize(rng.standard_normal(shape), fmt)]
    frames += [rng.integers(fmt.min, fmt.max + 1, shape) for _ in range(count - 1)]
    return frames


def simulate(dut, inputs, count, seed=0):
    """`count` output beats of `dut` fed `inputs`, in amaranth.sim with random stalls on both
    sides; no beat beyond them."""
    result = run_stream_sim(dut, {"i": inputs}, {"o": count}, stall_in=0.3, stall_out=0.3, seed=seed,
                            timeout=100_000)
    assert result.extra == {"o": 0}
    return result.outputs["o"]


def check_bench(dut, inputs, want, frames, cycles_per_frame, latency, name, seed=0):
    """Bit-exact with random stalls on both sides; with none, cycles per frame (the interval
    between frame ends over `frames` frames back to back) and latency (first input transfer to
    first output transfer) exactly as stated. Returns the unstalled run."""
    timeout = 4 * (frames * cycles_per_frame + latency) + 500
    free = run_stream_bench(dut, {"i": inputs}, {"o": len(want)}, name=name, timeout=timeout)
    assert free.extra == {"o": 0}
    np.testing.assert_array_equal(free.outputs["o"], want)
    per_frame = len(want) // frames
    ends = np.array(free.out_cycles["o"])[per_frame - 1::per_frame]
    assert list(np.diff(ends)) == [cycles_per_frame] * (frames - 1)
    assert free.out_cycles["o"][0] - free.in_cycles["i"][0] == latency
    stalled = run_stream_bench(dut, {"i": inputs}, {"o": len(want)}, name=name, timeout=timeout,
                               stall_in=0.3, stall_out=0.3, seed=seed)
    assert stalled.extra == {"o": 0}
    np.testing.assert_array_equal(stalled.outputs["o"], want)
    return free
