"""kmscore: a KMS simulator library (keys, blobs, context, policy, grants, audit).

kmscore imports nothing from s3sim. The S3 and Connect layers call the `KMS`
facade in-process with a `Caller`; the KMS HTTP adapter in s3sim.http exposes it.
"""

from kmscore.caller import Caller
from kmscore.facade import KMS
from kmscore.models import DataKey, Decrypted, KeyMetadata

__all__ = ["KMS", "Caller", "DataKey", "Decrypted", "KeyMetadata"]
