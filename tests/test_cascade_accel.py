# amaranth: UnusedElaboratable=no
"""CascadeAccelerator: a tiny classifier at 4 and 8 bits as a cascade, every output frame
(scores and stage tag) bit-exact against `golden.run_cascade` under random stalls, in cocotb +
Verilator."""

import numpy as np
import pytest

from dnnhw import golden, quant
from dnnhw.cascade_accel import CascadeAccelerator
from dnnhw.frontend import load
from dnnhw.model import Folding
from dnnhw.sim import run_stream_bench, to_beats
from support.onnx_models import tiny_network


def stages(tmp_path):
    """The tiny network quantized twice on one input format: 4-bit layers, and 8 bits."""
    _, frames = tiny_network(tmp_path)
    graph = load(tmp_path / "tiny.onnx")
    low = quant.quantize(graph, frames, bits=8, layer_bits={l.name: 4 for l in graph.layers})
    return low, quant.quantize(graph, frames, bits=8), graph


def inputs(graph, low, count, seed):
    frames = np.random.default_rng(seed).standard_normal((count, *graph.input_frame_shape))
    return [golden.quantize(golden.input_to_chw(graph, f), low.formats[low.input])
            for f in frames]


def test_golden_cascade_takes_the_second_stage_below_the_threshold(tmp_path):
    low, high, graph = stages(tmp_path)
    for x in inputs(graph, low, 8, 1):
        scores = golden.run_fixed(low, x)[low.output].ravel()
        margin = golden.margins(scores[None])[0]
        for threshold in (0, margin, margin + 1, 1 << 4):
            y = golden.run_cascade(low, high, threshold, x)
            second = margin < threshold
            assert y[-1] == 1 + second
            want = golden.run_fixed(high if second else low, x)[low.output].ravel()
            np.testing.assert_array_equal(y[:-1], want)


def test_margins_ties_are_zero():
    np.testing.assert_array_equal(golden.margins(np.array([[3, 7, 7, 1], [0, -5, 2, 9]])),
                                  [0, 7])


@pytest.mark.parametrize("stall, recompute", [
    (0.3, "half"), pytest.param(0.0, "half", marks=pytest.mark.slow), (0.0, "all")])
def test_cascade_bit_exact(tmp_path, stall, recompute):
    """Both stages' outputs in order and tagged, the first frame's latency as predicted (for
    a frame the first stage decides with half recomputed, through both with all)."""
    low, high, graph = stages(tmp_path)
    xs = inputs(graph, low, 24, 2)
    margins = golden.margins([golden.run_fixed(low, x)[low.output].ravel() for x in xs])
    threshold = int(np.median(margins)) if recompute == "half" else 1 << 4
    plans = ({low.layers[0].name: Folding(2, 2, 3), low.layers[1].name: Folding(4, 2)},
             {high.layers[0].name: Folding(1, 1, 1), high.layers[1].name: Folding(1, 1)})
    cascade = CascadeAccelerator(low, plans[0], high, plans[1], threshold)
    want = np.stack([golden.run_cascade(low, high, threshold, x) for x in xs])
    assert 0 < np.mean(want[:, -1] == 2) < 1 if recompute == "half" else (want[:, -1] == 2).all()
    beats = np.concatenate([to_beats(x, cascade.input_lanes) for x in xs])
    per_frame = cascade.classes + 1
    result = run_stream_bench(cascade, {"i": beats}, {"o": per_frame * len(xs)},
                              name="cascade_tiny", stall_in=stall, stall_out=stall, seed=4,
                              timeout=500_000)
    assert result.extra == {"o": 0}
    np.testing.assert_array_equal(result.outputs["o"].reshape(len(xs), per_frame), want)
    if not stall:                       # the first frame's latency, as predicted
        latency = result.out_cycles["o"][per_frame - 1] - result.in_cycles["i"][0]
        assert latency == (cascade.latency if want[0, -1] == 1 else cascade.latency_recomputed)
