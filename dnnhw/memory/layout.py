"""How a batch of feature maps lies in memory: the layout `MemoryAccelerator` reads and writes,
in plain Python (NumPy, no Amaranth), for the tests and the host driver.

A frame is the tensor's values in stream order (pixel by pixel, row-major, channels innermost;
DESIGN.md, "Streams"). Each value is a little-endian two's-complement integer of
``element_bytes(bits) = ceil(bits / 8)`` bytes, sign-extended from `bits`: element j of a frame
is at byte offset ``j · element_bytes``. The frames of a batch follow one another, each
starting on a bus-word boundary: a frame takes ``frame_words`` words of ``data_width`` bits,
the bytes after its last element zero. Frame f of a buffer at address A starts at
``A + f · frame_bytes``.

Nothing here depends on the stream's lanes, so partition k's writer and partition k + 1's
reader agree whatever their lanes are; the data width enters only through the padding. An
element never straddles two words: the element bytes (1 or 2 for dnnhw's 4 to 16 bits) must
divide the word's bytes (`check_layout`). A reader uses the low `bits` of each element and
ignores the bytes above them.
"""

import numpy as np


__all__ = ["element_bytes", "check_layout", "frame_words", "frame_bytes", "stream_order",
           "from_stream_order", "pack", "unpack"]


def element_bytes(bits):
    """Bytes of one element of `bits` bits: ceil(bits / 8)."""
    return -(-bits // 8)


def check_layout(block, bits, data_width):
    """Raise ValueError, naming `block`, unless elements of `bits` bits lie whole in words of
    `data_width` bits (a power of two from 8 to 1024)."""
    if data_width not in [8 << k for k in range(8)]:
        raise ValueError(f"{block}: data width {data_width} is not a power of two from 8 to "
                         f"1024 bits")
    if bits < 1:
        raise ValueError(f"{block}: elements must have at least 1 bit, got {bits}")
    size = element_bytes(bits)
    if data_width % (8 * size):
        raise ValueError(f"{block}: {bits}-bit elements take {size} bytes, which do not divide "
                         f"{data_width}-bit words")


def frame_words(elements, bits, data_width):
    """Bus words of `data_width` bits one frame of `elements` values of `bits` bits takes."""
    return -(-elements * element_bytes(bits) * 8 // data_width)


def frame_bytes(elements, bits, data_width):
    """Bytes from one frame's start to the next's: `frame_words` words."""
    return frame_words(elements, bits, data_width) * data_width // 8


def stream_order(maps):
    """Feature maps (B, C, H, W) → frames (B, H·W·C) in stream order."""
    maps = np.asarray(maps)
    return maps.transpose(0, 2, 3, 1).reshape(len(maps), -1)


def from_stream_order(frames, shape):
    """Frames (B, H·W·C) in stream order → feature maps (B, C, H, W) of `shape` (C, H, W)."""
    c, h, w = shape
    return np.asarray(frames).reshape(-1, h, w, c).transpose(0, 3, 1, 2)


def pack(frames, bits, data_width):
    """Frames (B, elements) of signed `bits`-bit integers, in stream order → their bytes.

    Raises
    ------
    ValueError
        If a value does not fit in `bits` signed bits, or the layout is impossible.
    """
    check_layout("pack", bits, data_width)
    frames = np.asarray(frames, dtype=np.int64)
    batch, elements = frames.shape
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if frames.size and (frames.min() < lo or frames.max() > hi):
        raise ValueError(f"pack: values must lie in {lo}..{hi} for {bits} bits")
    size = element_bytes(bits)
    body = frames.astype(f"<i{size}" if size > 1 else "i1").view(np.uint8).reshape(batch, elements * size)
    out = np.zeros((batch, frame_bytes(elements, bits, data_width)), dtype=np.uint8)
    out[:, :body.shape[1]] = body
    return out.tobytes()


def unpack(data, batch, elements, bits, data_width):
    """The first `batch` frames of `elements` values of `bits` bits in `data` (bytes, from the
    buffer's start) → (batch, elements) int64, each value the low `bits` of its element,
    sign-extended.

    Raises
    ------
    ValueError
        If `data` is shorter than `batch` frames, or the layout is impossible.
    """
    check_layout("unpack", bits, data_width)
    stride, size = frame_bytes(elements, bits, data_width), element_bytes(bits)
    if len(data) < batch * stride:
        raise ValueError(f"unpack: {batch} frames take {batch * stride} bytes, got {len(data)}")
    raw = np.frombuffer(bytes(data[:batch * stride]), dtype=np.uint8).reshape(batch, stride)
    raw = raw[:, :elements * size].reshape(batch, elements, size).astype(np.int64)
    values = (raw << (8 * np.arange(size))).sum(axis=2) & ((1 << bits) - 1)
    return np.where(values >> (bits - 1), values - (1 << bits), values)
