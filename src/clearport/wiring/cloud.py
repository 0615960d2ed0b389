"""Object storage (local directory or S3), the DynamoDB txlog mirror, and creating what the
settings name in AWS (`clearport cloud bootstrap`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearport.core.errors import present

if TYPE_CHECKING:
    from clearport.config import Settings
    from clearport.storage.ports import ObjectStorage
    from clearport.txlog.dynamodb import DynamoDbMirror


def object_storage_for(settings: Settings) -> ObjectStorage:
    if settings.storage == "s3":
        from clearport.storage.s3 import S3Storage

        if not settings.s3_bucket:
            raise ValueError("CLEARPORT_S3_BUCKET is required with CLEARPORT_STORAGE=s3.")
        return S3Storage(
            settings.s3_bucket,
            prefix=settings.s3_prefix,
            region=settings.s3_region,
            endpoint_url=settings.s3_endpoint_url,
            kms_key_id=settings.s3_kms_key_id,
            multipart_threshold_bytes=settings.s3_multipart_threshold_bytes,
            part_size_bytes=settings.s3_part_size_bytes,
            scratch_dir=settings.data_dir / "scratch",
        )
    from clearport.storage.local import LocalDirectoryStorage

    return LocalDirectoryStorage(settings.storage_root)


def dynamodb_mirror_for(settings: Settings) -> DynamoDbMirror:
    from clearport.txlog.dynamodb import DynamoDbMirror

    return DynamoDbMirror(
        present(settings.dynamodb_table, "the mirror is configured"),
        region=settings.dynamodb_region,
        endpoint_url=settings.dynamodb_endpoint_url,
    )


async def bootstrap_cloud(settings: Settings) -> list[str]:
    """Create what the settings name in AWS and is missing: the S3 bucket, the DynamoDB table,
    the KMS keys behind aliases. For moto (compose) and a first set-up; what was created."""
    created: list[str] = []
    if settings.storage == "s3":
        from clearport.storage.s3 import S3Storage

        storage = object_storage_for(settings)
        if isinstance(storage, S3Storage) and await storage.create_bucket():
            created.append(f"S3 bucket {storage.bucket}")
    if settings.dynamodb_table:
        import asyncio

        if await asyncio.to_thread(dynamodb_mirror_for(settings).create_table):
            created.append(f"DynamoDB table {settings.dynamodb_table}")
    if settings.key_provider == "aws-kms":
        from clearport.vault.kms import ensure_kms_alias

        for alias, signing in ((settings.kms_key_id, False), (settings.kms_signing_key_id, True)):
            if alias and await ensure_kms_alias(
                alias,
                signing=signing,
                region=settings.kms_region,
                endpoint_url=settings.kms_endpoint_url,
            ):
                created.append(f"KMS key {alias}")
    return created
