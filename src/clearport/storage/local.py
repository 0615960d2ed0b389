"""Object storage in a local directory: the default for development and single-machine setups.

File system calls run in a worker thread (an fsync is milliseconds), so the event loop that
serves payments never waits on a disk."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from clearport.core.errors import InvalidRequest
from clearport.storage.domain import StorageUnavailable, object_key

T = TypeVar("T")


class LocalDirectoryStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / object_key(key)).resolve()
        if not path.is_relative_to(self.root):  # a symlink inside the root pointing out
            raise InvalidRequest("Object keys are relative paths inside the storage root.")
        return path

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    async def put(self, key: str, data: bytes) -> str:
        return await _in_thread(self._put, self._path(key), data)

    async def put_file(self, key: str, local_path: str) -> str:
        return await _in_thread(self._put_file, self._path(key), Path(local_path))

    async def get(self, key: str) -> bytes | None:
        path = self._path(key)
        return await _in_thread(lambda: path.read_bytes() if path.exists() else None)

    async def keys(self, prefix: str) -> list[str]:
        def walk() -> list[str]:
            found = []
            for dirpath, dirnames, filenames in os.walk(self.root):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                for name in filenames:
                    if name.startswith("."):
                        continue  # a file being written, or the scratch directory's
                    key = (Path(dirpath) / name).relative_to(self.root).as_posix()
                    if key.startswith(prefix):
                        found.append(key)
            return sorted(found)

        return await _in_thread(walk)

    def scratch_dir(self) -> str:
        d = self.root / ".scratch"
        d.mkdir(parents=True, exist_ok=True)
        return str(d)

    @staticmethod
    def _put(path: Path, data: bytes) -> str:
        if path.exists() and path.read_bytes() == data:
            return path.as_uri()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)  # atomic: readers see the old file or the new one
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path.as_uri()

    @staticmethod
    def _put_file(path: Path, src: Path) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        if src.resolve().parent != path.parent:
            fd, staged_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            staged = Path(staged_name)
            try:
                with src.open("rb") as fin, os.fdopen(fd, "wb") as fout:
                    while chunk := fin.read(1 << 20):
                        fout.write(chunk)
                    fout.flush()
                    os.fsync(fout.fileno())
            except BaseException:
                staged.unlink(missing_ok=True)
                raise
            src.unlink()
            src = staged
        os.replace(src, path)
        return path.as_uri()


async def _in_thread(call: Callable[..., T], *args: Any) -> T:
    try:
        return await asyncio.to_thread(call, *args)
    except OSError as exc:  # a full or read-only disk: the same failure as an unreachable S3
        raise StorageUnavailable(f"Local object storage failed: {exc.strerror}.") from exc
