"""Off-chip memory access: AXI4 burst masters for feature maps and weights, the gearboxes
between bus words and stream beats, the AXI4-Lite control registers a host runs the
accelerator through, the memory top that runs an accelerator from DRAM to DRAM
(`MemoryAccelerator`), the rate model (`timing`) and the memory layout of feature maps
(`layout`)."""

from .axi import AxiLiteSignature, AxiSignature
from .bursts import BurstSplitter, command_layout
from .control import ControlRegisters
from .gearbox import LanesToWords, WordsToLanes
from .reader import AxiReader
from .sequencer import RunSequencer
from .top import MemoryAccelerator
from .writer import AxiWriter

__all__ = ["AxiLiteSignature", "AxiSignature", "BurstSplitter", "command_layout",
           "ControlRegisters", "AxiReader", "AxiWriter", "WordsToLanes", "LanesToWords",
           "RunSequencer", "MemoryAccelerator"]
