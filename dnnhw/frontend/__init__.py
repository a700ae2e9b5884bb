"""ONNX → Graph: load, check, infer shapes, fold constants, map and canonicalize layers."""

import numpy as np

from ..errors import UserError
from ..ir import Graph
from .canonical import canonicalize
from .load import load_model
from .mapping import map_nodes


__all__ = ["load", "onnxruntime_outputs"]


def load(path):
    """Read the ONNX file at `path` into a float `Graph`; raises `UserError` on bad input."""
    model = load_model(path)
    layers, shapes, alias = map_nodes(model, path)
    output = alias[model.output]
    layers = canonicalize(layers, shapes, output)
    if not layers:
        raise UserError(f"{path}: the network computes nothing (its output is its input)")
    used = {model.input, *(layer.output for layer in layers)}
    hints = {alias[t]: fmt for t, fmt in model.format_hints.items() if alias.get(t) in used}
    return Graph(name=model.name, input=model.input, output=output,
                 shapes={t: s for t, s in shapes.items() if t in used}, layers=layers,
                 onnx_input_shape=model.shapes[model.input],
                 onnx_output_shape=model.shapes[model.output], format_hints=hints)


def onnxruntime_outputs(path, graph, frames):
    """The ONNX model's float outputs for a batch of `frames`, from onnxruntime, (N, ...)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    outputs = [session.run(None, {name: np.asarray(f, np.float32).reshape(graph.onnx_input_shape)})[0]
               for f in frames]
    return np.concatenate(outputs).astype(np.float64)
