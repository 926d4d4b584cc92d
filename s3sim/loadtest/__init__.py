"""`s3sim loadtest`: an asyncio S3/KMS load generator with its own SigV4 signing.

Layers: `signing` (SigV4), `rawhttp` (HTTP/1.1 keep-alive client on asyncio protocols),
`client` (S3/KMS/Connect requests), `workloads`, `runner`, `stats`, `report`, `cli`.
"""
