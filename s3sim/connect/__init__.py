"""Amazon Connect, the part that stores recordings and transcripts in two phases.

Phase 1 (staging.py): a recording enters through S3 into the reserved bucket
`connect-staging` and is kept in the intermediate store, encrypted under a data key
that belongs to one instance only. Phase 2 (delivery.py): a background worker
re-encrypts it with SSE-KMS under the instance's storage-config key and writes it to
the customer's bucket. `ConnectService` (service.py) is the facade.
"""
