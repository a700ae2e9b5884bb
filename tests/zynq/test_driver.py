"""The Zynq host driver's plan of a batch and its register sequence (dnnhw/zynq/driver.py), in
plain Python; the sequence against the RTL is tests/memory's."""

import numpy as np
import pytest

from dnnhw.zynq.driver import (BATCH, CONTROL, LOAD_WEIGHTS, MODE_SHIFT, START, STATUS, Poll,
                               Write, batch_runs, fpga_manager_image, join_chunks, run_steps)


def schedule(reloads, out_bytes=48):
    """A schedule.json of len(reloads) partitions in two 4 KB buffers."""
    parts = [{"index": k + 1, "folder": f"partition-{k + 1}", "reload": r,
              "memory": {"input": {"offset": k % 2 * 4096, "bytes": 1024},
                         "output": {"offset": (k + 1) % 2 * 4096, "bytes": out_bytes * 8}}}
             for k, r in enumerate(reloads)]
    return {"buffers": {"count": 2, "bytes": 4096}, "partitions": parts}


def test_runs_of_a_batch_with_a_reloading_partition():
    runs, used = batch_runs(schedule([1, 3, 1]), {2: 800})
    assert [(r.index, r.chunk) for r in runs] == [(1, 0), (2, 0), (2, 1), (2, 2), (3, 0)]
    first, *chunks, last = runs
    assert (first.input, first.output, first.weights) == (0, 4096, None)
    assert [c.input for c in chunks] == [4096] * 3
    assert [c.output for c in chunks] == [0, 8192, 8192 + 384]      # chunk 0: the partition's
    assert [c.weights for c in chunks] == [8192 + 768 + 800 * k for k in range(3)]
    assert (last.input, last.output) == (0, 4096) and used == 8192 + 768 + 2400


def test_a_host_link_schedule_is_refused():
    with pytest.raises(ValueError, match="keeps feature maps on the host"):
        batch_runs({"buffers": None, "partitions": []}, {})


def test_join_chunks_interleaves_channels_per_pixel():
    full = np.arange(2 * 3 * 6).reshape(2, 3 * 6)                  # 2 frames, 3 pixels, 6 channels
    chunks = [full.reshape(2, 3, 6)[:, :, k * 2:(k + 1) * 2].reshape(2, -1) for k in range(3)]
    np.testing.assert_array_equal(join_chunks(chunks, 3), full)


def test_join_chunks_keeps_the_shared_channels_once():
    """A reloading partition that passes a skip tensor through: each chunk writes the skip's
    channels, then its own."""
    full = np.arange(2 * 3 * 7).reshape(2, 3, 7)                    # 1 shared + 3 chunks of 2
    chunks = [np.concatenate([full[:, :, :1], full[:, :, 1 + 2 * k:3 + 2 * k]], axis=2)
              for k in range(3)]
    joined = join_chunks([c.reshape(2, -1) for c in chunks], 3, shared=1)
    np.testing.assert_array_equal(joined, full.reshape(2, -1))


def test_register_steps():
    steps = list(run_steps(0x1000_0000, 0x1800_0000, 8, weights_address=0x1F00_0000))
    assert steps == [Write(0x10, 0x1000_0000), Write(0x14, 0x1800_0000), Write(0x18, 0x1F00_0000),
                     Write(BATCH, 8), Write(CONTROL, START | LOAD_WEIGHTS << MODE_SHIFT),
                     Poll(STATUS, 2)]
    assert list(run_steps(0, 64, 1))[-2:] == [Write(CONTROL, START), Poll(STATUS, 2)]
    with pytest.raises(ValueError, match="at least one frame"):
        list(run_steps(0, 64, 0))
    with pytest.raises(ValueError, match="does not fit 32 bits"):
        list(run_steps(1 << 32, 0, 1))


def _field(key, value):
    return key + len(value).to_bytes(2, "big") + value


def test_fpga_manager_image_strips_the_bit_header_and_swaps_words():
    data = bytes.fromhex("ffffffff" * 2 + "000000bb" + "11220044" + "aa995566" + "20000000")
    header = (b"\x00\x09" + b"\x0f\xf0" * 4 + b"\x00" + b"\x00\x01"
              + _field(b"a", b"system_wrapper;UserID=0XFFFFFFFF;Version=2020.2\x00")
              + _field(b"b", b"7z020clg400\x00") + _field(b"c", b"2026/12/03\x00")
              + _field(b"d", b"06:30:00\x00") + b"e" + len(data).to_bytes(4, "big"))
    image = fpga_manager_image(header + data)
    assert image == bytes.fromhex("ffffffff" * 2 + "bb000000" + "44002211" + "665599aa"
                                  + "00000020")
    with pytest.raises(ValueError, match="cut short"):
        fpga_manager_image(header + data[:-4])
    with pytest.raises(ValueError, match="not a Xilinx .bit file"):
        fpga_manager_image(b"\x00\x09" + bytes(9) + b"\x00\x01" + b"zzzz")
