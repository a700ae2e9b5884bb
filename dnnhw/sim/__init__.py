"""Simulation: cocotb + Verilator runs of Amaranth components against the golden model."""

from .runner import (BenchResult, bench, bench_phases, port_shapes, run_stream_bench,
                     setup_environment, verilate, verilate_text)
from .streams import from_beats, to_beats

__all__ = ["BenchResult", "bench", "bench_phases", "port_shapes", "run_stream_bench",
           "setup_environment", "verilate", "verilate_text", "from_beats", "to_beats"]
