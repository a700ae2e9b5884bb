"""The defaults of dnnhw's options, in one place: the command line shows these, the library's
functions take them, and the report falls back on them."""

__all__ = ["BITS", "TOLERANCE", "CAP", "OBJECTIVE", "SEED", "FRAMES", "STALL"]

#: Weight and activation bits (--bits).
BITS = 8

#: Top-1 accuracy `--layer-bits auto` may lose against --bits throughout, as a fraction
#: (--tolerance).
TOLERANCE = 0.01

#: Fraction of each of the board's resources a design may use (--cap).
CAP = 0.8

#: What the DSE optimises, "throughput" or "latency" (--objective).
OBJECTIVE = "throughput"

#: Seed of the DSE's stochastic search (--seed).
SEED = 0

#: Frames `dnnhw verify` simulates when neither --frames nor --data says otherwise.
FRAMES = 8

#: Probability of a stalled cycle on each stream in verify's stalled run (--stall).
STALL = 0.3
