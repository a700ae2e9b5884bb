"""Off-chip memory access: AXI4 burst masters for feature maps and weights, the AXI4-Lite
control registers a host runs the accelerator through, and their rate model (`timing`)."""

from .axi import AxiLiteSignature, AxiSignature
from .bursts import BurstSplitter, command_layout
from .control import ControlRegisters
from .reader import AxiReader
from .writer import AxiWriter

__all__ = ["AxiLiteSignature", "AxiSignature", "BurstSplitter", "command_layout",
           "ControlRegisters", "AxiReader", "AxiWriter"]
