"""`dnnhw rank`: candidate networks for one task, each by its fixed-point accuracy and its
predicted speed on one board, and the Pareto front of accuracy against frames per second.

Every candidate goes through what `dnnhw build` would do before generating hardware: the
frontend, quantization (`build.front`) and the DSE (`dse.design`, partitions included). Its
accuracy is top-1 on the user's labelled frames, of onnxruntime in float and of the golden
model in fixed point; its speed and resources are the DSE's prediction for the board. A
candidate that cannot be read or built stays in the ranking with the reason.
"""

import pathlib

from . import defaults, dse, frontend, golden, ops, quant
from .build import builds_reloading, front, link_reserve, progress
from .errors import UserError
from .ir import params
from .precision import top1_score


__all__ = ["rank", "format_ranking", "ranking_plot"]


def rank(networks, board, data, labels, bits=defaults.BITS, calibration=None,
         objective=defaults.OBJECTIVE, cap=defaults.CAP, seed=defaults.SEED, clock_mhz=None,
         batch=None):
    """One row per ONNX file of `networks`, in their order, for `board`: {network, layers,
    macs_per_frame, params, accuracy: {float, fixed}, fps, latency_us, partitions, resources,
    binding, pareto}, or {network, error} for one that cannot be read or built. `data`, `labels`:
    the .npy files of the frames and their classes; the other options as for `build`.

    Raises
    ------
    UserError
        If no candidate can be ranked (saying why the first cannot).
    """
    clock = clock_mhz or board.clock_mhz
    rows = []
    for k, network in enumerate(networks, 1):
        progress(f"rank: candidate {k} of {len(networks)}: {network}")
        try:
            rows.append(_candidate(network, board, data, labels, bits, calibration, objective,
                                   cap, seed, clock, batch))
        except UserError as error:
            rows.append({"network": str(network), "error": str(error)})
    ranked = [row for row in rows if "error" not in row]
    if not ranked:
        raise UserError(f"no candidate can be ranked: {rows[0]['network']}: {rows[0]['error']}")
    for row in ranked:
        row["pareto"] = not any(_dominates(other, row) for other in ranked)
    return rows


def _candidate(network, board, data, labels, bits, calibration, objective, cap, seed, clock,
               batch):
    read = front(network, bits, calibration)
    q = read.quantized
    frames = quant.load_frames(read.graph, data)
    truth = quant.load_labels(labels, len(frames))
    reference = frontend.onnxruntime_outputs(network, read.graph, frames)
    fixed = golden.run(q, frames)
    found = dse.design(q, board, objective=objective, cap=cap, seed=seed, clock_mhz=clock,
                       batch=batch, reserve=lambda sub: link_reserve(sub, board),
                       reloading=builds_reloading(board))
    if isinstance(found, dse.PartitionedExploration):
        fps, latency_us = found.perf.fps, found.perf.batch_s * 1e6
        resources = {kind: max(p.found.resources[kind] for p in found.partitions)
                     for kind in dse.KINDS}
        binding, partitions = found.perf.binding, len(found.partitions)
    else:
        fps = clock * 1e6 / found.perf.cycles_per_frame
        latency_us = found.perf.latency / clock
        resources, binding, partitions = found.resources, found.binding, 1
    return {"network": str(network), "layers": len(q.layers),
            "macs_per_frame": int(sum(ops.macs(q, layer) for layer in q.layers)),
            "params": int(sum(params(layer) for layer in q.layers)),
            "accuracy": {"frames": len(frames), "float": top1_score(reference, truth),
                         "fixed": top1_score(fixed, truth)},
            "fps": fps, "latency_us": latency_us, "partitions": partitions,
            "resources": resources, "binding": binding}


def _dominates(a, b):
    """`a` is at least as accurate and as fast as `b`, and better in one."""
    pa, pb = (a["accuracy"]["fixed"], a["fps"]), (b["accuracy"]["fixed"], b["fps"])
    return all(x >= y for x, y in zip(pa, pb)) and pa != pb


def format_ranking(rows, board, bits):
    """The ranking as a terminal table, fastest first; Pareto candidates starred."""
    header = ["", "network", "float", f"{bits}-bit", "frames/s", "latency µs", "LUT", "FF",
              "DSP", "BRAM", "parts", "binding"]
    ranked = sorted((r for r in rows if "error" not in r), key=lambda r: -r["fps"])
    table = [header] + [
        ["*" if r["pareto"] else "", r["network"], f"{100 * r['accuracy']['float']:.2f}%",
         f"{100 * r['accuracy']['fixed']:.2f}%", f"{r['fps']:,.0f}", f"{r['latency_us']:,.1f}",
         *(f"{r['resources'][kind]:,}" for kind in dse.KINDS), str(r["partitions"]),
         r["binding"]] for r in ranked]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [f"{len(ranked)} candidates on {board.name} at {bits} bits, top-1 on "
             f"{ranked[0]['accuracy']['frames']} labelled frames (* on the Pareto front of "
             "accuracy against frames/s):", ""]
    lines += ["  ".join(c.ljust(w) if i in (0, 1, 11) else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths))).rstrip() for row in table]
    lines += [f"not ranked: {r['network']}: {r['error']}" for r in rows if "error" in r]
    return "\n".join(lines)


def ranking_plot(rows, path, title=""):
    """Write a PNG of the candidates' fixed-point accuracy against predicted frames/s to `path`:
    the Pareto front as a step line, each candidate labelled with its file's name."""
    from .report import BLUE, GREY, RED, _figure, _png, _spans

    ranked = [r for r in rows if "error" not in r]
    fig, ax = _figure(7.0, 4.5)
    front = sorted((r for r in ranked if r["pareto"]), key=lambda r: r["fps"])
    ax.step([r["fps"] for r in front], [100 * r["accuracy"]["fixed"] for r in front],
            where="pre", color=BLUE, label="Pareto front (best accuracy at each rate)")
    for r in ranked:
        ax.plot(r["fps"], 100 * r["accuracy"]["fixed"], "o", color=RED if r["pareto"] else GREY)
        ax.annotate(pathlib.Path(r["network"]).stem, (r["fps"], 100 * r["accuracy"]["fixed"]),
                    textcoords="offset points", xytext=(5, 4), fontsize="small")
    if _spans([r["fps"] for r in ranked], 100):
        ax.set_xscale("log")
    ax.set_xlabel("predicted frames per second")
    ax.set_ylabel("top-1 accuracy, fixed point (%)")
    ax.set_title(title, fontsize="medium")
    ax.legend(fontsize="small", frameon=False)
    _png(fig, path)
