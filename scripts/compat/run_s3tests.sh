#!/usr/bin/env bash
# Run the selected part of ceph/s3-tests against a fresh local s3sim server.
#
# Usage: scripts/compat/run_s3tests.sh <path-to-s3-tests-checkout> [extra pytest args...]
#
# The suite is NOT vendored: check it out anywhere outside this repository, e.g.
#   git clone https://github.com/ceph/s3-tests /somewhere/s3-tests
# and install its Python needs into the interpreter named by $PYTHON:
#   pip install boto3 munch isodate pytz python-dateutil pytest pytest-timeout
#
# What it does: starts `python -m s3sim serve` on 127.0.0.1:$PORT with an empty data
# dir, creates two KMS keys through the server's KMS API, writes an s3tests.conf naming
# s3sim's built-in identities, runs the tests that scripts/compat/selection.txt selects
# (one pytest run, per-test timeout, whole run bounded), prints the summary, and stops
# the server. Results (junit XML, full log, selected/deselected lists) go to $OUT.
#
# Environment (all optional):
#   PYTHON        interpreter with s3-tests' deps   (default: python3)
#   SERVER_PYTHON interpreter that runs s3sim        (default: $PYTHON)
#   PORT          s3sim port                        (default: 18700)
#   OUT           results dir                       (default: a new /tmp/s3tests-out.XXXX)
#   TEST_TIMEOUT  seconds per test (pytest-timeout) (default: 120)
#   RUN_TIMEOUT   seconds for the whole run         (default: 3000)
#   ISOLATE       1: after each test, abort the multipart uploads it left behind, so
#                 one server bug (DeleteBucket refusing buckets with in-progress uploads)
#                 does not fail every later test's setup; the tests that left uploads are
#                 listed in $OUT/left_uploads.txt. Default 0: the suite exactly as is.
set -euo pipefail

if [[ $# -lt 1 || ! -d "$1/s3tests/functional" ]]; then
    echo "usage: $0 <path-to-s3-tests-checkout> [pytest args...]" >&2
    exit 2
fi
S3TESTS=$(cd "$1" && pwd)
shift
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SELECTION="$HERE/selection.txt"
PYTHON=${PYTHON:-python3}
SERVER_PYTHON=${SERVER_PYTHON:-$PYTHON}
PORT=${PORT:-18700}
TEST_TIMEOUT=${TEST_TIMEOUT:-120}
RUN_TIMEOUT=${RUN_TIMEOUT:-3000}
OUT=${OUT:-$(mktemp -d /tmp/s3tests-out.XXXX)}
mkdir -p "$OUT"
DATA=$(mktemp -d /tmp/s3tests-data.XXXX)
ENDPOINT="http://127.0.0.1:$PORT"

"$PYTHON" -c 'import boto3, munch, isodate, pytz, dateutil, pytest' 2>/dev/null || {
    echo "missing s3-tests deps in $PYTHON: pip install boto3 munch isodate pytz python-dateutil pytest pytest-timeout" >&2
    exit 2
}
TIMEOUT_ARGS=()
if "$PYTHON" -c 'import pytest_timeout' 2>/dev/null; then
    TIMEOUT_ARGS=(--timeout "$TEST_TIMEOUT")
fi

SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$DATA"
}
trap cleanup EXIT INT TERM

# --- 1. server -----------------------------------------------------------------
(cd "$REPO" && exec "$SERVER_PYTHON" -m s3sim serve --host 127.0.0.1 --port "$PORT" \
    --data-dir "$DATA" --allow-ssec-over-http --no-fsync >"$OUT/server.log" 2>&1) &
SERVER_PID=$!
for _ in $(seq 1 100); do
    if "$PYTHON" -c "import urllib.request as u; u.urlopen('$ENDPOINT/_s3sim/health', timeout=1)" 2>/dev/null; then
        break
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "s3sim did not start:"; cat "$OUT/server.log"; exit 1; }
    sleep 0.2
done

# --- 2. KMS keys and the s3-tests config ---------------------------------------------
# BOTO_DISABLE_CRT: with awscrt installed botocore signs with the CRT, which refuses the
# expired/zero-expiry presigned URLs some tests build; the suite expects the Python signer.
export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true BOTO_DISABLE_CRT=true
unset AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_ENDPOINT_URL
"$PYTHON" - "$ENDPOINT" "$PORT" >"$OUT/s3tests.conf" <<'PY'
import sys
import boto3

endpoint, port = sys.argv[1], sys.argv[2]
main = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "111122223333")
alt = ("AKIAOTHER00EXAMPLE01", "other/Secret/Key/EXAMPLE/000000000000001", "444455556666")
# the in-account IAM user; used only where s3-tests insists on a third identity
alice = ("AKIAALICE00EXAMPLE01", "alice/Secret/Key/EXAMPLE/0000000000000001", "111122223333")
kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id=main[0], aws_secret_access_key=main[1])
# AWS names the key ARN in x-amz-server-side-encryption-aws-kms-key-id, and the
# tests compare that header with the configured id: configure ARNs.
k1 = kms.create_key(Description="s3-tests key 1")["KeyMetadata"]["Arn"]
k2 = kms.create_key(Description="s3-tests key 2")["KeyMetadata"]["Arn"]

def user(section, ident, extra=""):
    # s3sim's Owner ID and DisplayName are the account id
    return (f"[{section}]\ndisplay_name = {ident[2]}\nuser_id = {ident[2]}\n"
            f"email = {ident[2]}@example.com\naccess_key = {ident[0]}\nsecret_key = {ident[1]}\n{extra}")

print(f"""[DEFAULT]
host = 127.0.0.1
port = {port}
is_secure = False
ssl_verify = False

[fixtures]
bucket prefix = s3t-{{random}}-
""")
# api_name empty: in us-east-1 AWS refuses LocationConstraint=us-east-1
# (InvalidLocationConstraint), so test_bucket_get_location must skip, as on AWS.
print(user("s3 main", main, f"api_name = \nkms_keyid = {k1}\nkms_keyid2 = {k2}\n"))
print(user("s3 alt", alt))
print(user("s3 tenant", alice, "tenant = unused\n"))
print(user("iam", alice))
print(user("iam root", alice))
print(user("iam alt root", alt))
PY

# --- 3. the selection, as a pytest plugin (exact names, markers, substrings) --------
cat >"$OUT/s3sim_selection.py" <<'PY'
"""pytest plugin: keep only the tests that scripts/compat/selection.txt selects."""
import os

import pytest


def _rules(path):
    rules = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].split()
            if len(line) == 2:
                rules.setdefault(line[0], []).append(line[1])
    return rules


def _why(name, markers, r):
    for m in r.get("exclude-marker", []):
        if m in markers:
            return f"marker {m}"
    if name in r.get("include-test", []):
        return None
    if name in r.get("exclude-test", []):
        return f"test {name}"
    for s in r.get("exclude-name", []):
        if s in name:
            return f"name *{s}*"
    return None


def pytest_collection_modifyitems(config, items):
    r = _rules(os.environ["S3SIM_SELECTION"])
    out = os.environ["S3SIM_OUT"]
    keep, drop = [], []
    with open(os.path.join(out, "deselected.txt"), "w") as d:
        for item in items:
            name = getattr(item, "originalname", None) or item.name
            why = _why(name, {m.name for m in item.iter_markers()}, r)
            if why is None:
                keep.append(item)
            else:
                drop.append(item)
                d.write(f"{item.nodeid}\t{why}\n")
    with open(os.path.join(out, "selected.txt"), "w") as s:
        s.writelines(f"{i.nodeid}\n" for i in keep)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item, nextitem):
    """ISOLATE=1 only: abort the multipart uploads a test left in the suite's buckets
    before the suite's own teardown deletes them, and note which test left them."""
    if os.environ.get("S3SIM_ISOLATE") != "1":
        return
    try:
        import s3tests.functional as f

        prefix = f.get_prefix()
        found = 0
        for client in (f.get_client(), f.get_alt_client()):
            for b in client.list_buckets().get("Buckets", []):
                if not b["Name"].startswith(prefix):
                    continue
                ups = client.list_multipart_uploads(Bucket=b["Name"]).get("Uploads", [])
                for u in ups:
                    client.abort_multipart_upload(Bucket=b["Name"], Key=u["Key"], UploadId=u["UploadId"])
                found += len(ups)
        if found:
            with open(os.path.join(os.environ["S3SIM_OUT"], "left_uploads.txt"), "a") as fh:
                fh.write(f"{item.nodeid}\t{found}\n")
    except Exception as e:  # diagnostics must never change a result
        print(f"s3sim_selection: upload cleanup failed: {e!r}")
PY

FILES=()
while read -r kind value _; do
    [[ "$kind" == "file" ]] && FILES+=("$value")
done < <(sed 's/#.*//' "$SELECTION")

# --- 4. run ------------------------------------------------------------------
echo "s3sim at $ENDPOINT (pid $SERVER_PID), results in $OUT"
set +e
(cd "$S3TESTS" && S3TEST_CONF="$OUT/s3tests.conf" S3SIM_SELECTION="$SELECTION" S3SIM_OUT="$OUT" \
    S3SIM_ISOLATE="${ISOLATE:-0}" \
    PYTHONPATH="$OUT${PYTHONPATH:+:$PYTHONPATH}" PYTHONDONTWRITEBYTECODE=1 \
    timeout -k 10 "$RUN_TIMEOUT" "$PYTHON" -m pytest -p s3sim_selection -p no:cacheprovider \
    "${TIMEOUT_ARGS[@]}" -q -rfE --tb=short --junitxml="$OUT/junit.xml" \
    "${FILES[@]}" "$@" >"$OUT/pytest.log" 2>&1)
RC=$?
set -e

# --- 5. summary -----------------------------------------------------------------
"$PYTHON" - "$OUT/junit.xml" <<'PY' || tail -n 5 "$OUT/pytest.log"
import sys
import xml.etree.ElementTree as ET

# One outcome per test (a test that passed but broke in teardown is an error).
RANK = {"passed": 0, "skipped": 1, "failure": 2, "error": 3}
outcome, message = {}, {}
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
    kind, msg = "passed", ""
    for child in case:
        if child.tag in RANK and RANK[child.tag] > RANK[kind]:
            kind, msg = child.tag, (child.get("message") or "").split("\n")[0][:150]
    if RANK[kind] >= RANK[outcome.get(name, "passed")]:
        outcome[name], message[name] = kind, msg
count = {k: sum(1 for v in outcome.values() if v == k) for k in RANK}
print(f"\ns3-tests against s3sim: {len(outcome)} selected, {count['passed']} passed, "
      f"{count['failure']} failed, {count['error']} errors, {count['skipped']} skipped")
for kind in ("failure", "error"):
    for name in sorted(n for n, v in outcome.items() if v == kind):
        print(f"  {kind.upper():7} {name}: {message[name]}")
PY
echo "pytest exit code $RC; log: $OUT/pytest.log; junit: $OUT/junit.xml"
exit "$RC"
