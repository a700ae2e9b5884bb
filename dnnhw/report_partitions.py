"""The report of a partitioned design (`report.partitioned_summary`, a partitioned build's
report.json): a few terminal lines, and report.html with a timeline of one batch and the
throughput against the batch size.

matplotlib is imported inside the plotting functions, as in `dnnhw.report`.
"""

from . import schedule
from .boards import get_board
from .report import _e, _figure, _img, _num, _p, _png, _section, _table, write_page


__all__ = ["format_partitioned", "batch_sweep", "batch_plot", "write_partitioned_html"]

#: The batch sizes of the throughput curve: powers of two up to the largest the search picks.
_BATCHES = [1 << k for k in range(9)]


def _costs(r):
    return [schedule.PartitionCost(p["cycles_per_frame"], p["latency_cycles"], p["in_bits"],
                                   p["out_bits"], p["weight_bits"], p["reload"])
            for p in r["partitions"]]


def batch_sweep(r):
    """[{batch, fps, batch_s}] of the report's partitions over `_BATCHES` (and its own
    batch), by `schedule.schedule`."""
    board, costs = get_board(r["board"]), _costs(r)
    batches = sorted({*_BATCHES, r["predicted"]["batch"]})
    return [{"batch": b, "fps": perf.fps, "batch_s": perf.batch_s}
            for b in batches for perf in [schedule.schedule(costs, board, r["clock_mhz"], b)]]


def _span(names):
    return names[0] if len(names) == 1 else f"{names[0]} … {names[-1]}"


def format_partitioned(r):
    """Terminal lines of a partitioned design: the batch's figures, its time shares, what
    binds, and one row per partition (with Yosys' counts where the build synthesized)."""
    p, route, n = r["predicted"], r["path"], len(r["partitions"])
    shares = ", ".join(f"{name} {100 * v:.0f}%" for name, v in p["shares"].items())
    where = ("" if route is None else
             f"; feature maps{' and weights' if route['name'] == 'DRAM' else ''} through the "
             f"{route['name']} at {route['bytes_per_s'] / 1e6:,.2f} MB/s sustained")
    reconf = (f"; {1e3 * p['reconfiguration_s'] / n:g} ms per reconfiguration" if n > 1 else "")
    rows = [["partition", "layers", "reload", "cycles/frame", "slow-down", "LUT", "FF", "DSP",
             "BRAM", "binding"]]
    for part in r["partitions"]:
        used = part.get("synth") or part["resources"]
        rows.append([str(part["index"]), _span(part["layers"]), str(part["reload"]),
                     f"{part['cycles_per_frame']:,}", f"{part['slowdown']:.2f}",
                     *(f"{used[k]:,}" for k in ("lut", "ff", "dsp", "bram")), part["binding"]])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    table = "\n".join("  ".join(c.ljust(w) if i in (1, 9) else c.rjust(w)
                                for i, (c, w) in enumerate(zip(row, widths))).rstrip()
                      for row in rows)
    synthesized = any(part.get("synth") for part in r["partitions"])
    return "\n".join([
        f"{r['network']} → {r['board']} ({r['device']}, {_num(r['clock_mhz'])} MHz, "
        f"{r['objective']}): {n} partition{'s' * (n > 1)}, batch {p['batch']}: "
        f"{p['fps']:,.2f} frames/s, {p['batch_s']:.3g} s per batch (each frame's latency), "
        f"{p['gops']:.2f} GOPS",
        f"time per batch: {shares}; binding: {p['binding']}{where}{reconf}",
        "", table, "",
        f"resources: {'synthesized (Yosys)' if synthesized else 'predicted'}; explored "
        f"{r['dse']['ranges']} candidate partitions in {r['dse']['seconds']:.1f} s"])


def _timeline_png(r):
    """One batch as a timeline: each partition's compute, bandwidth stall and weight loading,
    and the bitstream loads between them."""
    fig, ax = _figure(9, 0.5 + 0.35 * len(r["partitions"]))
    hz, n = r["clock_mhz"] * 1e6, len(r["partitions"])
    reconf = r["predicted"]["reconfiguration_s"] / n if n > 1 else 0.0
    colours = {"reconfiguration": "#bbbbbb", "compute": "#3a6ea5", "bandwidth": "#e0a030",
               "weight_loading": "#9a5fb4"}
    t, seen = 0.0, set()
    for part in r["partitions"]:
        y = part["index"]
        spans = [("reconfiguration", reconf)] + [(k, v / hz) for k, v in part["batch_cycles"].items()]
        for kind, seconds in spans:
            if seconds <= 0:
                continue
            ax.barh(y, seconds, left=t, color=colours[kind],
                    label=None if kind in seen else kind.replace("_", " "))
            seen.add(kind)
            t += seconds
    ax.set_yticks([p["index"] for p in r["partitions"]])
    ax.invert_yaxis()
    ax.set_xlabel("seconds into the batch")
    ax.set_ylabel("partition")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    return _png(fig)


def _sweep_png(sweep, chosen):
    fig, ax = _figure(6, 3.2)
    ax.plot([s["batch"] for s in sweep], [s["fps"] for s in sweep], marker="o")
    ax.axvline(chosen, color="#999", linestyle="--", label=f"chosen batch {chosen}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch (frames)")
    ax.set_ylabel("frames per second")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return _png(fig)


def batch_plot(r, path):
    """Write the throughput against the batch size of the partitioned summary `r` as a PNG."""
    with open(path, "wb") as file:
        file.write(_sweep_png(batch_sweep(r), r["predicted"]["batch"]))


def write_partitioned_html(r, path):
    """Write the partitioned report `r` to `path` as one self-contained HTML page."""
    p = r["predicted"]
    sweep = batch_sweep(r)
    rows = [[part["index"], _span(part["layers"]), part["reload"], part["cycles_per_frame"],
             part["slowdown"], part["batch_cycles"]["compute"], part["batch_cycles"]["bandwidth"],
             part["batch_cycles"]["weight_loading"],
             *((part.get("synth") or part["resources"])[k] for k in ("lut", "ff", "dsp", "bram")),
             part["binding"], part.get("folder")] for part in r["partitions"]]
    body = "\n".join([
        f"<h1>{_e(r['network'])} → {_e(r['board'])}</h1>",
        _p(f"{r['device']} at {_num(r['clock_mhz'])} MHz · objective {r['objective']} · "
           f"{len(r['partitions'])} partitions · batch {p['batch']}"),
        f'<p class="summary"><b>{_e(_num(p["fps"]))} fps</b> · {_e(_num(p["batch_s"]))} s per '
        f"batch · {_e(_num(p['gops']))} GOPS · binding: {_e(p['binding'])}</p>",
        _section("One batch", _img(_timeline_png(r), "timeline of one batch"),
                 _p(", ".join(f"{k} {100 * v:.1f}%" for k, v in p["shares"].items()))),
        _section("Throughput against batch", _img(_sweep_png(sweep, p["batch"]), "fps by batch"),
                 _table(["batch", "fps", "seconds per batch"],
                        [[s["batch"], s["fps"], s["batch_s"]] for s in sweep])),
        _section("Partitions", _table(["#", "layers", "reload", "cycles/frame", "slow-down",
                                       "compute cycles", "bandwidth stall", "weight loading",
                                       "LUT", "FF", "DSP", "BRAM", "binding", "folder"], rows)),
        _section("Notes", "<ul>\n" + "\n".join(f"<li>{_e(n)}</li>" for n in r.get("notes", []))
                 + "\n</ul>")])
    write_page(path, f"dnnhw: {r['network']} → {r['board']}", body)
