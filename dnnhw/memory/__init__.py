"""Off-chip memory access: AXI4 burst masters for feature maps and weights, and their rate
model (`timing`)."""

from .axi import AxiLiteSignature, AxiSignature
from .bursts import BurstSplitter, command_layout
from .reader import AxiReader
from .writer import AxiWriter

__all__ = ["AxiLiteSignature", "AxiSignature", "BurstSplitter", "command_layout",
           "AxiReader", "AxiWriter"]
