"""The server's Connect pipeline flags change the pipeline's behaviour."""

from __future__ import annotations

import time

from tests.e2e.connect_helpers import (
    configured_instance,
    new_instance,
    staging_key,
    statuses,
    wait_until,
)


def _configured(server):
    s3 = server.boto("s3")
    inst, _, _, _ = configured_instance(server.boto("connect"), s3, server.boto("kms"), "rec")
    return inst["Id"], s3


def test_delivery_delay_holds_items_until_simulated_time_passes(server_factory):
    server = server_factory(args=("--no-fsync", "--connect-delivery-delay", "600"))
    instance_id, s3 = _configured(server)
    s3.put_object(Bucket="connect-staging", Key=staging_key(instance_id, "d1"), Body=b"later")
    time.sleep(1.0)  # several worker polls: the delay must hold it back
    assert statuses(server, instance_id)["d1"] == "STAGED"
    server.advance_clock(601)
    wait_until(lambda: statuses(server, instance_id).get("d1") == "DELIVERED")


def test_retention_flag_expires_undelivered_items(server_factory):
    server = server_factory(args=("--no-fsync", "--connect-retention", "120"))
    connect, s3 = server.boto("connect"), server.boto("s3")
    inst = new_instance(connect)  # no storage config: the item waits
    s3.put_object(Bucket="connect-staging", Key=staging_key(inst["Id"], "r1"), Body=b"gone")
    wait_until(lambda: statuses(server, inst["Id"]).get("r1") == "WAITING_FOR_CONFIG")
    server.advance_clock(60)
    time.sleep(0.5)
    assert statuses(server, inst["Id"])["r1"] == "WAITING_FOR_CONFIG"
    server.advance_clock(61)
    wait_until(lambda: statuses(server, inst["Id"]).get("r1") == "EXPIRED")
