"""AXI4 and AXI4-Lite interfaces as `amaranth.lib.wiring` signatures.

The members carry the AMBA names in lower case (`araddr`, `arlen`, `rdata`, ...), one flat
signature per interface, with the channels (AR, R, AW, W, B) as groups of members named by
their channel prefix. Amaranth names a component's ports by joining the member path with
``__``, so a member `m_axi` of `AxiSignature` becomes the Verilog ports `m_axi__araddr`,
`m_axi__arlen`, ...: cocotbext-axi finds them with the prefix ``"m_axi_"``
(`AxiBus.from_prefix(dut, "m_axi_")`, which joins prefix and signal with one more ``_``), and
Vivado's IP packager infers an AXI interface from the same ``<prefix>_araddr`` pattern.

The signatures describe the master's side (addresses and write data out, read data and
responses in); a slave's member is the flipped signature (`In(...)`). Only AXI4 is described:
AWLEN/ARLEN are 8 bits and W has no WID, so an AXI3 slave (a Zynq HP port) sits behind
Vivado's protocol converter, and the master keeps its bursts at 16 beats or fewer for it. The
optional AxQOS, AxREGION and xUSER signals are left out: an interconnect ties them off.
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


__all__ = ["BURST_INCR", "CACHE_NORMAL", "RESP_OKAY", "AxiSignature",
           "AxiLiteSignature", "connect_channels"]


BURST_INCR = 0b01           # AxBURST: incrementing addresses
CACHE_NORMAL = 0b0011       # AxCACHE: normal non-cacheable bufferable (Xilinx's recommended value)
RESP_OKAY = 0b00            # xRESP: normal access success


def _address_channel(prefix, address_width, id_width):
    """AW or AR members (`prefix` "aw" or "ar")."""
    members = {f"{prefix}id": Out(id_width)} if id_width else {}
    members.update({
        f"{prefix}addr": Out(address_width), f"{prefix}len": Out(8), f"{prefix}size": Out(3),
        f"{prefix}burst": Out(2), f"{prefix}lock": Out(1), f"{prefix}cache": Out(4),
        f"{prefix}prot": Out(3), f"{prefix}valid": Out(1), f"{prefix}ready": In(1),
    })
    return members


def _read_channels(address_width, data_width, id_width):
    members = _address_channel("ar", address_width, id_width)
    if id_width:
        members["rid"] = In(id_width)
    members.update({"rdata": In(data_width), "rresp": In(2), "rlast": In(1), "rvalid": In(1),
                    "rready": Out(1)})
    return members


def _write_channels(address_width, data_width, id_width):
    members = _address_channel("aw", address_width, id_width)
    members.update({"wdata": Out(data_width), "wstrb": Out(data_width // 8), "wlast": Out(1),
                    "wvalid": Out(1), "wready": In(1)})
    if id_width:
        members["bid"] = In(id_width)
    members.update({"bresp": In(2), "bvalid": In(1), "bready": Out(1)})
    return members


class AxiSignature(wiring.Signature):
    """An AXI4 master port: the read channels (AR, R), the write channels (AW, W, B), or both.

    Parameters
    ----------
    address_width : int
        AxADDR bits.
    data_width : int
        RDATA and WDATA bits, a power of two from 8 to 1024; WSTRB has one bit per byte.
    id_width : int
        AxID, RID and BID bits; 0 leaves the ID signals out (a master with a single ID, whose
        interconnect ties them to zero).
    read, write : bool
        Include the read channels, the write channels (one or both).

    Members
    -------
    arid, araddr, arlen, arsize, arburst, arlock, arcache, arprot, arvalid : Out
        Read address channel (if `read`); `arid` only if `id_width` > 0.
    arready : In(1)
    rid, rdata, rresp, rlast, rvalid : In
        Read data channel (if `read`); `rid` only if `id_width` > 0.
    rready : Out(1)
    awid, awaddr, awlen, awsize, awburst, awlock, awcache, awprot, awvalid : Out
        Write address channel (if `write`); `awid` only if `id_width` > 0.
    awready : In(1)
    wdata, wstrb, wlast, wvalid : Out
        Write data channel (if `write`).
    wready : In(1)
    bid, bresp, bvalid : In
        Write response channel (if `write`); `bid` only if `id_width` > 0.
    bready : Out(1)

    Raises
    ------
    ValueError
        If neither `read` nor `write`.
    """

    def __init__(self, address_width, data_width, id_width=0, *, read=True, write=True):
        if not (read or write):
            raise ValueError("AxiSignature: a port needs its read channels, its write channels "
                             "or both")
        self.address_width, self.data_width, self.id_width = address_width, data_width, id_width
        self.read, self.write = read, write
        members = {}
        if read:
            members.update(_read_channels(address_width, data_width, id_width))
        if write:
            members.update(_write_channels(address_width, data_width, id_width))
        super().__init__(members)

    def __eq__(self, other):
        return (type(other) is type(self) and
                (self.address_width, self.data_width, self.id_width, self.read, self.write) ==
                (other.address_width, other.data_width, other.id_width, other.read, other.write))

    def __repr__(self):
        channels = {(True, True): "read and write", (True, False): "read",
                    (False, True): "write"}[self.read, self.write]
        return (f"AxiSignature({self.address_width}, {self.data_width}, {self.id_width}, "
                f"{channels})")


class AxiLiteSignature(wiring.Signature):
    """An AXI4-Lite master port (a slave's member is `In(AxiLiteSignature(...))`).

    Parameters
    ----------
    address_width : int
        AWADDR and ARADDR bits (byte addresses).
    data_width : int
        32 or 64 bits, as AXI4-Lite allows.

    Members
    -------
    awaddr, awprot, awvalid : Out
    awready : In(1)
    wdata, wstrb, wvalid : Out
    wready : In(1)
    bresp, bvalid : In
    bready : Out(1)
    araddr, arprot, arvalid : Out
    arready : In(1)
    rdata, rresp, rvalid : In
    rready : Out(1)
    """

    def __init__(self, address_width, data_width=32):
        self.address_width, self.data_width = address_width, data_width
        super().__init__({
            "awaddr": Out(address_width), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wvalid": Out(1),
            "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(address_width), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_width), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })

    def __eq__(self, other):
        return (type(other) is type(self) and
                (self.address_width, self.data_width) == (other.address_width, other.data_width))

    def __repr__(self):
        return f"AxiLiteSignature({self.address_width}, {self.data_width})"


def connect_channels(m, port, master):
    """Connect the channels of `master` (a block's `Out(AxiSignature)` member) to the members
    of the same names of `port`, a component's own AXI4 master port as its `elaborate` sees
    it: outputs of `master` drive `port`'s, `port`'s inputs drive `master`'s. A read-only
    and a write-only master so share one port with both channel sets (`wiring.connect` needs
    equal signatures). The ID widths must be equal."""
    for name, member in master.signature.members.items():
        ours, theirs = getattr(port, name), getattr(master, name)
        m.d.comb += ours.eq(theirs) if member.flow == Out else theirs.eq(ours)
