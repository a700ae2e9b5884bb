"""The report of several networks on one chip (`dnnhw.multi`, its report.json): a few terminal
lines, and report.html with each network's target, rate, resources and verification."""

from .report import _e, _notes_html, _num, _p, _section, _span, _synth_html, _table, write_page


__all__ = ["format_multi", "write_multi_html"]


def _target(n):
    return "—" if n["target_fps"] is None else _num(n["target_fps"])


def format_multi(r):
    """Terminal lines: each network's rate against its target, the resources of all, and the
    verification when there is one."""
    m = r["multi"]
    lines = [f"{r['network']} → {r['board']} ({r['device']}, {_num(r['clock_mhz'])} MHz): "
             f"{len(r['networks'])} networks, every rate {m['scale']:.3g} × its reference"]
    for n in r["networks"]:
        p = n["predicted"]
        target = (f"target {_target(n)} fps {'met' if n['met'] else 'NOT met'}"
                  if n["target_fps"] is not None else "no target")
        lines.append(f"  {n['name']}: {_num(p['fps'])} fps predicted "
                     f"({_num(p['cycles_per_frame'])} cycles/frame), {target}; "
                     + ", ".join(f"{k.upper()} {_num(v)}" for k, v in p["resources"].items()))
    lines.append("resources: " + ", ".join(
        f"{k.upper()} {_num(v)}/{_num(r['budget'][k])}"
        for k, v in r["predicted"]["resources"].items()))
    if r.get("synth"):
        lines.append(f"synthesized ({r['synth']['tool']}): "
                     + ", ".join(f"{k.upper()} {_num(r['synth'][k])}"
                                 for k in ("lut", "ff", "dsp", "bram")))
    v = r.get("verify")
    if isinstance(v, dict):
        exact = "bit-exact" if v["bit_exact"] else "NOT bit-exact"
        lines.append(f"verified in one simulation: {exact}; "
                     + "; ".join(f"{n['name']} {n['frames']} frames, "
                                 f"{_num(n['measured_cycles_per_frame'])} cycles/frame measured "
                                 f"vs {_num(n['predicted_cycles_per_frame'])}"
                                 for n in v["networks"]))
    return "\n".join(lines)


def write_multi_html(r, path):
    """Write the multi-network report `r` to `path` as one self-contained HTML page."""
    m = r["multi"]
    rows = [[n["name"], _target(n), n["predicted"]["fps"], n["fastest_alone_fps"],
             _span("ok", "met") if n["met"] else _span("bad", "not met"),
             n["predicted"]["cycles_per_frame"],
             *(n["predicted"]["resources"][k] for k in ("lut", "ff", "dsp", "bram")),
             n["dse"]["binding"]] for n in r["networks"]]
    allocation = _section(
        "Allocation",
        _p(f"Each network is planned as cheaply as reaches {m['scale']:.3g} × its reference "
           "rate (its target, or its share of what it reaches alone), the largest factor whose "
           "plans fit together."),
        _table(["network", "target fps", "predicted fps", "alone fps", "target", "cycles/frame",
                "LUT", "FF", "DSP", "BRAM", "binding"], rows),
        _table(["", "LUT", "FF", "DSP", "BRAM"],
               [["all", *(m["resources"][k] for k in ("lut", "ff", "dsp", "bram"))],
                ["budget", *(m["limit"][k] for k in ("lut", "ff", "dsp", "bram"))]]))
    body = "\n".join([f"<h1>{_e(r['network'])} → {_e(r['board'])}</h1>",
                      f'<p class="sub">{_e(r["device"])} ({_e(r["family"])}) at '
                      f"{_e(_num(r['clock_mhz']))} MHz</p>", allocation, _verify(r),
                      _synth_html(r), _notes_html(r)])
    write_page(path, f"dnnhw: {r['network']} → {r['board']}", body)


def _verify(r):
    v = r.get("verify")
    if not isinstance(v, dict):
        return _section("Verification",
                        "<p>Not verified (run <code>python -m dnnhw verify DIR</code>).</p>")
    rows = [[n["name"], _span("ok", "yes") if n["bit_exact"] else _span("bad", "no"),
             n["frames"], n["mismatches"], n["stalled_frames"], n["stalled_mismatches"],
             n["measured_cycles_per_frame"], n["predicted_cycles_per_frame"],
             n["measured_latency_cycles"], n["predicted_latency_cycles"]]
            for n in v["networks"]]
    return _section(
        "Verification",
        _p(f"Every network's streams at once in one cocotb + Verilator simulation "
           f"({v['simulator']}, {v['seconds']} s), then again under random stalls "
           f"(probability {v['stall']:g}), each output frame against its network's golden "
           "model."),
        _table(["network", "bit-exact", "frames", "mismatches", "stalled frames",
                "stalled mismatches", "cycles/frame measured", "predicted", "latency measured",
                "predicted"], rows))
