"""What conv and fc share: the conv engine, its weights and its fused activation."""

from dataclasses import dataclass

import numpy as np

from .. import geometry, golden, quant
from ..ir import WeightQuant
from ..pixel_timing import after
from ._base import Op


def activation_of(graph, layer):
    """The fused activation of a conv or fc `layer` of a quantized `graph`, as `ConvEngine` takes
    it: None, ``"relu"``, ``("clamp", lo, hi)`` or ``("leaky_relu", alpha_q)``, with the
    integer constants from `golden.clamp_bounds` and `golden.leaky_alpha`. An output format
    narrower than its bits (a zero point's range) turns None and relu into the clamp to it."""
    act, attrs, fmt = layer.act, layer.attrs, graph.formats[layer.output]
    if act == "leaky_relu":
        return ("leaky_relu", golden.leaky_alpha(attrs["alpha"]))
    if act == "clamp":
        return ("clamp", *golden.clamp_bounds(attrs["lo"], attrs["hi"], fmt))
    if fmt.low is not None or fmt.high is not None:
        return ("clamp", max(fmt.min, 0) if act == "relu" else fmt.min, fmt.max)
    return act


__all__ = ["EngineSpec", "WeightedOp"]


@dataclass(frozen=True)
class EngineSpec:
    """What a `ConvEngine` depends on besides its folding and geometry: input, output and weight
    bits, the accumulator's bits, the largest requantization shift `smax` and the largest
    per-channel left shift before it, the clip bounds (lo, hi), the LeakyReLU slope alpha_q or
    None, the bits of the biases, and the bits of the requantization multipliers (0: none, the
    scales are powers of two)."""
    in_bits: int
    out_bits: int
    weight_bits: int
    acc_bits: int
    smax: int
    max_left: int
    bounds: tuple
    alpha: int | None
    bias_bits: int
    mult_bits: int = 0


class WeightedOp(Op):
    """A layer computed by `ConvEngine`: exact accumulation from bias, requantization, a fused
    activation (`Layer.act`), then saturation (golden's rules); weights per output channel."""
    weighted = True
    scaled_formats = True

    def accumulate(self, graph, layer, x, weight, exact_bound=None):
        """The layer's products summed, (C_out, H_out, W_out), without bias."""
        raise NotImplementedError

    def run(self, graph, layer, xs):
        wq, fmt_out = layer.wq, graph.formats[layer.output]
        acc = self.accumulate(graph, layer, xs[0], wq.weight, 1 << (wq.acc_bits - 1))
        mult, shift = golden.requant(graph, layer)
        acc = acc + wq.bias[:, None, None]
        if mult is not None:
            acc = acc * mult[:, None, None]
        y = golden.round_shift(acc, shift[:, None, None])
        return golden.saturate(golden.activate(y, fmt_out, layer.attrs), fmt_out)

    def run_float(self, graph, layer, xs):
        y = self.accumulate(graph, layer, xs[0], layer.weight)
        return golden.activate_float(y + layer.bias[:, None, None], layer.attrs)

    def quantize_weights(self, graph, layer, fmt_in, fmt_out, bits, per_channel):
        """Weights per output channel from each channel's largest magnitude (`per_channel`),
        or one format for the layer, or the format a QDQ model states; the bias at the
        accumulator's scale; an accumulator that cannot overflow."""
        weight = layer.weight
        c_out = weight.shape[0]
        mult = np.ones(c_out)
        if "weight_format" in layer.attrs:
            bits, frac, mult = layer.attrs["weight_format"]
        else:
            channel_peaks = np.abs(weight.reshape(c_out, -1)).max(axis=1)
            if per_channel:
                frac = np.array([quant.frac_for(p, bits) for p in channel_peaks])
            else:
                frac = np.full(c_out, quant.frac_for(channel_peaks.max(), bits))
        frac, mult = np.asarray(frac, dtype=np.int64), np.asarray(mult, dtype=np.float64)
        scale = np.ldexp(mult, -frac)                       # a weight LSB's value per channel
        weight_q = golden.round_half_up(weight / scale.reshape(-1, *[1] * (weight.ndim - 1)))
        np.clip(weight_q, -(1 << (bits - 1)), (1 << (bits - 1)) - 1, out=weight_q)   # saturate
        bias_q = golden.round_half_up(layer.bias / (fmt_in.scale * scale))
        fan_in = weight[0].size
        bound = (fan_in * max(-fmt_in.min, fmt_in.max) * (1 << (bits - 1))
                 + int(np.abs(bias_q).max(initial=0)))
        return WeightQuant(bits=bits, frac=frac, weight=weight_q, bias=bias_q,
                           acc_bits=bound.bit_length() + 1, mult=mult)

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
        mult, shift = golden.requant(graph, layer)
        shift = [int(s) for s in np.atleast_1d(shift)]
        shift += layer.attrs.get("shift_range", ())     # a reloaded chunk: every chunk's
        smax = max(shift)
        activation = activation_of(graph, layer)
        alpha = None
        if isinstance(activation, tuple) and activation[0] == "leaky_relu":
            alpha = activation[1]
            lo, hi = golden.leaky_floor(alpha, fmt_out.bits), fmt_out.max
        elif isinstance(activation, tuple):
            lo, hi = activation[1:]
        else:
            lo, hi = (0 if activation == "relu" else fmt_out.min), fmt_out.max
        bias_bits = min(geometry.signed_bits(*(int(b) for b in layer.wq.bias), 0),
                        layer.wq.acc_bits)
        mult_bits = 0 if mult is None else golden.REQUANT_BITS
        return EngineSpec(fmt_in.bits, fmt_out.bits, layer.wq.bits, layer.wq.acc_bits,
                          smax, smax - min(shift), (lo, hi), alpha, bias_bits, mult_bits)

    def engine_options(self, graph, layer):
        """The engine geometry's options: a fused LeakyReLU, requantization multipliers."""
        return {"leaky": layer.act == "leaky_relu",
                "scaled": golden.requant(graph, layer)[0] is not None}

    def engine_timing(self, engine, need_last, out_channels, folding):
        """Output timing of an engine whose pixels' windows are complete at `need_last`."""
        start = after(need_last + engine.block_steps + engine.depth, engine.cycles_per_pixel)
        return start, start + (out_channels // folding.coarse_out - 1) * engine.block_steps
