"""Open synthesis and place-and-route: Yosys resource reports, nextpnr, bitstreams."""
