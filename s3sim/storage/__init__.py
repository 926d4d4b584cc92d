"""Storage engine beneath S3: metadata index (index.py), blob files (blobstore.py),
encrypted object files (objectfile.py, format in docs/FORMAT.md), checksums.

Never imports aiohttp and never calls KMS: callers hand in plaintext data keys.
"""
