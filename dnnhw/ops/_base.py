"""The contract of an op module: what the rest of dnnhw may ask of a canonical op."""

from ..errors import UserError
from ..folding import Folding
from ..ir import Format


__all__ = ["Op", "LanesOp", "KeepsFormat", "UnitFormat", "divisors", "stream_shift"]


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


class Op:
    """One canonical op (`Layer.op` = `name`): everything dnnhw knows about it.

    A subclass sets `name` and `attrs` and provides the methods below that raise
    NotImplementedError; the others have defaults that suit an op without weights. `geometry`
    returns a frozen record with at least `cycles_per_frame` and `latency`; it is the formula the
    op's block reads too, so the model and the hardware cannot disagree.

    Attributes
    ----------
    name : str
        The op's name in the graph IR.
    attrs : str
        Its attributes (`Layer.attrs`), for the documentation.
    weighted : bool
        It has weights, multipliers and the engine's `Implementation` options (conv, fc).
    grouped : bool
        Its foldings may set `coarse_group` (conv); every other op's is 1.
    onnx : dict
        ONNX op type → attribute reader, for an elementwise op that a single-input ONNX node
        maps to one-to-one: the reader takes ``attr(name, default)`` and returns the layer's
        attrs. Ops the frontend maps itself (convolutions, pooling, ...) leave it empty.
    scaled_formats : bool
        It computes on `Format.scaled` formats (a quantized model's scales that are not powers
        of two, its zero points' ranges) as golden defines it.
    """
    name = None
    attrs = ""
    weighted = False
    grouped = False
    onnx = {}
    scaled_formats = False

    # -- parallelism ---------------------------------------------------------------------------

    def foldings(self, graph, layer):
        """Every valid folding of `layer`, sorted by (coarse_in, coarse_out, fine)."""
        raise NotImplementedError

    def check_parallelism(self, graph, layer, folding):
        """Raise ValueError unless coarse_in, coarse_out and fine are valid for `layer`."""
        raise NotImplementedError

    def in_lanes(self, folding):
        """Channels per input beat."""
        return folding.coarse_in

    def out_lanes(self, folding):
        """Channels per output beat."""
        return folding.coarse_out

    # -- rate and latency ----------------------------------------------------------------------

    def geometry(self, graph, layer, folding):
        """The block's geometry record (`cycles_per_frame`, `latency`, ...) for a checked
        `folding`."""
        raise NotImplementedError

    def timing(self, graph, layer, folding, ins):
        """Batch-1 pixel timing: the (first, last) beat cycles of every output pixel, given
        those of every input (`dnnhw.pixel_timing`)."""
        raise NotImplementedError

    def window(self, graph, layer, folding):
        """(its input `geometry.Window`, whether the engine rather than the window bounds its
        rate) for a layer that reads through a sliding window, else None (`dnnhw.interconnect`
        sizes the queue before it)."""
        return None

    # -- resources -----------------------------------------------------------------------------

    def spec(self, graph, layer):
        """A hashable record of everything the block depends on besides the folding."""
        raise NotImplementedError

    def features(self, spec, folding, family):
        """The block's `resources.Features` on `family`."""
        raise NotImplementedError

    # -- arithmetic ----------------------------------------------------------------------------

    def run(self, graph, layer, xs):
        """The layer on integer inputs `xs` (one (C, H, W) array per input), as golden defines
        it."""
        raise NotImplementedError

    def run_float(self, graph, layer, xs):
        """The layer on float inputs, with the float weights."""
        raise NotImplementedError

    def macs(self, graph, layer):
        """Multiply-accumulates of one frame."""
        return 0

    # -- quantization --------------------------------------------------------------------------

    def output_format(self, graph, layer, bits, measured):
        """The output's `Format` at `bits`, given `measured()`: the format its calibrated range
        (or a QDQ model) gives. Default: that one."""
        return measured()

    def quantize_weights(self, graph, layer, fmt_in, fmt_out, bits, per_channel):
        """The layer's `WeightQuant`, or None for an op without weights."""
        return None

    def check_formats(self, graph, layer):
        """Raise UserError unless the op computes on the layer's formats."""
        scaled = [graph.formats[t] for t in (*layer.inputs, layer.output)
                  if graph.formats[t].scaled]
        if scaled and not self.scaled_formats:
            raise UserError(f"layer '{layer.name}' ({layer.op}): format {scaled[0]} has a scale "
                            "that is not a power of two or a zero point's range; dnnhw computes "
                            "on such formats in conv, fc, add, concat, pooling, ReLU, clamp, "
                            "LeakyReLU, slice and upsampling only")

    # -- partitions ----------------------------------------------------------------------------

    def reload_factors(self, graph, layer):
        """The weights-reloading factors wr > 1 the layer allows (`dnnhw.partition`): its output
        channels split into wr equal chunks, one per run, each run with only its chunk's
        weights on chip. Default: none."""
        return []

    # -- hardware ------------------------------------------------------------------------------

    def block(self, graph, layer, folding):
        """The Amaranth component computing `layer` (imported here, so that the model never
        imports Amaranth)."""
        raise NotImplementedError


class LanesOp(Op):
    """An op without weights whose folding is its lanes: coarse_in = coarse_out dividing the C
    of every input, fine = 1."""

    def _channels(self, graph, layer):
        return [graph.shapes[t].c for t in layer.inputs]

    def foldings(self, graph, layer):
        channels = self._channels(graph, layer)
        return [Folding(n, n) for n in divisors(min(channels)) if all(c % n == 0 for c in channels)]

    def check_parallelism(self, graph, layer, folding):
        ci, co, f = folding.coarse_in, folding.coarse_out, folding.fine
        channels = self._channels(graph, layer)
        if ci != co or f != 1 or any(c % ci for c in channels):
            raise ValueError(f"'{layer.name}' ({layer.op}): needs coarse_in = coarse_out dividing "
                             f"{channels} channels and fine = 1, got {folding}")


class KeepsFormat:
    """Mixin: the output keeps the input's format (the op cannot grow its range)."""
    scaled_formats = True

    def output_format(self, graph, layer, bits, measured):
        return graph.formats[layer.inputs[0]]


class UnitFormat:
    """Mixin: the output is in (bits, bits - 1), a value in [-1, 1)."""

    def output_format(self, graph, layer, bits, measured):
        return Format(bits, bits - 1)


def stream_shift(first, last, cycles):
    """The (first, last) beat timing of an elementwise block `cycles` deep, given its input's."""
    return first + cycles, last + cycles
