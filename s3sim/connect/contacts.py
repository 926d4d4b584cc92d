"""DescribeContact: the contacts ingest created, with their delivered recordings."""

from __future__ import annotations

from kmscore.caller import Caller
from kmscore.frozen import frozen
from s3sim.connect.errors import ResourceNotFoundException
from s3sim.connect.instances import Instances
from s3sim.connect.models import Contact, Recording
from s3sim.connect.store import Store


@frozen
class ContactView:
    contact: Contact
    recordings: tuple[Recording, ...]


class Contacts:
    def __init__(self, store: Store, instances: Instances) -> None:
        self._store = store
        self._instances = instances

    def describe(self, caller: Caller, instance_id: str, contact_id: str) -> ContactView:
        inst = self._instances.get(caller, instance_id, "DescribeContact")
        contact = self._store.get_contact(inst.instance_id, contact_id or "")
        if contact is None:
            raise ResourceNotFoundException(f"Contact not found: {contact_id}")
        recs = tuple(
            Recording(i.location or "", i.resource_type, i.delivered_at, i.staged_at)
            for i in self._store.delivered(inst.instance_id, contact.contact_id)
        )
        return ContactView(contact, recs)
