"""The host driver of a Zynq build: it runs on the board's ARM cores, keeps feature maps and
weights in the processing system's DRAM, loads each partition's bitstream in turn and runs it
over the batch through the memory top's registers (`dnnhw.memory.top.MemoryAccelerator`).

The register sequence of one run is a generator, `run_steps`, of `Write` and `Poll` steps.
On the board `Board.execute` performs them on the memory-mapped registers; in simulation the
cocotb test of the memory top performs the very same steps over AXI4-Lite (tests/memory), so
the sequence a user's board runs is the one verified against the RTL.

`batch_runs` turns a build's schedule.json into the runs of one batch: for each partition, for
each of its weight chunks, (bitstream, weights, input region, output region). Feature maps wait
in two DRAM regions used in turn (`schedule.json`'s buffers); a reloading partition's chunks
each write their own region, and the host joins them along the channels (`join_chunks`) before
the next partition reads them: the memory top writes whole frames, not strided chunks.

Plain Python and NumPy besides dnnhw itself (its memory layout and register map; dnnhw and
Amaranth are pure Python, so `pip install` on the board's Linux is enough); PYNQ (`pynq.Overlay`, `pynq.allocate`, `pynq.MMIO`) where installed,
else /dev/mem and the kernel's fpga_manager with a reserved DRAM region.
"""

import json
import pathlib
from typing import NamedTuple

import numpy as np

from ..memory.control import BATCH, BUFFERS as FIRST_BUFFER, CONTROL, MODE_SHIFT, STATUS


__all__ = ["Write", "Poll", "run_steps", "Run", "batch_runs", "join_chunks", "Board"]

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


def join_chunks(chunks, pixels):
    """The output frames (B, pixels · C) in stream order of a layer computed in chunks of its
    C channels: `chunks`, each (B, pixels · C/wr) frames of its channels, in chunk order."""
    parts = [np.asarray(c).reshape(len(c), pixels, -1) for c in chunks]
    return np.concatenate(parts, axis=2).reshape(len(parts[0]), -1)


class Board:
    """The board's side: the memory top's registers, one contiguous DRAM area, and bitstream
    loading; PYNQ's where it is installed, else /dev/mem (`control_address`: the AXI4-Lite
    port's address in Vivado's address map; `dram_address`: a region reserved for dnnhw in the
    device tree) and fpga_manager."""

    def __init__(self, dram_bytes, control_address=0x43C00000, dram_address=None):
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

    def program(self, bitstream):
        """Load `bitstream` (a .bit from the partition's Vivado run) into the fabric; the DRAM
        keeps its contents (the processing system's controller is not reconfigured)."""
        bitstream = pathlib.Path(bitstream)
        if self._pynq is not None:
            self._pynq.Overlay(str(bitstream), download=True)
            self.registers = self._pynq.MMIO(self.control_address, 0x1000).array
        else:
            firmware = pathlib.Path("/lib/firmware") / bitstream.name
            firmware.write_bytes(bitstream.read_bytes())
            pathlib.Path("/sys/class/fpga_manager/fpga0/firmware").write_text(bitstream.name)
            self.registers = np.frombuffer(self._map(self.control_address, 0x1000), dtype=np.uint32)

    def execute(self, steps, timeout_s=60.0):
        """Perform `run_steps`' steps on the registers."""
        import time
        for step in steps:
            if isinstance(step, Write):
                self.registers[step.offset // 4] = step.value
                continue
            deadline = time.monotonic() + timeout_s
            while not self.registers[step.offset // 4] & step.mask:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the accelerator did not finish within {timeout_s} s")

    def run_batch(self, folder, frames):
        """Run the build in `folder` (its schedule.json, each partition's loads.npy and
        board/*.bit) on `frames`: a (B, elements) array of the first partition's integer
        input frames in stream order, B the schedule's batch or fewer. Returns the last
        partition's output frames, (B, elements)."""
        from ..memory import layout

        folder = pathlib.Path(folder)
        schedule = json.loads((folder / "schedule.json").read_text())
        loads = {p["index"]: np.load(folder / p["folder"] / "design" / "loads.npy")
                 for p in schedule["partitions"] if p["reload"] > 1}
        runs, used = batch_runs(schedule, {k: v.shape[1] * 8 for k, v in loads.items()})
        if used > self.dram_bytes:
            raise ValueError(f"the batch needs {used:,} bytes of DRAM, the area has "
                             f"{self.dram_bytes:,}")
        parts = {p["index"]: p for p in schedule["partitions"]}
        batch, width = len(frames), 64
        first = parts[1]
        self._put(first["memory"]["input"]["offset"],
                  layout.pack(frames, first["bits"]["i"], width))
        for run in runs:
            part = parts[run.index]
            if run.chunk == 0:
                bitstream = next((folder / run.folder / "board").glob("*.bit"), None)
                if bitstream is None:
                    raise FileNotFoundError(f"{run.folder}/board has no bitstream: build it "
                                            "with Vivado from the board folder's plan first")
                self.program(bitstream)
            if run.weights is not None:
                self._put(run.weights, loads[run.index][run.chunk].astype("<u8").tobytes())
            self.execute(run_steps(*(self.dram_address + a for a in (run.input, run.output)),
                                   batch, None if run.weights is None
                                   else self.dram_address + run.weights))
            if run.chunks > 1 and run.chunk == run.chunks - 1:
                self._join(part, [r for r in runs if r.index == run.index], batch, width)
        last = parts[len(parts)]
        elements = int(np.prod(last["output_shape"]))
        return layout.unpack(self.dram[last["memory"]["output"]["offset"]:].tobytes(), batch,
                             elements, last["bits"]["o"], width)

    def _put(self, offset, data):
        self.dram[offset:offset + len(data)] = np.frombuffer(data, dtype=np.uint8)

    def _join(self, part, runs, batch, width):
        """The chunks' output regions of reloading partition `part`, joined along the
        channels into its output region."""
        from ..memory import layout

        c, h, w = part["output_shape"]
        bits = part["bits"]["o"]
        chunk_elements = c // part["reload"] * h * w
        chunks = [layout.unpack(self.dram[r.output:].tobytes(), batch, chunk_elements, bits, width)
                  for r in runs]
        self._put(runs[0].output, layout.pack(join_chunks(chunks, h * w), bits, width))
