"""Design-space exploration: the folding of every layer for the best design a board holds, and
the partitions of a network the board does not hold in one design."""

from .partitions import MAX_BATCH, PartitionedExploration, PartitionPlan, design, explore_partitions
from .search import (DEFAULT_CAP, OBJECTIVES, NoPlanFits, Exploration, budget, explore,
                     explore_together, shortfall)
from .space import KINDS, Space

__all__ = ["DEFAULT_CAP", "OBJECTIVES", "NoPlanFits", "Exploration", "budget", "explore",
           "explore_together", "shortfall", "KINDS", "Space", "MAX_BATCH",
           "PartitionedExploration", "PartitionPlan", "design", "explore_partitions"]
