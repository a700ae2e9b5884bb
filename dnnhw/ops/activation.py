"""relu, clamp, leaky_relu, sigmoid, tanh: elementwise activations (`layers.activation.Activation`).

Folding: lanes dividing C. Cycles per frame C·H·W/lanes; latency `geometry.ACTIVATION_LATENCY`
(1 for relu and clamp, 2 for leaky_relu, 4 for sigmoid and tanh). ReLU, clamp and LeakyReLU
keep their input's format; sigmoid and tanh output (bits, bits - 1).
"""

from dataclasses import dataclass

from .. import geometry, golden, resources
from . import register
from ._base import KeepsFormat, LanesOp, UnitFormat, stream_shift


@dataclass(frozen=True)
class ActivationSpec:
    """Input and output bits; `slope`, LeakyReLU's alpha_q; `table`, sigmoid's or tanh's
    `resources.nonlinear_table` summary."""
    bits_in: int
    bits_out: int
    slope: int | None = None
    table: tuple | None = None


class ActivationOp(LanesOp):
    """One elementwise activation `name`."""

    def geometry(self, graph, layer, folding):
        return geometry.elementwise(graph.in_shape(layer), folding.coarse_in,
                                    geometry.ACTIVATION_LATENCY[self.name])

    def timing(self, graph, layer, folding, ins):
        return stream_shift(*ins[0], geometry.ACTIVATION_LATENCY[self.name])

    def spec(self, graph, layer):
        fmt_in, fmt_out = graph.formats[layer.inputs[0]], graph.formats[layer.output]
        return ActivationSpec(fmt_in.bits, fmt_out.bits)

    def features(self, spec, folding, family):
        t = resources.Features()
        t.add("part:activation", 1)
        t.add("reg", folding.coarse_in * spec.bits_out + geometry.ACTIVATION_LATENCY[self.name])
        t.add("handshake", 2)
        self.datapath(t, spec, folding.coarse_in, family)
        return t

    def datapath(self, t, spec, lanes, family):
        """Add the features of `lanes` lanes' datapaths to `t`."""
        raise NotImplementedError

    def block(self, graph, layer, folding):
        from ..layers.activation import Activation
        fmt_in, out = graph.formats[layer.inputs[0]], graph.formats[layer.output]
        return Activation(graph.in_shape(layer), fmt_in.bits, out.bits, folding.coarse_in,
                          self.name, **self.block_options(graph, layer))

    def block_options(self, graph, layer):
        fmt_in, out = graph.formats[layer.inputs[0]], graph.formats[layer.output]
        return {"frac_in": fmt_in.frac, "frac_out": out.frac}


class Rectifier(KeepsFormat, ActivationOp):
    """relu, clamp and leaky_relu: golden's `activate`, then saturation."""

    def run(self, graph, layer, xs):
        fmt_out = graph.formats[layer.output]
        return golden.saturate(golden.activate(xs[0], fmt_out, {"act": self.name, **layer.attrs}),
                               fmt_out.bits)

    def run_float(self, graph, layer, xs):
        return golden.activate_float(xs[0], {"act": self.name, **layer.attrs})


class ReLU(Rectifier):
    name = "relu"
    onnx = {"Relu": lambda attr: {}}

    def datapath(self, t, spec, lanes, family):
        resources.mux(t, lanes * spec.bits_out, 2, family)
        resources.saturate(t, lanes, spec.bits_in, spec.bits_out)


class Clamp(Rectifier):
    name = "clamp"
    attrs = "lo, hi (floats; ReLU6 is clamp 0..6)"

    def datapath(self, t, spec, lanes, family):
        resources.clip(t, lanes, spec.bits_in, spec.bits_out)

    def block_options(self, graph, layer):
        lo, hi = golden.clamp_bounds(layer.attrs["lo"], layer.attrs["hi"],
                                     graph.formats[layer.output])
        return {"lo": lo, "hi": hi}


class LeakyReLU(Rectifier):
    name = "leaky_relu"
    attrs = "alpha"
    onnx = {"LeakyRelu": lambda attr: {"alpha": attr("alpha", 0.01)}}

    def spec(self, graph, layer):
        fmt_in, fmt_out = graph.formats[layer.inputs[0]], graph.formats[layer.output]
        return ActivationSpec(fmt_in.bits, fmt_out.bits, slope=golden.leaky_alpha(layer.attrs["alpha"]))

    def datapath(self, t, spec, lanes, family):
        t.add("reg", lanes * spec.bits_in)
        resources.constant_multipliers(t, lanes, spec.bits_in, spec.slope, family)
        product = spec.bits_in + abs(spec.slope).bit_length() + 1
        resources.saturate(t, lanes, resources.round_shift(t, lanes, product, golden.LEAKY_FRAC),
                           spec.bits_out)
        resources.mux(t, lanes * spec.bits_out, 2, family)

    def block_options(self, graph, layer):
        return {"alpha_q": golden.leaky_alpha(layer.attrs["alpha"])}


class Nonlinear(UnitFormat, ActivationOp):
    """sigmoid and tanh: interpolation in golden's table."""

    def __init__(self, name):
        self.name = name
        self.onnx = {name.capitalize(): lambda attr: {}}

    def spec(self, graph, layer):
        fmt_in, fmt_out = graph.formats[layer.inputs[0]], graph.formats[layer.output]
        return ActivationSpec(fmt_in.bits, fmt_out.bits, table=resources.nonlinear_table(
            self.name, fmt_in.bits, fmt_in.frac, fmt_out.bits, fmt_out.frac))

    def datapath(self, t, spec, lanes, family):
        resources.interpolator_part(t, lanes, spec.bits_in, spec.bits_out, spec.table, family)

    def run(self, graph, layer, xs):
        return golden.nonlinear(self.name, xs[0], graph.formats[layer.inputs[0]],
                                graph.formats[layer.output])

    def run_float(self, graph, layer, xs):
        return golden.nonlinear_float(self.name, xs[0])


for _op in (ReLU(), Clamp(), LeakyReLU(), Nonlinear("sigmoid"), Nonlinear("tanh")):
    register(_op)
