"""The aws CLI (v1) against the server: s3 mb/cp/ls/rm."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def aws(server, *args: str, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> str:
    cmd = [sys.executable, "-m", "awscli", "--endpoint-url", server.endpoint, *args]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode in ok, out.stderr
    return out.stdout


@pytest.mark.slow
def test_aws_cli_cp_ls_rm(server, tmp_path):
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    src = tmp_path / "in.bin"
    data = os.urandom(9 * 1024 * 1024)
    src.write_bytes(data)
    aws(server, "s3", "mb", "s3://cli-bucket", env=env)
    aws(server, "s3", "cp", str(src), "s3://cli-bucket/dir/in.bin", env=env)
    assert "in.bin" in aws(server, "s3", "ls", "s3://cli-bucket/dir/", env=env)
    aws(server, "s3", "cp", "s3://cli-bucket/dir/in.bin", str(tmp_path / "out.bin"), env=env)
    assert (tmp_path / "out.bin").read_bytes() == data
    aws(server, "s3", "rm", "s3://cli-bucket/dir/in.bin", env=env)
    # `aws s3 ls` exits 1 when nothing matches
    assert aws(server, "s3", "ls", "s3://cli-bucket/dir/", env=env, ok=(0, 1)) == ""
    aws(server, "s3", "rb", "s3://cli-bucket", env=env)
