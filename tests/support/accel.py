"""Whole networks composed by `Accelerator` in cocotb + Verilator, checked against golden."""

import numpy as np

from dnnhw import golden
from dnnhw.accel import Accelerator
from dnnhw.sim import from_beats, run_stream_bench, to_beats


def run_accelerator(graph, plan, frames, name, stall):
    """`frames` (float, the graph's input layout) back to back through the accelerator of
    `graph` and `plan` (built as `name`), random stalls `stall` on both sides; every output frame
    bit-exact against golden, no extra beat. Returns (accelerator, `BenchResult`, output beats
    per frame)."""
    accel = Accelerator(graph, plan)
    xs = [golden.quantize(golden.input_to_chw(graph, f), graph.formats[graph.input]) for f in frames]
    want = [golden.run_fixed(graph, x)[graph.output] for x in xs]
    out_shape = graph.shapes[graph.output]
    per_frame = out_shape.size // accel.output_lanes
    beats = np.concatenate([to_beats(x, accel.input_lanes) for x in xs])
    result = run_stream_bench(accel, {"i": beats}, {"o": per_frame * len(xs)}, name=name,
                              stall_in=stall, stall_out=stall, seed=3, timeout=2_000_000)
    assert result.extra == {"o": 0}
    got = result.outputs["o"].reshape(len(xs), per_frame, accel.output_lanes)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(from_beats(g, tuple(out_shape)), w)
    return accel, result, per_frame
