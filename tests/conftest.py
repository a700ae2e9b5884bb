import warnings

from amaranth.hdl import UnusedElaboratable

# model and error tests construct blocks without elaborating them, on purpose
warnings.filterwarnings("ignore", category=UnusedElaboratable)
