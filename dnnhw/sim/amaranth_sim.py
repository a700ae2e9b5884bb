"""Helpers for quick `amaranth.sim` testbenches of stream blocks."""

__all__ = ["stream_put", "stream_get"]


async def stream_put(ctx, port, payload):
    """Offer one beat on `port` and wait until it is taken."""
    ctx.set(port.valid, 1)
    ctx.set(port.payload, payload)
    await ctx.tick().until(port.ready)
    ctx.set(port.valid, 0)


async def stream_get(ctx, port):
    """Take one beat from `port`; returns its payload."""
    ctx.set(port.ready, 1)
    payload, = await ctx.tick().sample(port.payload).until(port.valid)
    ctx.set(port.ready, 0)
    return payload
