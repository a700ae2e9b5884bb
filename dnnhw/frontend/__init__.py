"""ONNX → Graph: load, check, infer shapes, fold constants, map and canonicalize layers."""

import numpy as np

from ..errors import UserError
from ..ir import Graph, frame_shape
from .canonical import canonicalize
from .load import load_model
from .mapping import map_nodes


__all__ = ["load", "onnxruntime_outputs"]


def load(path):
    """Read the ONNX file at `path` into a float `Graph`; raises `UserError` on bad input."""
    model = load_model(path)
    mapped = map_nodes(model, path)
    if model.output in mapped.refused:
        raise UserError(f"{path}: output '{model.output}': {mapped.refused[model.output]}")
    if model.output not in mapped.alias:
        raise UserError(f"{path}: output '{model.output}' stacks tensors on a new axis: "
                        "unsupported (the network must have one output tensor)")
    output = mapped.alias[model.output]
    layers = canonicalize(mapped.layers, mapped.shapes, output)
    if not layers:
        raise UserError(f"{path}: the network computes nothing (its output is its input)")
    used = {model.input, *(layer.output for layer in layers)}
    hints = {mapped.alias[t]: fmt for t, fmt in model.format_hints.items()
             if mapped.alias.get(t) in used}
    return Graph(name=model.name, input=model.input, output=output,
                 shapes={t: s for t, s in mapped.shapes.items() if t in used}, layers=layers,
                 onnx_input_shape=model.shapes[model.input],
                 onnx_output_shape=model.shapes[model.output],
                 reference_output=mapped.reference_output, format_hints=hints, notes=mapped.notes,
                 input_hwc=model.input in mapped.hwc, output_hwc=model.output in mapped.hwc)


def onnxruntime_outputs(path, graph, frames):
    """The ONNX model's float values of `graph.reference_output` (the tensor the graph's output
    equals) for a batch of `frames`, from onnxruntime (or ONNX's reference runtime for models
    onnxruntime cannot run), (N, ...)."""
    import onnx
    import onnxruntime

    model = onnx.load(str(path))
    # onnx's helpers stamp the newest IR version, which onnxruntime may not know yet; the
    # operators' opsets decide what the model means, and they need only an older IR.
    model.ir_version = min(model.ir_version,
                           onnx.helper.find_min_ir_version_for(list(model.opset_import)))
    if graph.reference_output not in [o.name for o in model.graph.output]:
        del model.graph.output[:]
        model.graph.output.append(onnx.ValueInfoProto(name=graph.reference_output))
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    feed = [np.asarray(f, np.float32).reshape(graph.onnx_input_shape) for f in frames]
    try:
        session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                               providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        outputs = [session.run([graph.reference_output], {name: x})[0] for x in feed]
    except Exception as error:
        # onnxruntime lacks some valid forms (an LSTM with layout = 1): ONNX's reference runtime
        try:
            from onnx.reference import ReferenceEvaluator
            session = ReferenceEvaluator(model)
            name = model.graph.input[0].name
            outputs = [session.run([graph.reference_output], {name: x})[0] for x in feed]
        except Exception:
            raise UserError(f"{path}: onnxruntime cannot run the model: "
                            f"{str(error).splitlines()[0]}") from None
    return np.stack([y.reshape(frame_shape(y.shape)) for y in outputs]).astype(np.float64)
