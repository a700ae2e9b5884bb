"""A layer's plan entry: its parallelism (`Folding`) and its engine's implementation options.

Plain records, no graph: `dnnhw.ops` checks a folding against a layer (`ops.check`), once, for
the model, the resource model and the hardware alike.
"""

from dataclasses import dataclass, field


__all__ = ["Implementation", "Folding"]


@dataclass(frozen=True)
class Implementation:
    """How a conv or fc layer's engine builds its multipliers and weights; none of these change
    its results, rate or latency, only its resources (`layers.conv_engine.ConvEngine`).

    Attributes
    ----------
    logic_multipliers : int
        Multipliers built from logic (radix-4 Booth in LUTs) rather than DSP blocks.
    block_weights : bool
        Weight ROMs forced into block RAM.
    paired : bool
        Pairs of output lanes share each multiplier (two products per DSP where the packed
        operand fits one); needs an even coarse_out and no logic multipliers.
    writable : bool
        Weight memories are RAMs loaded at run time through the block's `w` port (weights
        reloading) instead of ROMs holding the weights; this adds a port and changes no result.
    """
    logic_multipliers: int = 0
    block_weights: bool = False
    paired: bool = False
    writable: bool = False


@dataclass(frozen=True)
class Folding:
    """A layer's parallelism: `coarse_in` input lanes, `coarse_out` output lanes, `fine` kernel
    positions per cycle, `coarse_group` groups of a grouped convolution side by side in those
    lanes (fpgaConvNet's names), and its engine's `impl` options (conv and fc layers).

    With `coarse_group` > 1 the lanes hold whole groups: coarse_in = coarse_group · C_in/groups
    and coarse_out = coarse_group · C_out/groups, and each output lane multiplies only its own
    group's input lanes. Layers without weights use `coarse_in` = `coarse_out` (their lanes)
    and `fine` = 1.
    """
    coarse_in: int = 1
    coarse_out: int = 1
    fine: int = 1
    impl: Implementation = field(default_factory=Implementation)
    coarse_group: int = 1

    @property
    def multipliers(self):
        return self.coarse_in * self.coarse_out * self.fine // self.coarse_group

    def with_impl(self, **options):
        """This folding with some `Implementation` options changed."""
        return Folding(self.coarse_in, self.coarse_out, self.fine,
                       Implementation(**{**self.impl.__dict__, **options}), self.coarse_group)
