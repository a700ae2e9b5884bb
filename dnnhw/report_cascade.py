"""The report of a cascade (`dnnhw.cascade`, a cascade build's report.json): a few terminal
lines, and report.html with the threshold sweep, the split and each stage's layers."""

from .report import (_e, _kv, _notes_html, _num, _p, _pct, _section, _span, _synth_html, _table,
                     _verify_html, write_page)


__all__ = ["format_cascade", "write_cascade_html"]


def _gain(r):
    return r["predicted"]["fps"] / r["single"]["fps"] - 1


def format_cascade(r):
    """Terminal lines of a cascade: its rate against the second stage alone, the threshold and
    the recomputed fraction, the accuracies, and the verification when there is one."""
    c, p, s = r["cascade"], r["predicted"], r["single"]
    a = c["accuracy"]
    lines = [
        f"{r['network']} → {r['board']} ({r['device']}, {_num(r['clock_mhz'])} MHz): cascade "
        f"{c['low_bits']},{c['high_bits']}: {_num(p['fps'])} fps predicted "
        f"({_num(p['cycles_per_frame'])} cycles/frame) against {_num(s['fps'])} for "
        f"{s['bits']} bits alone ({100 * _gain(r):+.1f}%)",
        f"threshold {c['threshold']} (first-stage margin, {c['formats'][0]} LSBs): "
        f"{_pct(c['recompute'])} of {c['frames']} frames recomputed; {c['metric']}: first "
        f"{_pct(a['first'])}, second {_pct(a['second'])}, cascade {_pct(a['cascade'])}",
        "resources: " + ", ".join(f"{k.upper()} {_num(v)}/{_num(r['budget'][k])}"
                                  for k, v in p["resources"].items())]
    if r.get("synth"):
        lines.append(f"synthesized ({r['synth']['tool']}): "
                     + ", ".join(f"{k.upper()} {_num(r['synth'][k])}"
                                 for k in ("lut", "ff", "dsp", "bram")))
    v = r.get("verify")
    if isinstance(v, dict):
        exact = (f"bit-exact on {v['frames']} frames" if v["bit_exact"]
                 else f"NOT bit-exact: {v['mismatches']} mismatches in {v['frames']} frames")
        lines.append(f"verified: {exact}, {_pct(v['recompute'])} recomputed; "
                     f"{_num(v['measured_cycles_per_frame'])} cycles/frame measured vs "
                     f"{_num(v['predicted_cycles_per_frame'])} predicted")
    return "\n".join(lines)


def _stage_rows(r):
    c = r["cascade"]
    rows = []
    for name, bits, stage in zip(("first", "second"), (c["low_bits"], c["high_bits"]),
                                 r["stages"]):
        sp = stage["predicted"]
        rows.append([name, bits, sp["cycles_per_frame"], sp["latency_cycles"],
                     *(sp["resources"][k] for k in ("lut", "ff", "dsp", "bram")),
                     stage["dse"]["binding"]])
    return rows


def write_cascade_html(r, path):
    """Write the cascade report `r` to `path` as one self-contained HTML page."""
    c, p, s = r["cascade"], r["predicted"], r["single"]
    a = c["accuracy"]
    gain = _gain(r)
    headline = (f'<p class="summary"><b>{_e(_num(p["fps"]))} fps</b> predicted · '
                f"{_e(_num(p['cycles_per_frame']))} cycles/frame · "
                f"{_span('ok' if gain > 0 else 'warn', f'{100 * gain:+.1f}%')} against "
                f"{_e(_num(s['fps']))} fps for {s['bits']} bits alone on the whole board · "
                f"{_e(_pct(c['recompute']))} of frames recomputed</p>")
    sub = (f"{r['device']} ({r['family']}) at {_num(r['clock_mhz'])} MHz · cascade "
           f"{c['low_bits']},{c['high_bits']} bits · threshold {c['threshold']}")
    accuracy = _section(
        "Threshold",
        _p(f"A frame goes to the second stage when the first stage's largest score exceeds "
           f"its second largest by less than {c['threshold']} LSBs of {c['formats'][0]}: the "
           f"smallest threshold that keeps the {c['metric']} within "
           f"{100 * c['tolerance']:g} points of the second stage alone on {c['frames']} frames."),
        _kv([("first stage alone", _pct(a["first"])), ("second stage alone", _pct(a["second"])),
             ("cascade", _pct(a["cascade"])), ("recomputed", _pct(c["recompute"]))]),
        _table(["threshold", "recomputed", c["metric"]],
               [[t["threshold"], _pct(t["recompute"]), _pct(t["score"])] for t in c["sweep"]],
               right={0, 1, 2}))
    split = _section(
        "Split of the board",
        _p(f"Cycles per frame = max(first stage, {c['classes'] + 1} output beats, p · second "
           f"stage + (1 − p) · {c['frame_beats']} beats dropped), p = {_pct(c['recompute'])}; "
           f"frame queue {c['queue_frames']} frames, score queue {c['score_frames']}."),
        _table(["stage", "bits", "cycles/frame", "latency", "LUT", "FF", "DSP", "BRAM",
                "binding"], _stage_rows(r)),
        _table(["first stage cycles", "second stage cycles", "cascade cycles"],
               [[t["first_cycles"], t["second_cycles"], t["cycles"]] for t in c["splits"]]),
        _p(f"The second stage alone on the whole board: {_num(s['cycles_per_frame'])} "
           f"cycles/frame, bound by {s['binding']}."))
    body = "\n".join([f"<h1>{_e(r['network'])} → {_e(r['board'])}</h1>",
                      f'<p class="sub">{_e(sub)}</p>', headline, accuracy, split,
                      _cascade_verify_html(r), _synth_html(r), _notes_html(r)])
    write_page(path, f"dnnhw cascade: {r['network']}", body)


def _cascade_verify_html(r):
    v = r.get("verify")
    section = _verify_html(r)
    if not isinstance(v, dict):
        return section
    extra = [_p(f"Recomputed in simulation: {_pct(v['recompute'])} of {v['frames']} frames; "
                f"the model at that fraction: {_num(v['predicted_at_measured_recompute'])} "
                "cycles/frame.")]
    if "accuracy" in v:
        extra.append(_kv([(name, _pct(value)) for name, value in v["accuracy"].items()
                          if name != "frames"]))
    return "\n".join([section, *extra])
