"""Zynq targets: the host driver that runs a build on the board and the Vivado block design."""
