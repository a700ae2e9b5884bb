"""What conv and fc share: the conv engine, its weights and its fused activation."""

from dataclasses import dataclass

import numpy as np

from .. import geometry, golden, quant
from ..ir import WeightQuant
from ..pixel_timing import after
from ._base import Op


__all__ = ["EngineSpec", "WeightedOp"]


@dataclass(frozen=True)
class EngineSpec:
    """What a `ConvEngine` depends on besides its folding and geometry: input, output and weight
    bits, the accumulator's bits, the largest requantization shift `smax` and the largest
    per-channel left shift before it, the clip bounds (lo, hi), the LeakyReLU slope alpha_q or
    None, and the bits of the biases."""
    in_bits: int
    out_bits: int
    weight_bits: int
    acc_bits: int
    smax: int
    max_left: int
    bounds: tuple
    alpha: int | None
    bias_bits: int


class WeightedOp(Op):
    """A layer computed by `ConvEngine`: exact accumulation from bias, requantization, a fused
    activation (`Layer.act`), then saturation (golden's rules); weights per output channel."""
    weighted = True

    def accumulate(self, graph, layer, x, weight, exact_bound=None):
        """The layer's products summed, (C_out, H_out, W_out), without bias."""
        raise NotImplementedError

    def run(self, graph, layer, xs):
        wq, fmt_out = layer.wq, graph.formats[layer.output]
        acc = self.accumulate(graph, layer, xs[0], wq.weight, 1 << (wq.acc_bits - 1))
        y = golden.round_shift(acc + wq.bias[:, None, None],
                               golden.requant_shift(graph, layer)[:, None, None])
        return golden.saturate(golden.activate(y, fmt_out, layer.attrs), fmt_out.bits)

    def run_float(self, graph, layer, xs):
        y = self.accumulate(graph, layer, xs[0], layer.weight)
        return golden.activate_float(y + layer.bias[:, None, None], layer.attrs)

    def quantize_weights(self, graph, layer, fmt_in, fmt_out, bits, per_channel):
        """Weights per output channel from each channel's largest magnitude (`per_channel`),
        or one format for the layer, or the format a QDQ model states; the bias at the
        accumulator's scale; an accumulator that cannot overflow."""
        weight = layer.weight
        c_out = weight.shape[0]
        if "weight_format" in layer.attrs:
            bits, frac = layer.attrs["weight_format"]
        else:
            channel_peaks = np.abs(weight.reshape(c_out, -1)).max(axis=1)
            if per_channel:
                frac = np.array([quant.frac_for(p, bits) for p in channel_peaks])
            else:
                frac = np.full(c_out, quant.frac_for(channel_peaks.max(), bits))
        frac = np.asarray(frac, dtype=np.int64)
        scale = 2.0 ** frac.reshape(-1, *[1] * (weight.ndim - 1))
        weight_q = golden.round_half_up(weight * scale)
        np.clip(weight_q, -(1 << (bits - 1)), (1 << (bits - 1)) - 1, out=weight_q)   # saturate
        bias_q = golden.round_half_up(layer.bias * 2.0 ** (fmt_in.frac + frac))
        fan_in = weight[0].size
        bound = (fan_in * (1 << (fmt_in.bits - 1)) * (1 << (bits - 1))
                 + int(np.abs(bias_q).max(initial=0)))
        return WeightQuant(bits=bits, frac=frac, weight=weight_q, bias=bias_q,
                           acc_bits=bound.bit_length() + 1)

    def reload_factors(self, graph, layer):
        """Every divisor wr > 1 of the output channels, with one group (a grouped conv's chunks
        would each need a slice of the input channels too)."""
        if layer.attrs.get("groups", 1) != 1:
            return []
        filters = graph.out_shape(layer).c
        return [r for r in range(2, filters + 1) if filters % r == 0]

    def weight_load(self, graph, layer, folding):
        """The `geometry.WeightLoad` of the layer's engine under `folding`, made writable."""
        wb, paired = layer.wq.bits, folding.impl.paired
        memories = folding.coarse_out // 2 if paired else folding.coarse_out
        word = folding.fine * folding.coarse_in // folding.coarse_group
        return geometry.weight_load(2 * wb + 1 if paired else wb, memories * word,
                                    self.geometry(graph, layer, folding).engine.steps,
                                    graph.out_shape(layer).c)

    def engine_spec(self, graph, layer):
        """The layer's `EngineSpec`."""
        fmt_in, fmt_out = graph.formats[layer.inputs[0]], graph.formats[layer.output]
        shift = [int(s) for s in np.atleast_1d(golden.requant_shift(graph, layer))]
        shift += layer.attrs.get("shift_range", ())     # a reloaded chunk: every chunk's
        smax = max(shift)
        lo, hi = fmt_out.min, fmt_out.max
        alpha = None
        if layer.act == "relu":
            lo = 0
        elif layer.act == "clamp":
            lo, hi = golden.clamp_bounds(layer.attrs["lo"], layer.attrs["hi"], fmt_out)
        elif layer.act == "leaky_relu":
            alpha = golden.leaky_alpha(layer.attrs["alpha"])
            lo = golden.leaky_floor(alpha, fmt_out.bits)
        bias_bits = min(geometry.signed_bits(*(int(b) for b in layer.wq.bias), 0),
                        layer.wq.acc_bits)
        return EngineSpec(fmt_in.bits, fmt_out.bits, layer.wq.bits, layer.wq.acc_bits,
                                    smax, smax - min(shift), (lo, hi), alpha, bias_bits)

    def engine_timing(self, engine, need_last, out_channels, folding):
        """Output timing of an engine whose pixels' windows are complete at `need_last`."""
        start = after(need_last + engine.block_steps + engine.depth, engine.cycles_per_pixel)
        return start, start + (out_channels // folding.coarse_out - 1) * engine.block_steps
