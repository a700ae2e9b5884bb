"""The resource model: exact DSP and BRAM rules, the committed calibration reproduced, monotonic
in folding; re-synthesis of held-out blocks with -m slow."""

import json
import pathlib
import sys

import pytest

from dnnhw import resources
from dnnhw.ir import Shape
from dnnhw.model import Folding, foldings
from dnnhw.resources import Resources, layer_resources

from support.graphs import conv_graph

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import calibrate_resources as calibration                               # noqa: E402

RESULTS = json.loads(calibration.RESULTS.read_text())


# -- Resources ------------------------------------------------------------------------------------


def test_resources_add_and_budget():
    total = Resources(10, 20, 1, 2) + Resources(5, 5, 1, 0)
    assert total == Resources(15, 25, 2, 2)
    assert total.as_dict() == {"lut": 15, "ff": 25, "dsp": 2, "bram": 2}
    assert total.fits({"lut": 15, "ff": 30, "dsp": 2, "bram": 4})
    assert not total.fits(Resources(100, 100, 1, 100))
    assert total.ratio({"lut": 30, "ff": 25, "dsp": 0, "bram": 4})["dsp"] == float("inf")


def test_unknown_family():
    graph, _ = conv_graph(Shape(4, 6, 6), 4, (3, 3), (1, 1), (1, 1, 1, 1))
    with pytest.raises(ValueError, match="unknown device family 'xc9'"):
        layer_resources(graph, graph.layers[0], Folding(), "xc9")


# -- multipliers: how Yosys maps a × b signed bits (measured on every family) ---------------------


@pytest.mark.parametrize("family, a, b, dsp", [
    ("xc7", 5, 3, 0), ("xc7", 4, 4, 0), ("xc7", 5, 4, 1), ("xc7", 7, 2, 1), ("xc7", 16, 16, 1),
    ("xc7", 25, 18, 1), ("xc7", 26, 18, 2), ("xc7", 19, 19, 2), ("xc7", 26, 19, 4),
    ("xc7", 36, 36, 6), ("xc7", 48, 16, 3), ("xc7", 40, 8, 2),
    ("ecp5", 4, 4, 1), ("ecp5", 18, 18, 1), ("ecp5", 19, 19, 1), ("ecp5", 20, 20, 4),
    ("ecp5", 36, 36, 4), ("ecp5", 40, 8, 3),
    ("ice40", 5, 5, 0), ("ice40", 6, 5, 1), ("ice40", 7, 3, 0), ("ice40", 16, 16, 1),
    ("ice40", 17, 17, 1), ("ice40", 18, 18, 3), ("ice40", 24, 18, 3), ("ice40", 25, 18, 4),
])
def test_dsps_per_multiplier(family, a, b, dsp):
    assert resources._dsp_count(a, b, family)[0] == dsp


def _conv(bits=8, act=None, **attrs):
    graph, _ = conv_graph(Shape(8, 8, 8), 16, (3, 3), (1, 1), (1, 1, 1, 1), bits=bits, act=act,
                          **attrs)
    return graph, graph.layers[0]


@pytest.mark.parametrize("family, bits, dsp", [
    ("xc7", 8, 24), ("ecp5", 8, 24), ("ice40", 8, 24),
    ("xc7", 4, 0), ("ecp5", 4, 24), ("ice40", 4, 0),          # 4 × 4 bits: LUTs on xc7, ice40
    ("xc7", 16, 24), ("ecp5", 16, 24), ("ice40", 16, 24),
])
def test_conv_dsps(family, bits, dsp):
    graph, layer = _conv(bits)
    assert layer_resources(graph, layer, Folding(2, 4, 3), family).dsp == dsp


def test_logic_multipliers_leave_the_dsps():
    graph, layer = _conv()
    assert layer_resources(graph, layer, Folding(2, 4, 3).with_impl(logic_multipliers=10), "xc7").dsp == 14


def test_leaky_relu_adds_a_multiplier_per_output_lane():
    graph, layer = _conv(act="leaky_relu", alpha=0.1)
    assert layer_resources(graph, layer, Folding(2, 4, 3), "ecp5").dsp == 24 + 4


# -- memories: memory_libmap's choice and block RAM packing ---------------------------------------


@pytest.mark.parametrize("family, depth, width, rom, kind, bram", [
    ("xc7", 1024, 18, False, "block", 1),       # one RAMB18 as 1K × 18
    ("xc7", 2048, 9, False, "block", 1),
    ("xc7", 512, 36, False, "block", 1),
    ("xc7", 1024, 36, False, "block", 2),       # a RAMB36
    ("xc7", 4096, 8, False, "block", 2),
    ("xc7", 2000, 20, False, "block", 3),       # three RAMB18 as 2K × 9
    ("xc7", 256, 8, False, "distributed", 0),   # RAM64M
    ("xc7", 2, 8, False, "distributed", 0),
    ("xc7", 512, 8, True, "logic", 0),          # ROMs stay in LUTs up to ~8 Kbit on xc7
    ("xc7", 512, 24, True, "block", 1),
    ("ecp5", 1024, 18, False, "block", 1),
    ("ecp5", 300, 40, True, "block", 2),
    ("ecp5", 64, 8, False, "distributed", 0),   # TRELLIS_DPR16X4
    ("ecp5", 64, 16, True, "logic", 0),
    ("ice40", 16, 16, False, "block", 1),       # SB_RAM40_4K already for 256 bits of RAM
    ("ice40", 2, 8, False, "logic", 0),
    ("ice40", 1024, 18, False, "block", 5),     # 1024 × 4 × 5 (2 chunks of 256 × 16 cost more)
    ("ice40", 128, 16, True, "block", 1),
])
def test_memory_mapping(family, depth, width, rom, kind, bram):
    mapping = resources._map_memory(depth, width, rom, family)
    assert (mapping.kind, mapping.bram) == (kind, bram)


def test_fifo_bram():
    assert resources.fifo_resources(8, 1, 1024, "xc7").bram == 1
    assert resources.fifo_resources(8, 4, 100, "ice40").bram == 2
    assert resources.fifo_resources(8, 1, 2, "xc7").bram == 0


# -- folding --------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", resources.FAMILIES)
def test_more_coarse_out_never_fewer_dsps(family):
    graph, layer = _conv()
    for ci in (1, 2, 4, 8):
        for f in (1, 3, 9):
            dsps = [layer_resources(graph, layer, Folding(ci, co, f), family).dsp
                    for co in (1, 2, 4, 8, 16)]
            assert dsps == sorted(dsps), (ci, f, dsps)


@pytest.mark.parametrize("family", resources.FAMILIES)
def test_every_folding_is_priced(family):
    graph, layer = _conv()
    for folding in foldings(graph, layer):
        found = layer_resources(graph, layer, folding, family)
        assert min(found.as_dict().values()) >= 0 and found.lut > 0 and found.ff > 0


# -- the committed calibration --------------------------------------------------------------------


def _calibration_blocks():
    grid = {case["id"]: case for case in calibration.cases(RESULTS["grid"] == "quick")}
    for family, entry in RESULTS["families"].items():
        for block in entry["blocks"]:
            yield family, grid[block["id"]], block


@pytest.mark.parametrize("family", resources.FAMILIES)
def test_calibration_predictions_reproduced(family):
    for found_family, case, block in _calibration_blocks():
        if found_family != family:
            continue
        features = calibration.model_features(case, family)
        assert resources.price(features, family).as_dict() == block["predicted"], case["id"]


def test_calibration_dsp_and_bram_exact():
    wrong = [(family, case["id"], block["measured"], block["predicted"])
             for family, case, block in _calibration_blocks()
             if any(block["measured"][r] != block["predicted"][r] for r in ("dsp", "bram"))]
    assert not wrong


def test_calibration_probes_agree():
    disagree = [(family, p["probe"]) for family, entry in RESULTS["families"].items()
                for p in entry.get("probes", []) if not p["agrees"]]
    assert not disagree


# -- re-synthesis ---------------------------------------------------------------------------------


def _held_out_small():
    """Per family, the three quickest held-out blocks the committed calibration predicts within
    tolerance (so that a change of Yosys or of the model that breaks them fails; the blocks
    outside tolerance are listed in the results file)."""
    picked = []
    for family, entry in RESULTS["families"].items():
        held = sorted((b for b in entry["blocks"] if b["split"] == "held_out"
                       and all(e["ok"] for e in b["error"].values())),
                      key=lambda b: b["seconds"])
        picked += [(family, b["id"]) for b in held[:3]]
    return picked


@pytest.mark.slow
@pytest.mark.parametrize("family, case_id", _held_out_small())
def test_held_out_blocks_within_tolerance(family, case_id):
    case = next(c for c in calibration.cases(RESULTS["grid"] == "quick") if c["id"] == case_id)
    measured, _, _ = calibration.measure((case, family))
    predicted = resources.price(calibration.model_features(case, family), family).as_dict()
    errors = calibration.errors(measured, predicted)
    failed = {r: (measured[r], predicted[r]) for r, e in errors.items() if not e["ok"]}
    assert not failed, failed
