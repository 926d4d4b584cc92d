"""s3sim: an encrypted storage simulator with S3, KMS, Connect and CloudTrail front ends."""
