"""The performance model of a partitioned design: one batch through every partition.

Each partition p has its plan's initiation interval II_p and batch-1 latency D_p (cycles,
`dnnhw.model`), moves in_p + out_p bits of feature map per frame and run, and with weights
reloading wr_p > 1 loads W_p / wr_p bits of weights before each of its wr_p runs. With β the
bits per cycle the transfer path sustains (`Path`):

    β_p   = (in_p + out_p) / II_p                     bits per cycle the partition asks for
    s_p   = max(1, β_p / β)                           its slow-down by bandwidth
    C_p   = (ceil(II_p · s_p) · B + D_p) · wr_p  +  wr_p · (W_p / wr_p) / min(β, 64)
                                                      (the second term only with reloading:
                                                      loads do not overlap; W_p counts the
                                                      load's 64-bit bus words, and the engine
                                                      takes one a cycle, `geometry.WeightLoad`)
    T     = Σ_p C_p / f  +  P · t_reconf  (P > 1)     one batch of B frames, in seconds
    fps   = B / T

fpgaConvNet's model (its `Partition` metrics) is the same but for its weights (it loads wr - 1
chunks, keeping one in the bitstream) and where its figures come from: here the board's
(`dnnhw.boards.Memory`, `Board.reconfiguration_s`).

The path: where the DRAM survives a reconfiguration (Zynq's processing-system DDR), feature
maps and weights go through it, both directions sharing its sustained bandwidth. Where it does
not (a controller in the fabric: Arty, ULX3S) or there is none, the host keeps the feature maps
between partitions and they travel over the host link: a UART carries both directions at once,
so the slower direction counts. One partition alone keeps today's streams and loads only its
reloaded weights, from the DRAM where the board has one.
"""

import math
from dataclasses import dataclass, field, replace

from .geometry import LOAD_BITS
from .link.baud import baud_for, bytes_per_s


__all__ = ["Path", "PartitionCost", "PartitionTime", "SchedulePerf", "path", "schedule",
           "dram_bytes"]


@dataclass(frozen=True)
class Path:
    """Where a partition's feature maps and weights travel, and how fast.

    Attributes
    ----------
    name : str
        "DRAM" or "host link".
    bits_per_cycle : float
        Sustained bits per accelerator clock cycle (both directions together for DRAM, each
        direction for a duplex link).
    duplex : bool
        Reading and writing at once, each at `bits_per_cycle` (a UART).
    """
    name: str
    bits_per_cycle: float
    duplex: bool

    def demand(self, in_bits, out_bits):
        """Bits that share the path for a transfer of `in_bits` in and `out_bits` out."""
        return max(in_bits, out_bits) if self.duplex else in_bits + out_bits


def path(board, clock_mhz, partitions):
    """The `Path` of `board` at `clock_mhz` for a design of `partitions` partitions. None when
    the board has no memory and `partitions` is 1 (nothing to load)."""
    hz = clock_mhz * 1e6
    memory = board.memory
    if memory is not None and (partitions == 1 or memory.survives_reconfiguration):
        return Path("DRAM", memory.bytes_per_s * 8 / hz, False)
    if partitions == 1:
        return None
    if board.host_link == "uart":
        return Path("host link", bytes_per_s(baud_for(hz)) * 8 / hz, True)
    raise ValueError(f"board '{board.name}': no path for feature maps between partitions")


@dataclass(frozen=True)
class PartitionCost:
    """What a partition needs, per run (`reload` runs per batch).

    Attributes
    ----------
    cycles_per_frame, latency : int
        Its plan's initiation interval and batch-1 latency, in cycles.
    in_bits, out_bits : int
        Feature-map bits read and written per frame and run.
    weight_bits : int
        Bits of the weight load before each run, as 64-bit bus words (0 without reloading).
    reload : int
        Runs per batch, wr.
    """
    cycles_per_frame: int
    latency: int
    in_bits: int
    out_bits: int
    weight_bits: int = 0
    reload: int = 1


@dataclass(frozen=True)
class PartitionTime:
    """One partition's share of a batch, in cycles: `compute` = (II·B + D)·wr, `stall` the
    cycles bandwidth adds to it, `loading` its weight loads; `slowdown` is s_p."""
    compute: int
    stall: int
    loading: int
    slowdown: float

    @property
    def cycles(self):
        return self.compute + self.stall + self.loading


@dataclass(frozen=True)
class SchedulePerf:
    """One batch through a partitioned design (`schedule`).

    Attributes
    ----------
    batch : int
    batch_s : float
        Seconds from the first frame in to the last frame out: also each frame's latency, since
        every frame waits for the whole batch.
    fps : float
        Frames per second, B / batch_s.
    reconfiguration_s : float
        Of batch_s, loading bitstreams (P · t_reconf when P > 1).
    partitions : list of PartitionTime
    path : Path or None
    binding : str
        What bounds the batch most: "compute", "bandwidth", "weight loading" or
        "reconfiguration" (the largest share of batch_s).
    """
    batch: int
    batch_s: float
    fps: float
    reconfiguration_s: float
    partitions: list = field(default_factory=list)
    path: Path | None = None
    binding: str = "compute"

    def shares(self, clock_mhz):
        """{compute, bandwidth, weight loading, reconfiguration}: fractions of batch_s."""
        hz = clock_mhz * 1e6
        parts = {"compute": sum(p.compute for p in self.partitions) / hz,
                 "bandwidth": sum(p.stall for p in self.partitions) / hz,
                 "weight loading": sum(p.loading for p in self.partitions) / hz,
                 "reconfiguration": self.reconfiguration_s}
        return {k: v / self.batch_s for k, v in parts.items()}


def partition_time(cost, batch, route):
    """`cost`'s `PartitionTime` over `batch` frames on the `Path` `route` (None: no limit)."""
    compute = (cost.cycles_per_frame * batch + cost.latency) * cost.reload
    if route is None:
        return PartitionTime(compute, 0, 0, 1.0)
    need = route.demand(cost.in_bits, cost.out_bits) / cost.cycles_per_frame
    slowdown = max(1.0, need / route.bits_per_cycle)
    stall = (math.ceil(cost.cycles_per_frame * slowdown) - cost.cycles_per_frame) * batch * cost.reload
    rate = min(route.bits_per_cycle, LOAD_BITS)
    loading = math.ceil(cost.reload * cost.weight_bits / rate) if cost.reload > 1 else 0
    return PartitionTime(compute, stall, loading, slowdown)


def schedule(costs, board, clock_mhz, batch):
    """The `SchedulePerf` of partitions with `costs` (a list of `PartitionCost`, in order) on
    `board` at `clock_mhz`, for batches of `batch` frames.

    Raises
    ------
    ValueError
        If `batch` is not positive, several partitions need a board without a
        reconfiguration figure, or weights reloading a board without memory.
    """
    if batch < 1:
        raise ValueError(f"the batch must be at least 1 frame, got {batch}")
    many = len(costs) > 1
    if many and board.reconfiguration_s is None:
        raise ValueError(f"board '{board.name}' has no figure for loading a bitstream, so it "
                         "cannot run several partitions")
    route = path(board, clock_mhz, len(costs))
    if not many:                         # one partition streams over today's host link
        costs = [replace(c, in_bits=0, out_bits=0) for c in costs]
        if route is None and costs[0].reload > 1:
            raise ValueError(f"board '{board.name}' has no memory to reload weights from")
    times = [partition_time(c, batch, route) for c in costs]
    reconfiguration = len(costs) * board.reconfiguration_s if many else 0.0
    batch_s = sum(t.cycles for t in times) / (clock_mhz * 1e6) + reconfiguration
    perf = SchedulePerf(batch, batch_s, batch / batch_s, reconfiguration, times, route)
    shares = perf.shares(clock_mhz)
    return replace(perf, binding=max(shares, key=shares.get))


def dram_bytes(costs, batch):
    """Bytes of DRAM a batch needs: two feature-map buffers (one read while the other is
    written), each as large as the largest partition boundary, B frames deep, and every
    reloaded layer's weights."""
    buffer = max(max(c.in_bits, c.out_bits * c.reload) for c in costs)
    weights = sum(c.weight_bits * c.reload for c in costs)
    return math.ceil((2 * batch * buffer + weights) / 8)
