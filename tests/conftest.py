import pathlib
import sys

# the test helpers (onnx_models, torch_models) import as top-level modules
sys.path.insert(0, str(pathlib.Path(__file__).parent))
