import argparse

import pytest

from s3sim.loadtest import cli


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="s3sim")
    sub = parser.add_subparsers(dest="command", required=True)
    cli.add_parser(sub)
    return parser.parse_args(["loadtest", *argv])


def test_add_parser_wires_loadtest_with_defaults():
    args = parse("put")
    assert args.command == "loadtest"
    wl, rc = cli.workload_config(args), cli.run_config(args)
    assert wl.sizes.sizes == (4096,) and wl.sse == "none" and wl.keys == 100
    assert rc.endpoint == "http://127.0.0.1:4566" and rc.limits() == (10.0, None)
    assert rc.creds.access_key == "AKIAIOSFODNN7EXAMPLE" and rc.creds.region == "us-east-1"


def test_knobs_are_parsed():
    args = parse(
        "mixed", "--size-dist", "4KiB:80,1MiB:20", "-c", "8", "-n", "500", "-d", "3",
        "--read-ratio", "0.9", "--sse", "aws:kms+bucket-key", "--kms-key-id", "alias/k",
    )  # fmt: skip
    wl, rc = cli.workload_config(args), cli.run_config(args)
    assert wl.sizes.max_size == 1 << 20 and wl.read_ratio == 0.9
    assert rc.limits() == (3.0, 500) and rc.concurrency == 8
    assert cli.meta(args, wl, rc)["sse"] == "aws:kms+bucket-key"


@pytest.mark.parametrize(
    "argv",
    [
        ["put", "--read-ratio", "1.5"],
        ["put", "--keys", "0"],
        ["put", "--count", "0"],
        ["put", "--duration", "-1"],
        ["put", "--size", "lots"],
        ["multipart", "--part-size", "0"],
    ],
)
def test_bad_knobs_exit_2(argv, capsys):
    assert cli.run(parse(*argv)) == 2
    assert capsys.readouterr().err.startswith("s3sim loadtest: ")


def test_unknown_workload_and_sse_are_rejected_by_argparse():
    with pytest.raises(SystemExit):
        parse("delete")
    with pytest.raises(SystemExit):
        parse("put", "--sse", "aws:kms:dsse")
