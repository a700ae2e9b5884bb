"""Tests of the build report's rendering (dnnhw/report.py): report.html, the terminal summary
and the Pareto plot, from a hand-made report dict that follows DESIGN.md's report.json schema."""

import base64
import copy
import html
import re

import pytest

from dnnhw import report


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
IMG = '<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)">'


def layer(name, op, in_shape, out_shape, macs, folding, cycles, latency, resources):
    coarse_in, coarse_out, fine = folding
    return {"name": name, "op": op, "in_shape": in_shape, "out_shape": out_shape, "macs": macs,
            "coarse_in": coarse_in, "coarse_out": coarse_out, "fine": fine,
            "cycles_per_frame": cycles, "latency_cycles": latency,
            "resources": dict(zip(("lut", "ff", "dsp", "bram"), resources))}


REPORT = {
    "network": "digits", "board": "arty", "device": "xc7a35ticsg324-1L", "family": "xc7",
    "clock_mhz": 100.0, "objective": "throughput", "macs_per_frame": 8448, "params": 1250,
    "predicted": {"cycles_per_frame": 512, "fps": 195312.5, "latency_cycles": 800,
                  "latency_us": 8.0, "gops": 3.3, "bottleneck": "/blk<1>/Conv",
                  "resources": {"lut": 5000, "ff": 6000, "dsp": 60, "bram": 12}},
    "budget": {"lut": 20800, "ff": 41600, "dsp": 90, "bram": 100},
    "dse": {"cap": 0.8, "binding": "dsp", "seed": 0, "evaluated": 5321, "seconds": 0.8},
    "synth": {"tool": "yosys 0.70 synth_xilinx", "lut": 5200, "ff": 6100, "dsp": 60,
              "bram": 12, "lutram": 30},
    "pnr": None,
    "quant": {"bits_w": 8, "bits_a": 8,
              "float_error": {"max_abs": 0.1, "rel_rms": 0.018, "top1_agreement": 1.0},
              "accuracy": {"float": 0.9833, "golden": 0.9833, "hardware": 0.98, "frames": 300}},
    "layers": [
        layer("/0/Conv", "conv", [1, 8, 8], [8, 8, 8], 4608, (1, 8, 9), 64, 30, (500, 600, 72, 1)),
        layer("/blk<1>/Conv", "conv", [8, 8, 8], [8, 4, 4], 3840, (1, 2, 3), 512, 60,
              (400, 500, 6, 2)),
        layer("/fc/Gemm", "fc", [128], [10], 1280, (8, 1, 1), 160, 170, (100, 120, 8, 1)),
    ],
    "verify": {"bit_exact": True, "frames": 300, "mismatches": 0,
               "measured_cycles_per_frame": 524, "measured_latency_cycles": 790,
               "predicted_cycles_per_frame": 512, "predicted_latency_cycles": 800,
               "simulator": "verilator 5.048 + cocotb 2.1", "seconds": 42.0},
    "notes": ["Softmax runs on the host", "place and route: nextpnr has no xc7 flow <yet>"],
}


def minimal():
    """REPORT with only the keys DESIGN.md requires, and null synthesis and place-and-route."""
    r = copy.deepcopy(REPORT)
    for key in ("dse", "verify", "notes", "family"):
        del r[key]
    del r["quant"]["accuracy"]
    del r["predicted"]["latency_us"]
    r["synth"] = None
    return r


def render(tmp_path, r):
    path = tmp_path / "report.html"
    report.write_html(r, path)
    return path.read_text(encoding="utf-8")


def test_html_contents(tmp_path):
    page = render(tmp_path, REPORT)
    assert page.startswith("<!DOCTYPE html>")
    assert "digits" in page and "arty" in page and "xc7a35ticsg324-1L" in page
    for entry in REPORT["layers"]:
        assert html.escape(entry["name"]) in page
    assert "/blk&lt;1&gt;/Conv" in page and "<1>" not in page
    assert "195,312 fps" in page and "8 µs" in page
    assert '<span class="ok">yes</span>' in page and "+2.3 %" in page
    assert "yosys 0.70 synth_xilinx" in page and "lutram" in page
    assert "Not run: place and route: nextpnr has no xc7 flow &lt;yet&gt;" in page
    assert "98.0 %" in page and "1.8 %" in page                  # accuracy, rel_rms
    assert "<script" not in page and "http" not in page          # self-contained


def test_html_sections_in_order(tmp_path):
    page = render(tmp_path, REPORT)
    titles = re.findall(r"<h2>(.*?)</h2>", page)
    assert titles == ["Resources", "Bottleneck", "Layers", "Fixed point", "Verification",
                      "Synthesis", "Place and route", "Notes"]


def test_html_plots_are_png(tmp_path):
    images = re.findall(IMG, render(tmp_path, REPORT))
    assert len(images) == 2                                      # utilisation, bottleneck
    for data in images:
        assert base64.b64decode(data).startswith(PNG_MAGIC)


def test_html_missing_optional_keys(tmp_path):
    page = render(tmp_path, minimal())
    assert "digits" in page
    assert "Not verified (run <code>python -m dnnhw verify DIR</code>)" in page
    assert page.count("Not run.") == 2                           # synthesis, place and route
    assert "synthesized" not in page
    assert "under 80 % of the budget" in page                    # the default DSE cap
    assert "8 µs" in page                                        # latency_cycles / clock_mhz
    assert len(re.findall(IMG, page)) == 2


def test_html_verification_failure_and_timing(tmp_path):
    r = copy.deepcopy(REPORT)
    r["verify"].update(bit_exact=False, mismatches=3)
    r["pnr"] = {"tool": "nextpnr-ecp5", "fmax_mhz": 87.5}
    page = render(tmp_path, r)
    assert '<span class="bad">no</span>' in page
    assert '<span class="bad">fails timing</span>' in page and "nextpnr-ecp5" in page


def test_html_over_budget_is_flagged(tmp_path):
    r = copy.deepcopy(REPORT)
    r["predicted"]["resources"]["dsp"] = 95
    page = render(tmp_path, r)
    assert '<span class="bad">105.6 %</span>' in page
    assert '<span class="warn">' not in render(tmp_path, REPORT)


def test_format_report():
    text = report.format_report(REPORT)
    assert "195,312 fps" in text and "512 cycles/frame" in text and "8 µs" in text
    assert "bottleneck: /blk<1>/Conv (512 cycles/frame)" in text
    assert "dsp 60/90 (66.7 %)" in text and "binds: dsp" in text
    assert "bit-exact on 300 frames" in text and "+2.3 %" in text


def test_format_report_mismatch():
    r = copy.deepcopy(REPORT)
    r["verify"].update(bit_exact=False, mismatches=3)
    assert "verified: NOT bit-exact: 3 mismatches in 300 frames" in report.format_report(r)


def test_format_report_minimal():
    text = report.format_report(minimal())
    assert "fps" in text and "bottleneck: /blk<1>/Conv" in text
    assert "verified" not in text and "binds" not in text


def pareto_points():
    points = [{"fps": 1000.0 * d, "dsp": d, "bram": 4, "lut": 300 * d, "pareto": True}
              for d in (1, 4, 16, 64)]
    points += [{"fps": 500.0 * d, "dsp": d + 2, "bram": 6, "lut": 400 * d, "pareto": False}
               for d in (1, 4, 16, 64)]
    return points


@pytest.mark.parametrize("utilisation", [False, True])
def test_pareto_plot(tmp_path, utilisation):
    points = pareto_points()
    if utilisation:
        for p in points:
            p["utilisation"] = p["dsp"] / 90
    path = tmp_path / "pareto.png"
    report.pareto_plot(points, points[2], path, title="digits on arty")
    assert path.read_bytes().startswith(PNG_MAGIC)
