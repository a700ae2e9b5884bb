"""Streaming Amaranth blocks, one hardware block per module (see docs/layers.md)."""
