"""The op registry: one module per canonical op, each owning everything dnnhw knows about it.

An op module (any module of this package whose name does not start with ``_``) defines
subclasses of `Op` and registers an instance of each with `register`; this package imports every
such module, so adding an op is adding a file (`docs/ops.md`). The rest of dnnhw (the
performance and resource models, golden, quantization, the accelerator, the IR's MAC count)
asks the registry, never ``layer.op``.
"""

import importlib
import pkgutil

from ._base import LanesOp, Op


__all__ = ["Op", "LanesOp", "register", "get", "names", "unary", "check", "geometry", "macs"]


_REGISTRY = {}


def register(op):
    """Add the `Op` instance `op` under `op.name`; returns it."""
    if op.name in _REGISTRY:
        raise ValueError(f"op '{op.name}' is registered twice")
    _REGISTRY[op.name] = op
    return op


def get(name):
    """The registered `Op` called `name`."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown op {name!r} (known: {', '.join(sorted(_REGISTRY))})") from None


def names():
    """Every registered op's name, sorted."""
    return sorted(_REGISTRY)


def unary():
    """ONNX op type → (op name, attribute reader) of every registered op that maps one-to-one
    from a single-input ONNX node (`Op.onnx`)."""
    return {onnx_op: (op.name, attrs) for op in _REGISTRY.values()
            for onnx_op, attrs in op.onnx.items()}


def check(graph, layer, folding):
    """Raise ValueError unless `folding` (parallelism and implementation options) is valid for
    `layer`: the one check the model, the resource model and the hardware rely on."""
    op = get(layer.op)
    ci, co, f = folding.coarse_in, folding.coarse_out, folding.fine
    if min(ci, co, f) < 1:
        raise ValueError(f"'{layer.name}': folding factors must be positive, got {folding}")
    impl = folding.impl
    logic = impl.logic_multipliers
    for option in ("block_weights", "writable"):
        if getattr(impl, option) and not op.weighted:
            raise ValueError(f"'{layer.name}' ({op.name}): {option} is for conv and fc layers")
    if logic and (not op.weighted or not 0 <= logic <= folding.multipliers):
        raise ValueError(f"'{layer.name}' ({op.name}): logic_multipliers={logic} must be within "
                         f"the layer's {folding.multipliers if op.weighted else 0} multipliers")
    cg = folding.coarse_group
    if cg != 1 and (not op.grouped or cg < 1):
        raise ValueError(f"'{layer.name}' ({op.name}): coarse_group={cg} is for grouped "
                         f"convolutions")
    if impl.paired and (not op.weighted or co // cg % 2 or logic):
        raise ValueError(f"'{layer.name}' ({op.name}): paired multipliers are for conv and fc "
                         f"layers with an even coarse_out per group and no logic multipliers, "
                         f"got {folding}")
    op.check_parallelism(graph, layer, folding)


def geometry(graph, layer, folding):
    """The geometry record of `layer`'s block under `folding` (checked)."""
    check(graph, layer, folding)
    return get(layer.op).geometry(graph, layer, folding)


def macs(graph, layer):
    """Multiply-accumulates of one frame through `layer`."""
    return get(layer.op).macs(graph, layer)


for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
