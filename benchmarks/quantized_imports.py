"""The four MLPerf Tiny reference architectures (tests/support/mlperf_tiny.py) quantized by
onnxruntime's `quantize_static` (QDQ, int8 activations with zero points, int8 per-channel
weights, float scales), as a user who quantized with onnxruntime would bring them: `dnnhw build
--verify`, and the golden model against onnxruntime's own execution of the QDQ graph.

For each (network, board): the build's design, fps, latency, resources and verification
(`built.build_and_verify`); the agreement with onnxruntime in LSBs of each tensor's format, end
to end (the network's output) and per layer (each layer fed onnxruntime's own input, so that
differences do not compound). Writes benchmarks/results/quantized_imports.json.

Usage: python benchmarks/quantized_imports.py [CASE ...] [--frames 4] [--synth]
Exit status 1 when a case fails to build or is not bit-exact, or its cycles per frame miss the
model by more than 5 %.
"""

import sys

import numpy as np
import onnx

import built

sys.path.insert(0, str(built.ROOT / "tests"))

from support import mlperf_tiny  # noqa: E402

RESULTS = built.ROOT / "benchmarks" / "results" / "quantized_imports.json"

#: case name → (network, board): the boards on which dnnhw's own 8-bit quantization of each
#: builds as one accelerator (benchmarks/results/mlperf_tiny.json).
CASES = {f"{net}_{board}": (net, board)
         for net, board in (("ic", "arty"), ("kws", "arty"), ("ad", "arty-a7-100"),
                            ("vww", "arty-a7-100"))}

#: Frames compared with onnxruntime.
AGREEMENT_FRAMES = 8


def quantize_static(net, folder):
    """(the QDQ model onnxruntime's quantize_static writes for `net`, its calibration .npy)."""
    from onnxruntime import quantization

    model = mlperf_tiny.onnx_model(net, dynamo=False)
    float_path, path = folder / f"{net}.onnx", folder / f"{net}_qdq.onnx"
    onnx.save(model, float_path)
    frames = mlperf_tiny.frames(net).astype(np.float32)
    calibration = folder / f"{net}_calib.npy"
    np.save(calibration, frames)

    class Frames(quantization.CalibrationDataReader):
        def __init__(self):
            self.feeds = iter([{model.graph.input[0].name: f[None]} for f in frames])

        def get_next(self):
            return next(self.feeds, None)

    quantization.quantize_static(float_path, path, Frames(), per_channel=True,
                                 quant_format=quantization.QuantFormat.QDQ)
    return path, calibration


def _lsb(theirs, ours, fmt):
    """|difference| in LSBs of `fmt` between onnxruntime's floats and golden's integers."""
    from dnnhw import golden
    return np.abs(golden.saturate(np.rint(np.asarray(theirs) / fmt.scale), fmt) - ours)


def agreement(path, frames):
    """Golden against onnxruntime's execution of the QDQ model at `path` (graph optimizations
    off: the QDQ graph as written), end to end and per layer."""
    import onnxruntime

    from dnnhw import frontend, golden, quant

    graph = frontend.load(path)
    q = quant.quantize(graph, frames[:4])
    model = onnx.load(path)
    produced = {out for node in model.graph.node for out in node.output}
    tensors = sorted(({t for layer in q.layers for t in (*layer.inputs, layer.output)}
                      | {graph.reference_output}) & produced - {o.name for o in model.graph.output})
    model.graph.output.extend(onnx.ValueInfoProto(name=t) for t in tensors)
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    feed = model.graph.input[0].name
    runs = [{feed: f[None], **dict(zip(names, session.run(None, {feed: f[None]})))}
            for f in frames]
    end = []
    for r, f in zip(runs, frames):
        ours = golden.run_fixed(q, golden.quantize(golden.input_to_chw(q, f),
                                                   q.formats[q.input]))[q.output]
        end.append(_lsb(r[graph.reference_output].reshape(-1), ours.reshape(-1),
                        q.formats[q.output]))
    end = np.concatenate(end)
    layers = {}
    for layer in q.layers:
        if not all(t in runs[0] for t in (*layer.inputs, layer.output)):
            continue                # a tensor onnxruntime's graph does not hold (fused away)
        differ = np.concatenate([_lsb(r[layer.output].reshape(-1), golden.run_layer(q, layer, [
            golden.quantize(r[t].reshape(tuple(q.shapes[t])), q.formats[t])
            for t in layer.inputs]).reshape(-1), q.formats[layer.output]) for r in runs])
        layers[layer.name] = (int(differ.max()), float(np.mean(differ == 0)))
    worst = max(layers, key=lambda name: layers[name])
    return {"frames": len(frames),
            "end_to_end": {"max_lsb": int(end.max()), "equal": round(float(np.mean(end == 0)), 4)},
            "per_layer": {"layers": len(layers), "max_lsb": layers[worst][0],
                          "equal_min": round(min(e for _, e in layers.values()), 4),
                          "worst_layer": worst}}


def run(case, frames, synth, folder):
    """Quantize, build, verify and compare one case in `folder`; its result entry."""
    net, board = CASES[case]
    path, calibration = quantize_static(net, folder)
    entry = built.build_and_verify(path, calibration, board, folder / case, frames, synth)
    entry["onnxruntime_agreement"] = agreement(
        path, mlperf_tiny.frames(net, count=AGREEMENT_FRAMES, seed=1).astype(np.float32))
    return {"network": net, "quantizer": "onnxruntime quantize_static, QDQ, per-channel", **entry}


def main(argv=None):
    return built.main(__doc__.splitlines()[0], CASES, run, RESULTS, argv)


if __name__ == "__main__":
    sys.exit(main())
