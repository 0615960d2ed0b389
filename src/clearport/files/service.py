"""Uploading files and reading them back: a merchant its own; operators (finance) upload for the
platform (evidence on a merchant's behalf, processor files) and read all. The bytes go to object
storage under the file's id, the record to the database, the upload to the audit trail."""

from __future__ import annotations

import hashlib

from clearport.access.domain import Origin, Permission, Principal
from clearport.audit.service import Auditor
from clearport.core.clock import Clock
from clearport.core.errors import NotFound, PermissionDenied
from clearport.core.ids import new_id
from clearport.core.uow import Transaction, UnitOfWork
from clearport.files.domain import FilePurpose, StoredFile, check_upload
from clearport.files.ports import FileStore
from clearport.storage.ports import ObjectStorage


class FileService:
    def __init__(
        self,
        uow: UnitOfWork,
        store: FileStore,
        storage: ObjectStorage,
        auditor: Auditor,
        clock: Clock,
    ) -> None:
        self._uow = uow
        self._store = store
        self._storage = storage
        self._auditor = auditor
        self._clock = clock

    async def upload(
        self, actor: Principal, origin: Origin, purpose: FilePurpose, data: bytes
    ) -> StoredFile:
        """Store `data` (checked by content against what `purpose` takes, 400 otherwise). The
        object is written before the record commits: a crash in between leaves an object no
        record names, never a record without its bytes."""
        if actor.merchant_id is None:
            actor.require(Permission.FINANCE_WRITE)
        elif purpose is not FilePurpose.DISPUTE_EVIDENCE:
            # A processor's settlement file is the platform's to reconcile, not a merchant's.
            raise PermissionDenied("A merchant key uploads dispute evidence only.", field="purpose")
        kind = check_upload(purpose, data)
        file_id = new_id("file")
        owner = actor.merchant_id or "platform"
        key = f"files/{owner}/{file_id}.{kind}"
        await self._storage.put(key, data)
        stored = StoredFile(
            id=file_id,
            merchant_id=actor.merchant_id,
            purpose=purpose,
            type=kind,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            object_key=key,
            created_by=actor.actor,
            created_at=self._clock.now(),
        )
        async with self._uow.transaction() as tx:
            await self._store.insert(tx, stored)
            await self._auditor.record(
                tx,
                actor=actor.actor,
                event_type="file.created",
                resource=file_id,
                origin=origin,
                details={"purpose": str(purpose), "type": str(kind), "size": len(data)},
            )
        return stored

    async def get(self, actor: Principal, file_id: str) -> StoredFile:
        scope = actor.merchant_scope(Permission.FINANCE_READ)
        async with self._uow.autocommit() as tx:
            found = await self._store.get(tx, file_id, merchant_id=scope)
        if found is None:
            raise NotFound(f"No such file: '{file_id}'.", field="id")
        return found

    async def reconciliation_file(self, actor: Principal, file_id: str) -> tuple[StoredFile, bytes]:
        """An operator's uploaded settlement file and its bytes (404 for any other file)."""
        actor.require(Permission.FINANCE_WRITE)
        async with self._uow.autocommit() as tx:
            found = await self._store.get(tx, file_id)
        if found is None or found.purpose is not FilePurpose.RECONCILIATION:
            raise NotFound(
                f"No such settlement file: '{file_id}' (upload one with purpose 'reconciliation').",
                field="file",
            )
        data = await self._storage.get(found.object_key)
        if data is None:
            raise NotFound(f"The bytes of file '{file_id}' are gone.", field="file")
        return found, data

    async def evidence_file(
        self, tx: Transaction, file_id: str, merchant_id: str
    ) -> StoredFile | None:
        """A file `merchant_id`'s dispute may cite as evidence: its own or an operator's,
        uploaded as dispute evidence; None otherwise (to the merchant: no such file)."""
        found = await self._store.get(tx, file_id)
        if (
            found is None
            or not found.usable_by(merchant_id)
            or found.purpose is not FilePurpose.DISPUTE_EVIDENCE
        ):
            return None
        return found
