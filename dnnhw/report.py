"""Summaries of a graph and its quantization as plain JSON-able values, and as text tables;
the build report (report.json, DESIGN.md "Command line and reports") rendered as a
self-contained report.html, as a few terminal lines, and the DSE's Pareto plot.

matplotlib is imported inside the plotting functions, so importing this module stays fast.
"""

import base64
import dataclasses
import html
import io
import numbers

import numpy as np

from . import defaults, ops
from .ir import params
from .partition import shared_channels
from .ops import macs


__all__ = ["layer_summary", "graph_summary", "format_table", "design_summary",
           "partitioned_summary", "write_html", "write_page", "pareto_plot", "format_report"]


def _fmt(fmt):
    if fmt is None:
        return None
    entry = {"bits": fmt.bits, "frac": fmt.frac}
    if fmt.mult != 1.0:
        entry["scale"] = fmt.scale
    if fmt.low is not None or fmt.high is not None:
        entry["range"] = [fmt.min, fmt.max]
    return entry


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
            if np.any(layer.wq.mult != 1.0):
                scale = np.ldexp(layer.wq.mult, -frac)
                entry["weight_format"]["scale"] = (scale.tolist() if layer.wq.per_channel
                                                   else float(scale[0]))
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
                scaled = "×m" if np.any(wq.mult != 1.0) else ""
                row += [f"Q{wq.bits}.{frac}{scaled}", str(wq.acc_bits)]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    numeric = {5, 6}
    return "\n".join("  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows)


# -- the design: what the DSE's choice decides ----------------------------------------------------

#: A folding's fields that set a layer's lanes (the rest say how its multipliers and weights
#: are built).
_LANE_FIELDS = ("coarse_in", "coarse_out", "fine", "coarse_group")


def design_summary(graph, board, found, clock_mhz):
    """The report's keys that the quantized `graph`, the `board` and the DSE's choice `found`
    (a `dse.Exploration`) at `clock_mhz` decide: report.json's (DESIGN.md) but `synth`, `pnr`,
    `quant` and `notes`, plus `family`, the DSE's facts as `dse` (with its Pareto sweep, each
    design's frames/s added), and for conv and fc layers the rest of their folding (how their
    multipliers and weights are built). `dnnhw explore --json` prints it; `dnnhw build`
    reports it with the rest."""
    from .resources import layer_resources

    perf = found.perf
    total_macs = sum(macs(graph, layer) for layer in graph.layers)
    fps = clock_mhz * 1e6 / perf.cycles_per_frame
    layers = []
    for layer in graph.layers:
        f, lp = found.plan[layer.name], perf.layers[layer.name]
        layers.append({
            "name": layer.name, "op": layer.op,
            "in_shape": list(graph.in_shape(layer)), "out_shape": list(graph.out_shape(layer)),
            "macs": macs(graph, layer), **{name: getattr(f, name) for name in _LANE_FIELDS},
            "cycles_per_frame": lp.cycles_per_frame, "latency_cycles": lp.latency,
            "resources": layer_resources(graph, layer, f, board.family).as_dict(),
        })
        if ops.get(layer.op).weighted:
            layers[-1].update(_implementation(f))
    return {
        "network": graph.name, "board": board.name, "device": board.part, "family": board.family,
        "clock_mhz": clock_mhz, "objective": found.objective,
        "macs_per_frame": total_macs, "params": sum(params(layer) for layer in graph.layers),
        "predicted": {
            "cycles_per_frame": perf.cycles_per_frame, "fps": fps,
            "latency_cycles": perf.latency, "latency_us": perf.latency / clock_mhz,
            "gops": 2 * total_macs * fps / 1e9, "bottleneck": perf.bottleneck,
            "resources": found.resources,
        },
        "budget": board.resources,
        "dse": {"cap": found.cap, "limit": found.limit, "binding": found.binding,
                "seed": found.seed, "evaluated": found.evaluated,
                "seconds": round(found.seconds, 3),
                "pareto": [{**p, "fps": clock_mhz * 1e6 / p["cycles_per_frame"]}
                           for p in found.pareto]},
        "layers": layers,
    }


def partitioned_summary(graph, board, found):
    """The JSON-able summary of a partitioned design (`dse.PartitionedExploration`): the
    schedule's figures and, per partition, its layers, weights reloading, cycles and shares,
    and its own `design_summary` (of its sub-graph, chunk 0 where it reloads)."""
    perf, clock = found.perf, found.clock_mhz
    total_macs = sum(macs(graph, layer) for layer in graph.layers)
    route = perf.path
    parts = []
    for k, (plan, time) in enumerate(zip(found.partitions, perf.partitions), 1):
        part, cost = plan.part, plan.cost
        parts.append({
            "index": k, "layers": [layer.name for layer in graph.layers[part.start:part.stop]],
            "input": plan.graph.input, "output": plan.graph.output, "reload": part.reload,
            "shared_channels": shared_channels(graph, part),
            "cycles_per_frame": cost.cycles_per_frame, "latency_cycles": cost.latency,
            "in_bits": cost.in_bits, "out_bits": cost.out_bits, "weight_bits": cost.weight_bits,
            "slowdown": time.slowdown, "batch_cycles": {"compute": time.compute,
                                                        "bandwidth": time.stall,
                                                        "weight_loading": time.loading},
            "resources": plan.found.resources, "binding": plan.found.binding,
            "design": design_summary(plan.graph, board, plan.found, clock)})
    return {
        "network": graph.name, "board": board.name, "device": board.part, "family": board.family,
        "clock_mhz": clock, "objective": found.objective, "partitioned": True,
        "macs_per_frame": total_macs, "params": sum(params(layer) for layer in graph.layers),
        "predicted": {"batch": perf.batch, "fps": perf.fps, "batch_s": perf.batch_s,
                      "latency_s": perf.batch_s, "gops": 2 * total_macs * perf.fps / 1e9,
                      "reconfiguration_s": perf.reconfiguration_s, "binding": perf.binding,
                      "shares": perf.shares(clock)},
        "path": None if route is None else {
            "name": route.name, "bits_per_cycle": route.bits_per_cycle, "duplex": route.duplex,
            "bytes_per_s": route.bits_per_cycle * clock * 1e6 / 8},
        "memory": None if board.memory is None else dataclasses.asdict(board.memory),
        "reconfiguration": {"seconds": board.reconfiguration_s,
                            "source": board.reconfiguration_source},
        "budget": board.resources,
        "dse": {"cap": found.cap, "seed": found.seed, "ranges": found.ranges,
                "seconds": round(found.seconds, 3)},
        "partitions": parts,
    }


def _implementation(folding):
    """The fields of `folding` but `_LANE_FIELDS`, those of a nested dataclass flattened in."""
    fields = {}
    for f in dataclasses.fields(folding):
        value = getattr(folding, f.name)
        if dataclasses.is_dataclass(value):
            fields.update(_implementation(value))
        elif f.name not in _LANE_FIELDS:
            fields[f.name] = value
    return fields


# -- the build report: shared text ---------------------------------------------------------------

RESOURCES = ("lut", "ff", "dsp", "bram")
_UNITS = {"lut": {"xc7": "LUT6", "ecp5": "LUT4", "ice40": "LUT4"},
          "bram": {"xc7": "RAMB18", "ecp5": "DP16KD", "ice40": "4 Kbit EBR"}}
_SYNTH_WORDS = ("synth", "yosys")
_PNR_WORDS = ("place", "route", "pnr", "nextpnr", "vivado", "bitstream")
BLUE, RED, GREY, AMBER = "#3a6ea5", "#c62828", "#9aa5b1", "#b26a00"


def _is_num(value):
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def _num(value, digits=3):
    """A number for a reader: integers with thousands separators, other numbers to `digits`
    significant digits (whole, with separators, once they are that large); None as a dash."""
    if value is None:
        return "—"
    if isinstance(value, numbers.Integral):
        return f"{value:,}"
    if abs(value) >= 10 ** digits:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _pct(fraction):
    """A fraction as a percentage with one decimal, aligned in tables; None as a dash."""
    return "—" if fraction is None else f"{100 * fraction:.1f} %"


def _ratio(used, total):
    """used / total, or None when either is unknown or the total is 0."""
    return None if used is None or not total else used / total


def _delta(measured, predicted):
    """The relative difference of a measurement from its prediction, as "+2.3 %"."""
    if measured is None or not predicted:
        return None
    return f"{100 * (measured - predicted) / predicted:+.1f} %"


def _cap(report):
    return (report.get("dse") or {}).get("cap", defaults.CAP)


def _binding(report):
    return (report.get("dse") or {}).get("binding")


def _latency_us(report):
    p = report["predicted"]
    return p.get("latency_us", p["latency_cycles"] / report["clock_mhz"])


def _bottleneck_layer(report):
    """The layer the report names as the bottleneck, or None."""
    name = report["predicted"].get("bottleneck")
    return next((layer for layer in report["layers"] if layer["name"] == name), None)


def _resource_label(name, family):
    unit = _UNITS.get(name, {}).get(family)
    return name.upper() + (f" ({unit})" if unit else "")


def _resource_rows(report):
    """(resource, predicted, synthesized or None, budget) for each budgeted resource."""
    predicted = report["predicted"]["resources"]
    synth = report.get("synth") or {}
    budget = report["budget"]
    return [(name, predicted.get(name), synth.get(name), budget[name])
            for name in RESOURCES if name in budget]


def _headline(report):
    """The predicted performance as short phrases, shared by the page and the terminal."""
    p = report["predicted"]
    return [f"{_num(p['fps'])} fps", f"{_num(p['cycles_per_frame'])} cycles/frame",
            f"batch-1 latency {_num(p['latency_cycles'])} cycles ({_num(_latency_us(report))} µs)",
            f"{_num(p.get('gops'))} GOPS"]


def _reasons(report, words):
    """The report's notes that mention any of `words`: why a step did not run."""
    return [note for note in report.get("notes") or []
            if any(word in note.lower() for word in words)]


def _plain(value):
    """A JSON value of a tool's result as one short line."""
    if isinstance(value, dict):
        return ", ".join(f"{key} {_plain(item)}" for key, item in value.items())
    if isinstance(value, list):
        return ", ".join(map(_plain, value))
    return _num(value) if _is_num(value) else str(value)


# -- the build report: terminal ------------------------------------------------------------------

def format_report(report):
    """A few terminal lines for a report.json dict: predicted performance, resources against the
    budget, the bottleneck, and the verification result when the report has one."""
    r = report
    lines = [f"{r['network']} → {r['board']} ({r['device']}, {_num(r['clock_mhz'])} MHz): "
             + " · ".join(_headline(r)),
             "resources: " + _resource_line(r)]
    if r.get("synth"):
        lines.append(f"synthesized ({r['synth'].get('tool', 'synthesis')}): "
                     + ", ".join(f"{name} {_num(s)}" for name, _, s, _ in _resource_rows(r)))
    layer = _bottleneck_layer(r)
    cycles = f" ({_num(layer['cycles_per_frame'])} cycles/frame)" if layer else ""
    lines.append(f"bottleneck: {r['predicted'].get('bottleneck')}{cycles}")
    if isinstance(r.get("verify"), dict):
        lines.append("verified: " + _verify_line(r))
    return "\n".join(lines)


def _resource_line(report):
    used = ", ".join(f"{name} {_num(p)}/{_num(b)} ({_pct(_ratio(p, b))})"
                     for name, p, _, b in _resource_rows(report))
    binding = _binding(report)
    return used + (f"; binds: {binding}" if binding else "")


def _verify_line(report):
    v = report["verify"]
    frames = _num(v.get("frames"))
    exact = (f"bit-exact on {frames} frames" if v.get("bit_exact")
             else f"NOT bit-exact: {_num(v.get('mismatches'))} mismatches in {frames} frames")
    measured = v.get("measured_cycles_per_frame")
    predicted = v.get("predicted_cycles_per_frame", report["predicted"]["cycles_per_frame"])
    rate = (f", {_num(measured)} cycles/frame measured vs {_num(predicted)} predicted "
            f"({_delta(measured, predicted)})" if measured is not None else "")
    return exact + rate


# -- the build report: plots ---------------------------------------------------------------------

def _figure(width, height):
    """A matplotlib Figure and its axes, drawn by the Agg backend without pyplot's global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _png(fig, target=None):
    """Save `fig` as PNG to `target` (a path or file), or return the PNG's bytes."""
    buffer = io.BytesIO() if target is None else target
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue() if target is None else None


def _spans(values, factor):
    """True when the positive `values` span more than `factor` (a log axis reads better)."""
    positive = [v for v in values if v and v > 0]
    return bool(positive) and max(positive) > factor * min(positive)


def _short(name, width=40):
    """A layer name cut to `width` characters, keeping its tail (the distinctive part in ONNX)."""
    return name if len(name) <= width else "…" + name[-(width - 1):]


def _utilisation_chart(report):
    """PNG: utilisation of the budget per resource as horizontal bars (predicted, and
    synthesized where known), with the DSE cap and the budget marked."""
    from matplotlib.ticker import PercentFormatter

    rows, cap = _resource_rows(report), _cap(report)
    synth = [_ratio(s, b) for _, _, s, b in rows]
    predicted = [_ratio(p, b) for _, p, _, b in rows]
    both = any(u is not None for u in synth)
    fig, ax = _figure(6.4, 0.55 * len(rows) * (1.5 if both else 1) + 1.3)
    y, height = np.arange(len(rows)), 0.4 if both else 0.6
    bars = ax.barh(y - (height / 2 if both else 0), [u or 0 for u in predicted], height,
                   color=BLUE, label="predicted")
    ax.bar_label(bars, labels=[_pct(u) for u in predicted], padding=3, fontsize="small")
    if both:
        bars = ax.barh(y + height / 2, [u or 0 for u in synth], height, color=GREY,
                       label="synthesized")
        ax.bar_label(bars, labels=[_pct(u) for u in synth], padding=3, fontsize="small")
    ax.axvline(cap, color=AMBER, linestyle="--", label=f"DSE cap {100 * cap:g} %")
    ax.axvline(1.0, color="black", linewidth=1, label="budget")
    ax.set_yticks(y, [_resource_label(name, report.get("family")) for name, *_ in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, max([1.1] + [1.15 * u for u in predicted + synth if u is not None]))
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("share of the budget")
    fig.legend(loc="outside upper center", ncols=4, fontsize="small", frameon=False)
    return _png(fig)


def _bottleneck_chart(report):
    """PNG: cycles per frame of each layer as horizontal bars in network order, the bottleneck
    in red, with the network's cycles per frame as a line; a log axis when they span > 100×."""
    layers = report["layers"]
    bottleneck = report["predicted"].get("bottleneck")
    cycles = [layer.get("cycles_per_frame") or 0 for layer in layers]
    fig, ax = _figure(7.5, 0.24 * len(layers) + 1.4)
    y = np.arange(len(layers))
    ax.barh(y, cycles, 0.7, color=[RED if layer["name"] == bottleneck else BLUE
                                   for layer in layers])
    network = report["predicted"]["cycles_per_frame"]
    ax.axvline(network, color=AMBER, linestyle="--",
               label=f"network: {_num(network)} cycles/frame")
    ax.set_yticks(y, [_short(layer["name"]) for layer in layers], parse_math=False,
                  fontsize="small")
    ax.invert_yaxis()
    if _spans(cycles + [network], 100):
        ax.set_xscale("log")
    ax.set_xlabel("cycles per frame (lower is faster; the slowest layer sets the rate)")
    fig.legend(loc="outside upper center", fontsize="small", frameon=False)
    return _png(fig)


def pareto_plot(points, chosen, path, title=""):
    """Write a PNG of the design-space exploration's throughput/resource trade-off to `path`
    (a file name or a binary file).

    `points` are all evaluated designs, dicts ``{"fps", "dsp", "bram", "lut", "pareto"}``;
    `chosen` is the design picked, one such dict. The X axis is the DSPs a design uses, unless
    every point (and `chosen`) has a ``"utilisation"`` key -- the used fraction of the budget of
    its most used resource -- in which case the X axis is that fraction, shown in percent. The Y
    axis is frames per second, logarithmic when the values span more than 100×. Pareto designs
    are drawn as a step line (the best throughput reachable with at most that much resource),
    the others as faint dots, the chosen design as a red star.
    """
    from matplotlib.ticker import PercentFormatter

    key = "utilisation" if all("utilisation" in p for p in [*points, chosen]) else "dsp"
    fig, ax = _figure(6.4, 4.4)
    rest = [p for p in points if not p.get("pareto")]
    front = sorted((p for p in points if p.get("pareto")), key=lambda p: (p[key], p["fps"]))
    ax.scatter([p[key] for p in rest], [p["fps"] for p in rest], s=12, color=GREY, alpha=0.5,
               linewidths=0, label=f"evaluated ({len(points):,})")
    ax.step([p[key] for p in front], [p["fps"] for p in front], where="post", color=BLUE,
            marker="o", markersize=4, label=f"Pareto front ({len(front)})")
    x = _pct(chosen[key]) if key == "utilisation" else f"{_num(chosen[key])} DSP"
    ax.scatter([chosen[key]], [chosen["fps"]], s=220, marker="*", color=RED, edgecolors="black",
               zorder=3, label=f"chosen: {_num(chosen['fps'])} fps, {x}")
    if _spans([p["fps"] for p in [*points, chosen]], 100):
        ax.set_yscale("log")
    if key == "utilisation":
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("utilisation of the most used resource" if key == "utilisation" else "DSPs used")
    ax.set_ylabel("frames per second")
    ax.set_title(title, loc="left")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    _png(fig, path)


# -- the build report: HTML ----------------------------------------------------------------------

_CSS = """\
body { font-family: system-ui, sans-serif; color: #222; max-width: 1200px; margin: 2em auto;
       padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; }
h2 { font-size: 1.15em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
.sub { color: #666; margin-top: 0; }
.summary { background: #f3f6f9; border-left: 4px solid #3a6ea5; padding: 0.6em 0.9em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.85em;
        font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
th, td { padding: 0.2em 0.7em; border-bottom: 1px solid #e5e5e5; text-align: left;
         white-space: nowrap; }
thead th { background: #f3f6f9; }
tbody th { font-weight: normal; color: #555; }
.n { text-align: right; }
tr.hot td { background: #fdecea; }
.ok { color: #1a7f37; font-weight: bold; }
.warn { color: #b26a00; font-weight: bold; }
.bad { color: #c62828; font-weight: bold; }
.scroll { overflow-x: auto; }
img { display: block; max-width: 100%; height: auto; margin: 0.6em 0; }
"""


class _Html(str):
    """Text that is already HTML: `_e` passes it through unescaped."""


def _e(value):
    return value if isinstance(value, _Html) else html.escape(str(value))


def _span(cls, text):
    return _Html(f'<span class="{cls}">{_e(text)}</span>')


def _cell(tag, value, right):
    text = _num(value) if value is None or _is_num(value) else _e(value)
    return f'<{tag} class="n">{text}</{tag}>' if right else f"<{tag}>{text}</{tag}>"


def _table(header, rows, right=None, hot=()):
    """An HTML table. Numbers are formatted by `_num`, None shows as a dash, strings are escaped
    and `_Html` cells go in as they are. Columns in `right` (default: those holding a number)
    are right-aligned; rows whose index is in `hot` are highlighted."""
    if right is None:
        right = {i for row in rows for i, value in enumerate(row) if _is_num(value)}
    head = "".join(_cell("th", h, i in right) for i, h in enumerate(header))
    body = "\n".join(
        (' <tr class="hot">' if n in hot else " <tr>")
        + "".join(_cell("td", value, i in right) for i, value in enumerate(row)) + "</tr>"
        for n, row in enumerate(rows))
    return (f'<div class="scroll"><table>\n<thead><tr>{head}</tr></thead>\n'
            f"<tbody>\n{body}\n</tbody></table></div>")


def _kv(pairs):
    """A two-column table of (label, value) pairs, labels as row headers."""
    rows = "\n".join(f" <tr><th>{_e(label)}</th>{_cell('td', value, False)}</tr>"
                     for label, value in pairs)
    return f"<table>\n<tbody>\n{rows}\n</tbody></table>"


def _img(png, alt):
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _section(title, *parts):
    return "\n".join([f"<h2>{_e(title)}</h2>", *parts])


def _p(*parts):
    return "<p>" + "".join(_e(part) for part in parts) + "</p>"


def _title_html(r):
    family = f" ({r['family']})" if r.get("family") else ""
    sub = " · ".join([f"{r['device']}{family} at {_num(r['clock_mhz'])} MHz",
                      f"objective: {r['objective']}",
                      f"{_num(r['macs_per_frame'])} MACs per frame",
                      f"{_num(r['params'])} parameters"])
    return f"<h1>{_e(r['network'])} → {_e(r['board'])}</h1>\n" + f'<p class="sub">{_e(sub)}</p>'


def _summary_html(r):
    fps, *rest = _headline(r)
    parts = [f"<b>{_e(fps)}</b>", *map(_e, rest),
             f"bottleneck <code>{_e(r['predicted'].get('bottleneck'))}</code>"]
    if _binding(r):
        parts.append(f"bound by <b>{_e(_binding(r))}</b>")
    return '<p class="summary">' + " · ".join(parts) + "</p>"


def _util(fraction, cap):
    """A utilisation as a percentage, amber above the DSE cap and red above the budget."""
    if fraction is None or fraction <= cap:
        return _pct(fraction)
    return _span("bad" if fraction > 1 else "warn", _pct(fraction))


def _resources_html(r):
    cap = _cap(r)
    rows = [["resource", "predicted", "synthesized", "budget", "predicted use", "synthesized use"]]
    rows += [[_resource_label(name, r.get("family")), p, s, b, _util(_ratio(p, b), cap),
              _util(_ratio(s, b), cap)] for name, p, s, b in _resource_rows(r)]
    columns = range(6) if r.get("synth") is not None else (0, 1, 3, 4)
    header, *body = [[row[i] for i in columns] for row in rows]
    binding = f"; the design is bound by {_binding(r)}" if _binding(r) else ""
    return _section("Resources", _table(header, body, right=set(range(1, len(header)))),
                    _p(f"The DSE keeps every resource under {100 * cap:g} % of the budget"
                       f"{binding}."),
                    _img(_utilisation_chart(r), "utilisation of the budget per resource"))


def _bottleneck_html(r):
    if not r["layers"]:
        return _section("Bottleneck", _p("The report has no layers."))
    return _section("Bottleneck", _img(_bottleneck_chart(r), "cycles per frame per layer"))


def _shape(shape):
    return "—" if shape is None else "×".join(map(str, shape))


def _design_space_html(r):
    """The throughput/resource trade-off the DSE swept (`dse.pareto`), when the report has it."""
    points = (r.get("dse") or {}).get("pareto")
    if not points:
        return ""
    p = r["predicted"]
    png = io.BytesIO()
    pareto_plot(points, {**p["resources"], "fps": p["fps"]}, png)
    return _section("Design space", _img(png.getvalue(), "frames per second against DSPs"),
                    _p(f"Designs of the threshold sweep: {len(points)}; binding: "
                       f"{_binding(r) or '—'}."))


def _layers_html(r):
    header = ["#", "layer", "op", "in", "out", "MACs", "coarse_in", "coarse_out", "fine",
              "coarse_group", "cycles/frame", "latency", "LUT", "FF", "DSP", "BRAM"]
    bottleneck = r["predicted"].get("bottleneck")
    rows = [[n, layer["name"], layer["op"], _shape(layer.get("in_shape")),
             _shape(layer.get("out_shape")), layer.get("macs"), layer.get("coarse_in"),
             layer.get("coarse_out"), layer.get("fine"), layer.get("coarse_group", 1),
             layer.get("cycles_per_frame"),
             layer.get("latency_cycles"),
             *[(layer.get("resources") or {}).get(name) for name in RESOURCES]]
            for n, layer in enumerate(r["layers"])]
    hot = {n for n, layer in enumerate(r["layers"]) if layer["name"] == bottleneck}
    right = {0, *range(5, len(header))}
    return _section("Layers", _table(header, rows, right=right, hot=hot),
                    _p("Latency is in cycles from first input to first output; the bottleneck "
                       "is highlighted."))


def _quant_html(r):
    q, e = r["quant"], r["quant"]["float_error"]
    frames = f" on {_num(e['frames'])} frames" if "frames" in e else ""
    parts = [_p(f"Weights {q['bits_w']} bit, activations {q['bits_a']} bit. Error of the "
                f"fixed-point model against onnxruntime's float output{frames}:"),
             _kv([("max abs error", e["max_abs"]),
                  ("relative RMS error", f"{100 * e['rel_rms']:.3g} %"),
                  ("top-1 agreement", _pct(e["top1_agreement"]))])]
    if q.get("layer_bits"):
        parts.append(_p("Layers at other widths (weights and output): " + ", ".join(
            f"{name} {bits} bit" for name, bits in q["layer_bits"].items()) + "."))
    if isinstance(q.get("precision"), dict):
        parts.append(_precision_html(q["precision"]))
    if isinstance(q.get("calibration"), dict):
        parts.append(_p("Calibration: ", _plain(q["calibration"]), "."))
    if isinstance(q.get("accuracy"), dict):
        parts.append(_accuracy_html(q["accuracy"]))
    return _section("Fixed point", *parts)


def _precision_html(c):
    """What --layer-bits auto measured: each uniform width and the choice, score and speed."""
    rows = [[f"{u['bits']} bit throughout", _pct(u["score"]),
             _num(round(u["fps"])) if u["fps"] is not None else "outside the tolerance"]
            for u in c["uniform"]]
    rows.append(["chosen: " + ", ".join(f"{n} {b}" for n, b in c["layer_bits"].items())
                 + f" (others {c['bits']} bit)", _pct(c["score"]), _num(round(c["fps"]))])
    return (_p(f"--layer-bits auto: the fastest widths within {100 * c['tolerance']:g} points of "
               f"the {c['reference_bits']}-bit {c['metric']}, {len(c['steps'])} greedy steps "
               "measured:") + "\n"
            + _table(["widths", c["metric"], "predicted frames/s"], rows, right={1, 2}))


def _accuracy_html(accuracy):
    """Top-1 accuracy per model (float, golden, hardware, or nested like {"fixed": {"8": ..}})."""
    rows = []
    for key, value in accuracy.items():
        if key == "frames":
            continue
        items = value.items() if isinstance(value, dict) else [("", value)]
        rows += [[f"{key} {sub}".strip(), _pct(acc)] for sub, acc in items]
    frames = f" on {_num(accuracy['frames'])} labelled frames" if "frames" in accuracy else ""
    return _p(f"Top-1 accuracy{frames}:") + "\n" + _table(["model", "accuracy"], rows, right={1})


def _verify_html(r):
    v = r.get("verify")
    if not isinstance(v, dict):
        return _section("Verification",
                        "<p>Not verified (run <code>python -m dnnhw verify DIR</code>).</p>")
    p = r["predicted"]
    exact = _span("ok", "yes") if v.get("bit_exact") else _span("bad", "no")
    summary = _kv([("bit-exact", exact), ("frames", v.get("frames")),
                   ("mismatches", v.get("mismatches")), ("simulator", v.get("simulator")),
                   ("seconds", v.get("seconds"))])
    timing = [[label, v.get(f"measured_{key}"), v.get(f"predicted_{key}", p[key]),
               _delta(v.get(f"measured_{key}"), v.get(f"predicted_{key}", p[key]))]
              for label, key in [("cycles per frame", "cycles_per_frame"),
                                 ("latency (cycles)", "latency_cycles")]]
    return _section("Verification", summary,
                    _table(["", "measured", "predicted", "difference"], timing, right={1, 2, 3}))


def _tool_html(title, result, reasons):
    """A tool's result dict as a table (tool first), or "not run" and the notes saying why."""
    if result is None:
        why = [_p("Not run: ", reason) for reason in reasons]
        return _section(title, *(why or [_p("Not run.")]))
    pairs = sorted(result.items(), key=lambda item: item[0] != "tool")
    return _section(title, _kv([(key, value if _is_num(value) else _plain(value))
                                for key, value in pairs]))


def _synth_html(r):
    return _tool_html("Synthesis", r.get("synth"), _reasons(r, _SYNTH_WORDS))


def _pnr_html(r):
    pnr = r.get("pnr")
    section = _tool_html("Place and route", pnr, _reasons(r, _PNR_WORDS))
    fmax = (pnr or {}).get("fmax_mhz")
    if not _is_num(fmax):
        return section
    verdict = (_span("ok", "meets timing") if fmax >= r["clock_mhz"]
               else _span("bad", "fails timing"))
    return (section + f"\n<p>fmax {_num(fmax)} MHz against a {_num(r['clock_mhz'])} MHz clock: "
            f"{verdict}</p>")


def _notes_html(r):
    notes = r.get("notes") or []
    if not notes:
        return _section("Notes", _p("None."))
    return _section("Notes", "<ul>\n" + "\n".join(f"<li>{_e(n)}</li>" for n in notes) + "\n</ul>")


def write_html(report, path):
    """Write `report` (a report.json dict, DESIGN.md "Command line and reports") to `path` as one
    self-contained HTML page: no external assets or scripts, plots as inline base64 PNGs.

    Every string from the report is escaped. The keys DESIGN.md lists are required; `dse`,
    `verify`, `pnr`, `notes` and `quant.accuracy` may be missing, and a null `synth` or `pnr` is
    reported as not run, with the notes that mention that step as the reason.
    """
    body = "\n".join([_title_html(report), _summary_html(report), _resources_html(report),
                      _bottleneck_html(report), _design_space_html(report),
                      _layers_html(report), _quant_html(report),
                      _verify_html(report), _synth_html(report), _pnr_html(report),
                      _notes_html(report)])
    write_page(path, f"dnnhw: {report['network']} → {report['board']}", body)


def write_page(path, title, body):
    """Write one self-contained HTML page (our stylesheet inline) of `body` to `path`; `title`
    is escaped here, `body` must be HTML already."""
    page = ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{_e(title)}</title>\n<style>\n{_CSS}</style>\n</head>\n<body>\n{body}\n"
            "</body>\n</html>\n")
    with open(path, "w", encoding="utf-8") as file:
        file.write(page)
