import pytest

from kmscore import Caller
from s3sim.connect import errors as E
from s3sim.connect.instances import NewInstance
from tests.unit.connect_env import ACCOUNT, OTHER_ROOT, ROOT, make_env


@pytest.fixture
def env(tmp_path):
    e = make_env(tmp_path)
    yield e
    e.connect.close()


def code(exc):
    return exc.value.code, exc.value.status


def test_create_describe_list(env):
    a = env.instance("alpha")
    assert a.arn == f"arn:aws:connect:us-east-1:{ACCOUNT}:instance/{a.instance_id}"
    assert "AWSServiceRoleForAmazonConnect_" in a.service_role
    assert env.connect.describe_instance(ROOT, a.instance_id) == a
    for i in range(11):
        env.instance(f"n{i}")
    page1, token = env.connect.list_instances(ROOT, 10)
    page2, token2 = env.connect.list_instances(ROOT, 10, token)
    assert len(page1) == 10 and len(page2) == 2 and token2 is None
    assert {i.instance_id for i in page1 + page2} >= {a.instance_id}


def test_other_account_cannot_see(env):
    a = env.instance()
    with pytest.raises(E.ResourceNotFoundException) as exc:
        env.connect.describe_instance(OTHER_ROOT, a.instance_id)
    assert code(exc) == ("ResourceNotFoundException", 404)
    assert env.connect.list_instances(OTHER_ROOT) == ([], None)


def test_errors(env):
    with pytest.raises(E.ResourceNotFoundException):
        env.connect.describe_instance(ROOT, "00000000-0000-4000-8000-000000000000")
    with pytest.raises(E.ResourceNotFoundException):
        env.connect.describe_instance(ROOT, "garbage")
    with pytest.raises(E.InvalidParameterException) as exc:
        env.connect.create_instance(ROOT, NewInstance("NOPE", True, True, alias="x"))
    assert code(exc) == ("InvalidParameterException", 400)
    with pytest.raises(E.InvalidRequestException) as exc:
        env.connect.create_instance(ROOT, NewInstance("CONNECT_MANAGED", True, True))
    assert code(exc) == ("InvalidRequestException", 400)
    with pytest.raises(E.InvalidParameterException):
        env.connect.create_instance(ROOT, NewInstance("CONNECT_MANAGED", True, True, alias="-x"))
    env.instance("dup")
    with pytest.raises(E.InvalidRequestException):
        env.instance("dup")
    with pytest.raises(E.InvalidParameterException):
        env.connect.list_instances(ROOT, 11)
    with pytest.raises(E.InvalidParameterException):
        env.connect.list_instances(ROOT, 5, "!!!")


def test_iam_is_checked(env):
    user = Caller(arn=f"arn:aws:iam::{ACCOUNT}:user/bob", account=ACCOUNT, iam_actions=("s3:*",))
    with pytest.raises(E.AccessDeniedException) as exc:
        env.connect.create_instance(user, NewInstance("CONNECT_MANAGED", True, True, alias="b"))
    assert code(exc) == ("AccessDeniedException", 403)


def test_delete_instance(env):
    a = env.instance()
    env.connect.delete_instance(ROOT, a.instance_id)
    with pytest.raises(E.ResourceNotFoundException):
        env.connect.describe_instance(ROOT, a.instance_id)
    with pytest.raises(E.ResourceNotFoundException):
        env.connect.delete_instance(ROOT, a.instance_id)


def test_instances_survive_restart(tmp_path):
    env = make_env(tmp_path)
    a = env.instance()
    env.connect.close()
    env2 = make_env(tmp_path)
    assert env2.connect.describe_instance(ROOT, a.instance_id) == a
    env2.connect.close()
