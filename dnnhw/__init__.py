"""dnnhw: ONNX networks to streaming FPGA accelerators, verified bit-exact against a golden model."""

from .errors import UserError

__all__ = ["UserError"]
