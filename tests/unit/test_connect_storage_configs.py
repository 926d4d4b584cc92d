import json
from dataclasses import replace
from types import SimpleNamespace

import pytest

from kmscore import Caller
from s3sim.connect import errors as E
from s3sim.connect.storage_configs import S3ConfigInput
from tests.unit.connect_env import ACCOUNT, OTHER_ROOT, ROOT, make_env


@pytest.fixture
def env(tmp_path):
    e = make_env(tmp_path)
    yield e
    e.connect.close()


def grants(env, key_arn):
    return list(env.kms.list_grants(ROOT, key_arn).items)


def cfg(bucket, key_arn, prefix="p"):
    return S3ConfigInput("S3", bucket, prefix, "KMS", key_arn)


def test_associate_creates_grant_for_service_role(env):
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    assoc = env.associate(inst, "rec", key)
    (g,) = grants(env, key)
    assert g.grantee_principal == inst.service_role
    assert {"GenerateDataKey", "Decrypt", "DescribeKey"} <= set(g.operations)
    got = env.connect.describe_storage_config(ROOT, inst.instance_id, assoc, "CALL_RECORDINGS")
    assert (got.bucket, got.prefix, got.key_arn) == ("rec", "connect/rec", key)
    configs, token = env.connect.list_storage_configs(ROOT, inst.instance_id, "CALL_RECORDINGS")
    assert [c.association_id for c in configs] == [assoc] and token is None
    assert env.connect.list_storage_configs(ROOT, inst.instance_id, "CHAT_TRANSCRIPTS")[0] == []


def test_one_s3_config_per_type(env):
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    env.associate(inst, "rec", key)
    with pytest.raises(E.ResourceConflictException) as exc:
        env.associate(inst, "rec", key)
    assert (exc.value.code, exc.value.status) == ("ResourceConflictException", 409)
    env.associate(inst, "rec", key, "CHAT_TRANSCRIPTS")


@pytest.mark.parametrize(
    "make,error",
    [
        (lambda e, k: cfg("missing", k), E.InvalidParameterException),
        (lambda e, k: cfg("rec", k.rsplit("/", 1)[1]), E.InvalidParameterException),
        (lambda e, k: cfg("rec", "alias/aws/s3"), E.InvalidParameterException),
        (
            lambda e, k: cfg("rec", k[:-12] + "000000000000"),
            E.InvalidParameterException,
        ),
        (lambda e, k: S3ConfigInput("KINESIS_STREAM", "rec"), E.InvalidParameterException),
        (lambda e, k: S3ConfigInput("S3", "rec", "", "KMS", None), E.InvalidParameterException),
    ],
)
def test_associate_validation(env, make, error):
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    with pytest.raises(error) as exc:
        env.connect.associate_storage_config(
            ROOT, inst.instance_id, "CALL_RECORDINGS", make(env, key)
        )
    assert exc.value.status == 400
    assert grants(env, key) == []


def test_bad_resource_type_and_unknown_instance(env):
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    with pytest.raises(E.InvalidParameterException):
        env.connect.associate_storage_config(ROOT, inst.instance_id, "NOPE", cfg("rec", key))
    with pytest.raises(E.ResourceNotFoundException) as exc:
        env.connect.associate_storage_config(
            OTHER_ROOT, inst.instance_id, "CALL_RECORDINGS", cfg("rec", key)
        )
    assert exc.value.status == 404
    with pytest.raises(E.ResourceNotFoundException):
        env.connect.describe_storage_config(
            ROOT, inst.instance_id, "00000000-0000-4000-8000-000000000000", "CALL_RECORDINGS"
        )


def test_asymmetric_key_refused(env):
    """kmscore makes only symmetric keys: describe_key is made to report another spec."""
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    real = env.kms.describe_key

    def describe(caller, key_id):
        return replace(real(caller, key_id), key_spec="RSA_2048")

    env.connect.configs._kms = SimpleNamespace(describe_key=describe)
    with pytest.raises(E.InvalidParameterException, match="SYMMETRIC_DEFAULT"):
        env.associate(inst, "rec", key)


def test_caller_needs_create_grant(env):
    inst = env.instance()
    env.bucket("rec")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "kms:CreateGrant",
                "Resource": "*",
            },
        ],
    }
    key = env.kms.create_key(ROOT, policy=json.dumps(policy)).arn
    with pytest.raises(E.AccessDeniedException) as exc:
        env.associate(inst, "rec", key)
    assert exc.value.status == 403
    assert env.connect.list_storage_configs(ROOT, inst.instance_id, "CALL_RECORDINGS")[0] == []


def test_user_without_create_grant_permission(env):
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    user = Caller(
        arn=f"arn:aws:iam::{ACCOUNT}:user/ops",
        account=ACCOUNT,
        iam_actions=("connect:*", "s3:*", "kms:DescribeKey"),
    )
    with pytest.raises(E.AccessDeniedException):
        env.connect.associate_storage_config(
            user, inst.instance_id, "CALL_RECORDINGS", cfg("rec", key)
        )
    assert grants(env, key) == []


def test_disassociate_retires_grant(env):
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    assoc = env.associate(inst, "rec", key)
    env.connect.disassociate_storage_config(ROOT, inst.instance_id, assoc, "CALL_RECORDINGS")
    assert grants(env, key) == []
    with pytest.raises(E.ResourceNotFoundException):
        env.connect.disassociate_storage_config(ROOT, inst.instance_id, assoc, "CALL_RECORDINGS")


def test_update_same_key_restores_revoked_grant(env):
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    assoc = env.associate(inst, "rec", key)
    (g,) = grants(env, key)
    env.kms.revoke_grant(ROOT, key, g.grant_id)
    assert grants(env, key) == []
    env.connect.update_storage_config(
        ROOT, inst.instance_id, assoc, "CALL_RECORDINGS", cfg("rec", key)
    )
    (g2,) = grants(env, key)
    assert g2.grantee_principal == inst.service_role
    # an update with the grant still valid keeps exactly one grant
    env.connect.update_storage_config(
        ROOT, inst.instance_id, assoc, "CALL_RECORDINGS", cfg("rec", key)
    )
    assert len(grants(env, key)) == 1


def test_update_to_other_key_retires_old_grant(env):
    inst, k1, k2 = env.instance(), env.key(), env.key()
    env.bucket("rec")
    assoc = env.associate(inst, "rec", k1)
    env.connect.update_storage_config(
        ROOT, inst.instance_id, assoc, "CALL_RECORDINGS", cfg("rec", k2, "new")
    )
    assert grants(env, k1) == []
    assert len(grants(env, k2)) == 1
    got = env.connect.describe_storage_config(ROOT, inst.instance_id, assoc, "CALL_RECORDINGS")
    assert (got.key_arn, got.prefix) == (k2, "new")


def test_delete_instance_retires_grants(env):
    inst, key = env.instance(), env.key()
    env.bucket("rec")
    env.associate(inst, "rec", key)
    env.connect.delete_instance(ROOT, inst.instance_id)
    assert grants(env, key) == []
