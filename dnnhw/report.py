"""Summaries of a graph and its quantization as plain JSON-able values, and as text tables."""

import numpy as np

from .ir import macs, params


__all__ = ["layer_summary", "graph_summary", "format_table"]


def _fmt(fmt):
    return None if fmt is None else {"bits": fmt.bits, "frac": fmt.frac}


def _attrs(layer):
    out = {}
    for key, value in layer.attrs.items():
        if key == "weight_format":
            continue
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def layer_summary(graph, layer):
    entry = {
        "name": layer.name,
        "op": layer.op,
        "inputs": list(layer.inputs),
        "output": layer.output,
        "in_shape": list(graph.shapes[layer.inputs[0]]),
        "out_shape": list(graph.shapes[layer.output]),
        "macs": macs(graph, layer),
        "params": params(layer),
        "attrs": _attrs(layer),
    }
    if graph.quantized:
        entry["in_format"] = _fmt(graph.formats[layer.inputs[0]])
        entry["format"] = _fmt(graph.formats[layer.output])
        if layer.wq is not None:
            frac = layer.wq.frac
            entry["weight_format"] = {"bits": layer.wq.bits,
                                      "frac": frac.tolist() if layer.wq.per_channel else int(frac[0]),
                                      "per_channel": layer.wq.per_channel}
            entry["acc_bits"] = layer.wq.acc_bits
    return entry


def graph_summary(graph):
    layers = [layer_summary(graph, layer) for layer in graph.layers]
    return {
        "network": graph.name,
        "input": {"name": graph.input, "shape": list(graph.onnx_input_shape),
                  "format": _fmt(graph.formats.get(graph.input))},
        "output": {"name": graph.output, "shape": list(graph.onnx_output_shape),
                   "format": _fmt(graph.formats.get(graph.output))},
        "macs_per_frame": sum(entry["macs"] for entry in layers),
        "params": sum(entry["params"] for entry in layers),
        "layers": layers,
    }


def _act_name(layer):
    act = layer.act
    if act == "clamp" and layer.attrs.get("lo") == 0 and layer.attrs.get("hi") == 6:
        return "relu6"
    return act


def _describe(layer):
    a = layer.attrs
    parts = []
    if "kernel" in a:
        parts.append(f"k{a['kernel'][0]}x{a['kernel'][1]} s{a['stride'][0]},{a['stride'][1]}")
        if any(a["pads"]):
            parts.append("p" + ",".join(map(str, a["pads"])))
    if a.get("groups", 1) > 1:
        parts.append(f"g{a['groups']}")
    if _act_name(layer):
        parts.append("+" + _act_name(layer))
    return " ".join(parts)


def format_table(graph):
    """The layers as an aligned text table: shapes, MACs, parameters, formats."""
    header = ["layer", "op", "", "in", "out", "MACs", "params"]
    if graph.quantized:
        header += ["out fmt", "weights", "acc"]
    rows = [header]
    for layer in graph.layers:
        row = [layer.name, layer.op, _describe(layer), str(graph.shapes[layer.inputs[0]]),
               str(graph.shapes[layer.output]), f"{macs(graph, layer):,}", f"{params(layer):,}"]
        if graph.quantized:
            row.append(str(graph.formats[layer.output]))
            wq = layer.wq
            if wq is None:
                row += ["", ""]
            else:
                fracs = np.unique(wq.frac)
                frac = (f"{fracs[0]}" if len(fracs) == 1 else f"{fracs.min()}..{fracs.max()}/ch")
                row += [f"Q{wq.bits}.{frac}", str(wq.acc_bits)]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    numeric = {5, 6}
    return "\n".join("  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows)
