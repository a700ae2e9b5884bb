"""`dnnhw.memory.layout`: the bytes of a batch of feature maps, by hand and round trips."""

import numpy as np
import pytest

from dnnhw.memory import layout


# blocks whose constructor raised in the gearbox tests are freed during these
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def test_sizes():
    assert [layout.element_bytes(b) for b in (1, 4, 8, 9, 16)] == [1, 1, 1, 2, 2]
    assert layout.frame_words(432, 8, 64) == 54
    assert layout.frame_words(13, 8, 64) == 2              # 13 bytes: one full word and 5 bytes
    assert layout.frame_words(13, 16, 64) == 4             # 26 bytes
    assert layout.frame_bytes(13, 16, 64) == 32
    assert layout.frame_bytes(13, 16, 128) == 32
    assert layout.frame_bytes(13, 12, 256) == 32


def test_pack_by_hand():
    """Little-endian two's complement, sign-extended to whole bytes, each frame on a word, the
    padding zero."""
    frames = np.array([[1, -1, 2], [-128, 127, -2]])
    assert layout.pack(frames, 8, 32) == bytes([1, 0xFF, 2, 0, 0x80, 0x7F, 0xFE, 0])
    assert layout.pack([[-2, 0x1234, 5]], 16, 64) == bytes(
        [0xFE, 0xFF, 0x34, 0x12, 5, 0, 0, 0])
    assert layout.pack([[-3, 7]], 12, 32) == bytes([0xFD, 0xFF, 7, 0])
    assert layout.pack(np.zeros((0, 5), dtype=int), 8, 64) == b""


@pytest.mark.parametrize("bits, data_width", [(8, 64), (4, 8), (12, 64), (16, 32), (16, 1024)])
def test_round_trip(bits, data_width):
    rng = np.random.default_rng(bits + data_width)
    frames = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(3, 37))
    data = layout.pack(frames, bits, data_width)
    assert len(data) == 3 * layout.frame_bytes(37, bits, data_width)
    np.testing.assert_array_equal(layout.unpack(data, 3, 37, bits, data_width), frames)
    np.testing.assert_array_equal(layout.unpack(data + b"\x55" * 9, 2, 37, bits, data_width),
                                  frames[:2])


def test_unpack_uses_the_low_bits():
    """A reader ignores the bits of an element above `bits`."""
    assert layout.unpack(bytes([0xF3, 0x0F, 0, 0]), 1, 2, 4, 32).tolist() == [[3, -1]]
    assert layout.unpack(bytes([0x01, 0xF8, 0, 0]), 1, 1, 12, 32).tolist() == [[-2047]]


def test_stream_order():
    maps = np.arange(2 * 3 * 2 * 4).reshape(2, 3, 2, 4)           # (B, C, H, W)
    frames = layout.stream_order(maps)
    assert frames.shape == (2, 24)
    assert frames[1, :6].tolist() == [maps[1, c, 0, w] for w in range(2) for c in range(3)]
    np.testing.assert_array_equal(layout.from_stream_order(frames, (3, 2, 4)), maps)


@pytest.mark.parametrize("call, message", [
    (lambda: layout.pack([[128]], 8, 64), "pack: values must lie in -128..127 for 8 bits"),
    (lambda: layout.pack([[0]], 16, 8),
     "pack: 16-bit elements take 2 bytes, which do not divide 8-bit words"),
    (lambda: layout.pack([[0]], 8, 48),
     "pack: data width 48 is not a power of two from 8 to 1024 bits"),
    (lambda: layout.unpack(b"\0" * 8, 2, 3, 8, 64), "unpack: 2 frames take 16 bytes, got 8"),
    (lambda: layout.check_layout("X", 0, 64), "X: elements must have at least 1 bit, got 0"),
])
def test_errors(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert str(error.value) == message
