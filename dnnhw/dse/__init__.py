"""Design-space exploration: the folding of every layer for the best design a board holds."""

from .search import DEFAULT_CAP, OBJECTIVES, Exploration, explore
from .space import KINDS, Space

__all__ = ["DEFAULT_CAP", "OBJECTIVES", "Exploration", "explore", "KINDS", "Space"]
