"""Authorization through the real server: IAM delegation, key policies, grants, accounts."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

ACCT, OTHER = "111122223333", "444455556666"
ALICE = f"arn:aws:iam::{ACCT}:user/alice"
ROOT_ALL = {
    "Sid": "root",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
    "Action": "kms:*",
    "Resource": "*",
}


def code(exc: pytest.ExceptionInfo) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture
def admin(server):
    return server.boto("kms", identity="admin")


@pytest.fixture
def alice(server):
    return server.boto("kms", identity="alice")


@pytest.fixture
def other(server):
    return server.boto("kms", identity="other")


@pytest.fixture
def key(admin):
    return admin.create_key()["KeyMetadata"]


def test_alice_without_kms_iam_is_denied(alice, admin, key):
    enc = admin.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    with pytest.raises(ClientError) as e:
        alice.decrypt(CiphertextBlob=enc["CiphertextBlob"])
    assert code(e) == ("AccessDeniedException", 400)
    with pytest.raises(ClientError) as e:
        alice.create_key()
    assert code(e) == ("AccessDeniedException", 400)


def test_key_policy_naming_alice_allows_and_deny_wins(alice, admin, key):
    allow = {
        "Effect": "Allow",
        "Principal": {"AWS": ALICE},
        "Action": "kms:Decrypt",
        "Resource": "*",
    }
    admin.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=policy(ROOT_ALL, allow))
    enc = admin.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"dept": "a"})
    out = alice.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"dept": "a"})
    assert out["Plaintext"] == b"x"
    deny = {
        "Effect": "Deny",
        "Principal": {"AWS": ALICE},
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:EncryptionContext:dept": "a"}},
    }
    admin.put_key_policy(
        KeyId=key["KeyId"], PolicyName="default", Policy=policy(ROOT_ALL, allow, deny)
    )
    with pytest.raises(ClientError) as e:
        alice.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"dept": "a"})
    assert code(e) == ("AccessDeniedException", 400)


def test_grant_with_constraint_then_revoke(alice, admin, key):
    g = admin.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal=ALICE,
        Operations=["GenerateDataKey", "Decrypt"],
        Constraints={"EncryptionContextSubset": {"tenant": "t1"}},
    )
    dk = alice.generate_data_key(
        KeyId=key["Arn"],
        KeySpec="AES_256",
        EncryptionContext={"tenant": "t1"},
        GrantTokens=[g["GrantToken"]],
    )
    with pytest.raises(ClientError) as e:
        alice.generate_data_key(
            KeyId=key["Arn"], KeySpec="AES_256", EncryptionContext={"tenant": "t2"}
        )
    assert code(e) == ("AccessDeniedException", 400)
    grants = admin.list_grants(KeyId=key["KeyId"])["Grants"]
    assert [x["GrantId"] for x in grants] == [g["GrantId"]]
    assert grants[0]["Constraints"] == {"EncryptionContextSubset": {"tenant": "t1"}}
    admin.revoke_grant(KeyId=key["KeyId"], GrantId=g["GrantId"])
    with pytest.raises(ClientError) as e:
        alice.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext={"tenant": "t1"})
    assert code(e) == ("AccessDeniedException", 400)


def test_grant_errors_and_retire(alice, admin, key):
    with pytest.raises(ClientError) as e:
        admin.create_grant(
            KeyId=key["KeyId"],
            GranteePrincipal=ALICE,
            Operations=["Decrypt"],
            Constraints={
                "EncryptionContextSubset": {"a": "1"},
                "EncryptionContextEquals": {"a": "1"},
            },
        )
    assert code(e) == ("ValidationException", 400)
    with pytest.raises(ClientError) as e:
        admin.retire_grant(GrantToken="not-a-token")
    assert code(e) == ("InvalidGrantTokenException", 400)
    g1 = admin.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal=ALICE,
        Operations=["Decrypt"],
        RetiringPrincipal=f"arn:aws:iam::{ACCT}:root",
        Name="same",
    )
    g2 = admin.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal=ALICE,
        Operations=["Decrypt"],
        RetiringPrincipal=f"arn:aws:iam::{ACCT}:root",
        Name="same",
    )
    assert g1["GrantId"] == g2["GrantId"]
    retirable = admin.list_retirable_grants(RetiringPrincipal=f"arn:aws:iam::{ACCT}:root")
    assert g1["GrantId"] in [x["GrantId"] for x in retirable["Grants"]]
    alice.retire_grant(KeyId=key["Arn"], GrantId=g1["GrantId"])  # the grantee may retire
    assert admin.list_grants(KeyId=key["KeyId"])["Grants"] == []
    with pytest.raises(ClientError) as e:
        admin.revoke_grant(KeyId=key["KeyId"], GrantId=g1["GrantId"])
    assert code(e) == ("NotFoundException", 400)


def test_cross_account(admin, other, key):
    enc = admin.encrypt(KeyId=key["KeyId"], Plaintext=b"shared")
    with pytest.raises(ClientError) as e:
        other.describe_key(KeyId=key["KeyId"])
    assert code(e) == ("NotFoundException", 400)
    with pytest.raises(ClientError) as e:
        other.decrypt(CiphertextBlob=enc["CiphertextBlob"])
    assert code(e) == ("AccessDeniedException", 400)
    share = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
        "Action": ["kms:Decrypt", "kms:DescribeKey"],
        "Resource": "*",
    }
    admin.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=policy(ROOT_ALL, share))
    assert other.decrypt(CiphertextBlob=enc["CiphertextBlob"])["Plaintext"] == b"shared"
    assert other.describe_key(KeyId=key["Arn"])["KeyMetadata"]["KeyId"] == key["KeyId"]
    assert key["KeyId"] not in [k["KeyId"] for k in other.list_keys()["Keys"]]


def test_unsupported_key_spec(admin):
    with pytest.raises(ClientError) as e:
        admin.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    assert code(e) == ("UnsupportedOperationException", 400)


def test_aws_managed_key_is_usable_only_through_s3(server, admin):
    s3 = server.boto("s3", identity="admin")
    bucket = "managed-" + admin.generate_random(NumberOfBytes=4)["Plaintext"].hex()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"data", ServerSideEncryption="aws:kms")
    md = admin.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]
    assert md["KeyManager"] == "AWS"
    with pytest.raises(ClientError) as e:
        admin.generate_data_key(KeyId="alias/aws/s3", KeySpec="AES_256")
    assert code(e) == ("AccessDeniedException", 400)
    with pytest.raises(ClientError) as e:
        admin.schedule_key_deletion(KeyId=md["KeyId"])
    assert code(e) == ("AccessDeniedException", 400)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"data"
