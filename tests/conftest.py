import pathlib
import sys
import warnings

from amaranth.hdl import UnusedElaboratable

# the test helpers (onnx_models, torch_models) import as top-level modules
sys.path.insert(0, str(pathlib.Path(__file__).parent))

# model and error tests construct blocks without elaborating them, on purpose
warnings.filterwarnings("ignore", category=UnusedElaboratable)
