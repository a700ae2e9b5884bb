"""The host driver of a Zynq build: it runs on the board's ARM cores, keeps feature maps and
weights in the processing system's DRAM, loads each partition's bitstream in turn and runs it
over the batch through the memory top's registers (`dnnhw.memory.top.MemoryAccelerator`).

The register sequence of one run is a generator, `run_steps`, of `Write` and `Poll` steps.
`BatchRunner.run_batch` runs a whole batch through four operations (load a bitstream, perform
the steps, write and read DRAM): `Board` does them on the board (memory-mapped registers); the
tests (tests/zynq) do them on a simulation of each partition's memory top (cocotb +
Verilator, AXI4-Lite from cocotbext-axi, the DRAM an `AxiRam`), so the sequence a user's board
runs is the one verified against the RTL.

`batch_runs` turns a build's schedule.json into the runs of one batch: for each partition, for
each of its weight chunks, (bitstream, weights, input region, output region). Feature maps wait
in two DRAM regions used in turn (`schedule.json`'s buffers); a reloading partition's chunks
each write their own region, and the host joins them along the channels (`join_chunks`) before
the next partition reads them: the memory top writes whole frames, not strided chunks.

Plain Python and NumPy besides dnnhw itself (its memory layout and register map; dnnhw and
Amaranth are pure Python, so `pip install` on the board's Linux is enough); PYNQ
(`pynq.Overlay`, `pynq.allocate`, `pynq.MMIO`) where installed, else /dev/mem and the
kernel's fpga_manager with a reserved DRAM region.
"""

import json
import pathlib
from typing import NamedTuple

import numpy as np

from ..memory import layout
from ..memory.control import BATCH, BUFFERS as FIRST_BUFFER, CONTROL, MODE_SHIFT, STATUS


__all__ = ["CONTROL_ADDRESS", "Write", "Poll", "run_steps", "Run", "batch_runs",
           "single_schedule", "join_chunks", "BatchRunner", "Board", "fpga_manager_image"]

#: The memory top's AXI4-Lite port in the block design's address map (`zynq.board`).
CONTROL_ADDRESS = 0x43C00000
#: The memory top's data width (`zynq.board`): 64-bit HP ports.
_WORD_BITS = 64

#: The memory top's buffer registers (`ControlRegisters`' default buffers, 32-bit addresses).
BUFFERS = {name: FIRST_BUFFER + 4 * k for k, name in enumerate(("input", "output", "weights"))}
START, DONE = 1 << 0, 1 << 1    # CONTROL and STATUS bits
LOAD_WEIGHTS = 1 << 0           # MODE bit: load the weights before the batch


class Write(NamedTuple):
    """Write `value` to the 32-bit register at byte `offset`."""
    offset: int
    value: int


class Poll(NamedTuple):
    """Read the register at `offset` until ``value & mask`` is non-zero."""
    offset: int
    mask: int


def run_steps(input_address, output_address, batch, weights_address=None):
    """The register steps of one run: buffer addresses, BATCH, START (with the weight load
    where `weights_address` is given), then poll DONE."""
    if batch < 1:
        raise ValueError(f"a run needs at least one frame, got batch {batch}")
    addresses = {"input": input_address, "output": output_address, "weights": weights_address}
    for name, address in addresses.items():
        if address is not None:
            if not 0 <= address < 1 << 32:
                raise ValueError(f"{name} address {address:#x} does not fit 32 bits")
            yield Write(BUFFERS[name], address)
    yield Write(BATCH, batch)
    mode = LOAD_WEIGHTS if weights_address is not None else 0
    yield Write(CONTROL, START | mode << MODE_SHIFT)
    yield Poll(STATUS, DONE)


class Run(NamedTuple):
    """One run of a batch: partition `index` (1-based, its `folder`), weight `chunk` of
    `chunks` (its offset in the weights area, or None without reloading), reading the
    `input` region and writing the `output` region (byte offsets from the DRAM base)."""
    index: int
    folder: str
    chunk: int
    chunks: int
    weights: int | None
    input: int
    output: int


def batch_runs(schedule, load_bytes):
    """The runs of one batch of `schedule` (schedule.json's dict), in order, and the bytes of
    DRAM they use; `load_bytes`: partition index → bytes of one weight load (its loads.npy
    rows as 64-bit words), for reloading partitions.

    Layout from the DRAM base: the two feature-map buffers of schedule.json, then per reloading
    partition a region per extra chunk output (chunk 0 writes the partition's output region),
    then every weight load."""
    buffers = schedule["buffers"]
    if buffers is None:
        raise ValueError("this schedule keeps feature maps on the host (no DRAM that survives "
                         "a reconfiguration): run it with `dnnhw run`, not on a Zynq")
    end = buffers["count"] * buffers["bytes"]
    chunk_regions, weights = {}, {}
    for part in schedule["partitions"]:
        if part["reload"] > 1:
            size = part["memory"]["output"]["bytes"]
            chunk_regions[part["index"]] = [end + k * size for k in range(part["reload"] - 1)]
            end += (part["reload"] - 1) * size
    for part in schedule["partitions"]:
        if part["reload"] > 1:
            weights[part["index"]] = [end + k * load_bytes[part["index"]]
                                      for k in range(part["reload"])]
            end += part["reload"] * load_bytes[part["index"]]
    runs = []
    for part in schedule["partitions"]:
        k, chunks = part["index"], part["reload"]
        outputs = [part["memory"]["output"]["offset"], *chunk_regions.get(k, [])]
        for chunk in range(chunks):
            runs.append(Run(k, part["folder"], chunk, chunks,
                            weights[k][chunk] if chunks > 1 else None,
                            part["memory"]["input"]["offset"], outputs[chunk]))
    return runs, end


def single_schedule(design, batch):
    """The schedule of a build of one design (its design.json's dict) over `batch` frames: one
    partition in the build's own folder, input frames at the DRAM area's start, outputs in
    the next 4 KB-aligned region."""
    sizes = [batch * layout.frame_bytes(int(np.prod(design[f"{port}_shape"])),
                                        design["ports"][port[0]]["bits"], _WORD_BITS)
             for port in ("input", "output")]
    size = -(-max(sizes) // 4096) * 4096
    part = {"index": 1, "folder": ".", "reload": 1, "output_shape": design["output_shape"],
            "bits": {p: design["ports"][p]["bits"] for p in "io"},
            "memory": {"input": {"offset": 0, "bytes": sizes[0]},
                       "output": {"offset": size, "bytes": sizes[1]}}}
    return {"batch": batch, "buffers": {"count": 2, "bytes": size}, "partitions": [part]}


def join_chunks(chunks, pixels, shared=0):
    """The output frames (B, pixels · C) in stream order of a partition whose last layer is
    computed in chunks of its channels: `chunks`, each (B, pixels · C_chunk) frames, in chunk
    order, each starting with the same `shared` channels (the other tensors live after the
    partition, `partition.shared_channels`), kept once."""
    parts = [np.asarray(c).reshape(len(c), pixels, -1) for c in chunks]
    parts = [parts[0], *(p[:, :, shared:] for p in parts[1:])]
    return np.concatenate(parts, axis=2).reshape(len(parts[0]), -1)


class BatchRunner:
    """`run_batch` over four operations a subclass provides: ``program(folder)`` (load the
    bitstream of the partition build in `folder`), ``execute(steps)`` (`run_steps`' steps on
    the registers), ``put(offset, data)`` and ``get(offset, size)`` (bytes of the DRAM area,
    from its start; `dram_address` is its physical address). `Board` is the board's; the
    tests' is a simulation of each partition's memory top."""

    dram_address = 0

    def run_batch(self, folder, frames):
        """Run the build in `folder` (a partitioned build: its schedule.json and each
        partition's folder; or a build of one design) on `frames`: a (B, elements) array of
        the first partition's integer input frames in stream order, B at most the schedule's
        batch. Returns the last partition's output frames, (B, elements)."""
        folder = pathlib.Path(folder)
        path = folder / "schedule.json"
        schedule = (json.loads(path.read_text()) if path.exists()
                    else single_schedule(json.loads((folder / "design" / "design.json")
                                                    .read_text()), len(frames)))
        if len(frames) > schedule["batch"]:
            raise ValueError(f"{len(frames)} frames are more than the schedule's batch of "
                             f"{schedule['batch']} (its buffers' size)")
        loads = {p["index"]: np.load(folder / p["folder"] / "design" / "loads.npy")
                 for p in schedule["partitions"] if p["reload"] > 1}
        runs, self.used = batch_runs(schedule, {k: v.shape[1] * 8 for k, v in loads.items()})
        parts = {p["index"]: p for p in schedule["partitions"]}
        batch, first = len(frames), parts[1]
        self.put(first["memory"]["input"]["offset"],
                 layout.pack(frames, first["bits"]["i"], _WORD_BITS))
        for run in runs:
            if run.chunk == 0:
                self.program(folder / run.folder)
            if run.weights is not None:
                self.put(run.weights, loads[run.index][run.chunk].astype("<u8").tobytes())
            self.execute(run_steps(*(self.dram_address + a for a in (run.input, run.output)),
                                   batch, None if run.weights is None
                                   else self.dram_address + run.weights))
            if run.chunks > 1 and run.chunk == run.chunks - 1:
                self._join(parts[run.index], [r for r in runs if r.index == run.index], batch)
        last = parts[len(parts)]
        return self._frames(last["memory"]["output"]["offset"], batch,
                            int(np.prod(last["output_shape"])), last["bits"]["o"])

    def _frames(self, offset, batch, elements, bits):
        size = batch * layout.frame_bytes(elements, bits, _WORD_BITS)
        return layout.unpack(self.get(offset, size), batch, elements, bits, _WORD_BITS)

    def _join(self, part, runs, batch):
        """The chunks' output regions of reloading partition `part`, joined along the
        channels into its output region."""
        c, h, w = part["chunk_output_shape"]
        bits, elements = part["bits"]["o"], c * h * w
        chunks = [self._frames(r.output, batch, elements, bits) for r in runs]
        joined = join_chunks(chunks, h * w, part["shared_channels"])
        self.put(runs[0].output, layout.pack(joined, bits, _WORD_BITS))


class Board(BatchRunner):
    """The board's side: the memory top's registers, one contiguous DRAM area, and bitstream
    loading; PYNQ's where it is installed, else /dev/mem (`control_address`: the AXI4-Lite
    port's address in Vivado's address map; `dram_address`: a region reserved for dnnhw in the
    device tree) and fpga_manager."""

    def __init__(self, dram_bytes, control_address=CONTROL_ADDRESS, dram_address=None):
        self.control_address, self.dram_bytes = control_address, dram_bytes
        try:
            import pynq
        except ImportError:
            pynq = None
        self._pynq = pynq
        if pynq is not None:
            self.dram = pynq.allocate(shape=(dram_bytes,), dtype=np.uint8)
            self.dram_address = self.dram.physical_address
        else:
            if dram_address is None:
                raise ValueError("without PYNQ, give the physical address of a DRAM region "
                                 "reserved for dnnhw (dram_address)")
            self.dram_address = dram_address
            self.dram = self._map(dram_address, dram_bytes)
        self.registers = None

    @staticmethod
    def _map(address, size):
        import mmap
        import os
        fd = os.open("/dev/mem", os.O_RDWR | os.O_SYNC)
        try:
            return np.frombuffer(mmap.mmap(fd, size, offset=address), dtype=np.uint8)
        finally:
            os.close(fd)

    def program(self, folder):
        """Load the bitstream of the partition build in `folder` (board/dnnhw_zynq.bit, from
        its Vivado run) into the fabric; the DRAM keeps its contents (the processing
        system's controller is not reconfigured)."""
        bitstream = pathlib.Path(folder) / "board" / "dnnhw_zynq.bit"
        if not bitstream.exists():
            raise FileNotFoundError(f"{bitstream} is missing: run Vivado on "
                                    f"{bitstream.parent}/block_design.tcl first")
        if self._pynq is not None:
            self._pynq.Overlay(str(bitstream), download=True)
            self.registers = self._pynq.MMIO(self.control_address, 0x1000).array
        else:
            firmware = pathlib.Path("/lib/firmware") / f"dnnhw-{folder.name}.bin"
            firmware.write_bytes(fpga_manager_image(bitstream.read_bytes()))
            pathlib.Path("/sys/class/fpga_manager/fpga0/firmware").write_text(firmware.name)
            self.registers = self._map(self.control_address, 0x1000).view(np.uint32)

    def execute(self, steps, timeout_s=60.0):
        import time
        for step in steps:
            if isinstance(step, Write):
                self.registers[step.offset // 4] = step.value
                continue
            deadline = time.monotonic() + timeout_s
            while not self.registers[step.offset // 4] & step.mask:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the accelerator did not finish within {timeout_s} s")

    def put(self, offset, data):
        if offset + len(data) > self.dram_bytes:
            raise ValueError(f"the batch needs {offset + len(data):,} bytes of DRAM, the area "
                             f"has {self.dram_bytes:,}")
        self.dram[offset:offset + len(data)] = np.frombuffer(data, dtype=np.uint8)
        if self._pynq is not None:      # the HP ports do not snoop the ARM's caches
            self.dram.flush()

    def get(self, offset, size):
        if self._pynq is not None:
            self.dram.invalidate()
        return self.dram[offset:offset + size].tobytes()


def fpga_manager_image(bit):
    """The configuration data of a Vivado .bit file (`bit`, bytes) as the Linux Zynq
    fpga_manager takes it: the header (length-prefixed fields 'a' to 'd', then 'e' with a
    4-byte length) stripped, every 32-bit word byte-swapped."""
    at = 2 + int.from_bytes(bit[:2], "big") + 2     # a 9-byte field, then 0x0001: key "a" next
    while bit[at:at + 1] != b"e":
        if at >= len(bit) or bit[at:at + 1] not in b"abcd":
            raise ValueError("not a Xilinx .bit file: no configuration data field ('e')")
        at += 3 + int.from_bytes(bit[at + 1:at + 3], "big")
    size = int.from_bytes(bit[at + 1:at + 5], "big")
    data = bit[at + 5:at + 5 + size]
    if len(data) != size or size % 4:
        raise ValueError(f"the .bit file's configuration data is cut short or not whole words "
                         f"({len(data)} of {size} bytes)")
    return np.frombuffer(data, dtype=">u4").astype("<u4").tobytes()
