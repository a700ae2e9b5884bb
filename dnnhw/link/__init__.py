"""Host links: the gateware that carries frames between a host and the accelerator.

`uart` (UART receiver and transmitter), `protocol` (the framed request/response protocol the
host driver `dnnhw.host` speaks) and `top` (the accelerator behind a serial line, and a board
top level around it), for boards without a processor; `axis` (the accelerator behind
AXI4-Stream ports) for SoC integration on Zynq-class parts.
"""
