"""Object storage in a local directory: the default for development and single-machine setups."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from clearport.core.errors import InvalidRequest


class LocalDirectoryStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not key or key.startswith("/") or not path.is_relative_to(self.root):
            raise InvalidRequest("Object keys are relative paths inside the storage root.")
        return path

    def put(self, key: str, data: bytes) -> str:
        path = self._path(key)
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

    def put_file(self, key: str, local_path: str) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        src = Path(local_path)
        if src.resolve().parent != path.parent:
            staged = path.parent / f".tmp-{path.name}"
            with src.open("rb") as fin, staged.open("wb") as fout:
                while chunk := fin.read(1 << 20):
                    fout.write(chunk)
                fout.flush()
                os.fsync(fout.fileno())
            src.unlink()
            src = staged
        os.replace(src, path)
        return path.as_uri()

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.exists() else None

    def scratch_dir(self) -> str:
        """A directory on the same filesystem for streamed files (so put_file is a rename)."""
        d = self.root / ".scratch"
        d.mkdir(parents=True, exist_ok=True)
        return str(d)
