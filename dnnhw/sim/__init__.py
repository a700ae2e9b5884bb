"""Simulation: cocotb + Verilator runs of Amaranth components against the golden model."""

from .runner import BenchResult, run_stream_bench, setup_environment, verilate
from .streams import from_beats, to_beats

__all__ = ["BenchResult", "run_stream_bench", "setup_environment", "verilate", "from_beats", "to_beats"]
