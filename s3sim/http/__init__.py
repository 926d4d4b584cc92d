"""aiohttp adapters: SigV4 auth, payload decoding, routing and wire formats."""
