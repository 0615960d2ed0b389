"""The DynamoDB mirror of the transaction log (the original system's transaction store).

Table layout: partition key `shard` (string, "txlog#00" … "txlog#15": the position modulo
SHARDS, so sequential writes spread over partitions instead of heating one), sort key `seq`
(number: the entry's position in the sealed chain). Each item also holds `source_seq`, `hash`,
`row` (the canonical row text that was hashed) and a few of the row's fields as attributes of
their own (`merchant_id`, `payment_id` ...) for queries.

Every put is conditional (`attribute_not_exists(seq)`): a retried batch never writes twice, and
an item that exists with other content is left alone for `verify --against dynamodb` to report.
Reading in position order merges the shards' queries (each is sorted by `seq`). boto3 blocks,
so calls run in worker threads, with short timeouts and "standard" retries (throttling backs
off); a failure raises `MirrorUnavailable` and the worker tries again on its next pass.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from clearport.core.errors import InternalError
from clearport.txlog.domain import MirrorItem

T = TypeVar("T")
SHARDS = 16
_PUT_THREADS = 8


class MirrorUnavailable(InternalError):
    default_code = "mirror_unavailable"


def shard_of(seq: int) -> str:
    return f"txlog#{seq % SHARDS:02d}"


class DynamoDbMirror:
    def __init__(
        self,
        table: str,
        *,
        region: str | None,
        endpoint_url: str | None = None,
        resource: Any = None,
    ) -> None:
        self.table_name = table
        self._resource = resource or boto3.resource(
            "dynamodb",
            region_name=region,
            endpoint_url=endpoint_url,
            config=Config(
                connect_timeout=3,
                read_timeout=10,
                retries={"max_attempts": 5, "mode": "standard"},
                max_pool_connections=_PUT_THREADS * 2,
            ),
        )
        self._table = self._resource.Table(table)
        self._pool = ThreadPoolExecutor(_PUT_THREADS, thread_name_prefix="dynamodb-mirror")

    def create_table(self) -> bool:
        """Create the table (on-demand capacity) unless it exists; True if created. For first
        set-up and moto; production creates it with its infrastructure code."""
        client = self._resource.meta.client
        try:
            client.create_table(
                TableName=self.table_name,
                KeySchema=[
                    {"AttributeName": "shard", "KeyType": "HASH"},
                    {"AttributeName": "seq", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "shard", "AttributeType": "S"},
                    {"AttributeName": "seq", "AttributeType": "N"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        except ClientError as exc:
            if _code(exc) == "ResourceInUseException":
                return False
            raise
        client.get_waiter("table_exists").wait(TableName=self.table_name)
        return True

    async def put(self, items: Sequence[MirrorItem]) -> list[int]:
        def put_one(item: MirrorItem) -> int | None:
            attributes = {"shard": shard_of(item.seq), **item.attributes()}
            try:
                self._table.put_item(
                    Item=attributes, ConditionExpression="attribute_not_exists(seq)"
                )
                return None
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise
            existing = self._table.get_item(
                Key={"shard": attributes["shard"], "seq": item.seq}, ConsistentRead=True
            ).get("Item")
            return None if existing is not None and _plain(existing) == attributes else item.seq

        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(_call(loop, self._pool, "put", functools.partial(put_one, i)) for i in items),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return sorted(r for r in results if isinstance(r, int))

    async def scan(self) -> AsyncIterator[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        # The shards are read page by page in worker threads and merged by position.
        pages = [_ShardPages(self._table, f"txlog#{n:02d}") for n in range(SHARDS)]
        heads: list[tuple[int, int, dict[str, Any]]] = []
        for index, shard in enumerate(pages):
            item = await _call(loop, self._pool, "query", shard.next)
            if item is not None:
                heapq.heappush(heads, (int(item["seq"]), index, item))
        while heads:
            _, index, item = heapq.heappop(heads)
            yield item
            following = await _call(loop, self._pool, "query", pages[index].next)
            if following is not None:
                heapq.heappush(heads, (int(following["seq"]), index, following))

    def close(self) -> None:
        self._pool.shutdown(wait=False)


class _ShardPages:
    """One shard's items in `seq` order, a page (up to 1 MB) at a time."""

    def __init__(self, table: Any, shard: str) -> None:
        self._table = table
        self._shard = shard
        self._buffer: Iterator[dict[str, Any]] = iter(())
        self._start: dict[str, Any] | None = None
        self._done = False

    def next(self) -> dict[str, Any] | None:
        while True:
            item = next(self._buffer, None)
            if item is not None:
                return item
            if self._done:
                return None
            from boto3.dynamodb.conditions import Key

            kwargs: dict[str, Any] = {
                "KeyConditionExpression": Key("shard").eq(self._shard),
                "ConsistentRead": True,
            }
            if self._start is not None:
                kwargs["ExclusiveStartKey"] = self._start
            page = self._table.query(**kwargs)
            self._start = page.get("LastEvaluatedKey")
            self._done = self._start is None
            self._buffer = iter([_plain(i) for i in page.get("Items", [])])


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB's numbers (Decimal) as ints."""
    return {k: int(v) if isinstance(v, Decimal) else v for k, v in item.items()}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "unknown"))


async def _call(
    loop: asyncio.AbstractEventLoop, pool: ThreadPoolExecutor, what: str, call: Callable[[], T]
) -> T:
    try:
        return await loop.run_in_executor(pool, call)
    except ClientError as exc:
        raise MirrorUnavailable(f"DynamoDB {what} refused: {_code(exc)}.") from exc
    except BotoCoreError as exc:
        raise MirrorUnavailable(f"DynamoDB {what} failed: {type(exc).__name__}.") from exc
