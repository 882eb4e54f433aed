"""ARI (Asterisk REST Interface) spoken over aiohttp: REST calls and the events WebSocket."""
