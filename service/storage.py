"""The model store: trained models and per-epoch checkpoints, behind one fsspec URL.

A local directory by default; a shared mount or an object store (`s3://bucket/prefix`) when
the API and the workers run on different machines. Nothing else touches model files.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
from fsspec.core import url_to_fs

from service.config import Settings
from service.errors import UnsafeKey

_SAFE_KEY = re.compile(r"[A-Za-z0-9_\-]+(/[A-Za-z0-9_.\-]+)*")
_DOT_SEGMENTS = frozenset({".", ".."})  # `a/./b` would alias `a/b`; `..` would escape the root


def experiment_prefix(experiment_id: str) -> str:
    return f"experiments/{experiment_id}"


def model_key(experiment_id: str) -> str:
    return f"{experiment_prefix(experiment_id)}/model.keras"


def checkpoint_prefix(experiment_id: str) -> str:
    """Where an experiment's checkpoints live while it trains; removed once it succeeded."""
    return f"{experiment_prefix(experiment_id)}/checkpoint"


_ATTEMPT_FOLDER = re.compile(r"attempt-(\d+)")


def checkpoint_attempt_prefix(experiment_id: str, attempt: int) -> str:
    """One folder per attempt: an attempt writes and deletes inside its own folder only, so a
    stale attempt can never overwrite or delete what a newer one uses."""
    return f"{checkpoint_prefix(experiment_id)}/attempt-{attempt:04d}"


def checkpoint_key(experiment_id: str, attempt: int, epoch: int) -> str:
    """One file per epoch: `last.json` names the newest only once it is completely written."""
    return f"{checkpoint_attempt_prefix(experiment_id, attempt)}/epoch-{epoch:04d}.keras"


def checkpoint_meta_key(experiment_id: str, attempt: int) -> str:
    """What an attempt has published: its newest checkpoint file and the history up to it."""
    return f"{checkpoint_attempt_prefix(experiment_id, attempt)}/last.json"


def checkpoint_attempts(store: ModelStore, experiment_id: str) -> list[int]:
    """The attempts that left a checkpoint folder, newest first."""
    names = store.list_names(checkpoint_prefix(experiment_id))
    found = (_ATTEMPT_FOLDER.fullmatch(name) for name in names)
    return sorted((int(match.group(1)) for match in found if match), reverse=True)


def is_safe_key(key: str) -> bool:
    """A relative path of plain names that stays inside the store's root."""
    # fullmatch, not match: `$` would let a trailing newline through.
    return bool(_SAFE_KEY.fullmatch(key)) and _DOT_SEGMENTS.isdisjoint(key.split("/"))


class ModelStore:
    """Keys are relative paths such as `experiments/<id>/model.keras`, checked before use."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = url.rstrip("/")
        self.fs: fsspec.AbstractFileSystem
        self.fs, self.root = url_to_fs(self.url, **(storage_options or {}))
        self.root = self.root.rstrip("/")
        self.is_local = self.fs.protocol in ("file", "local") or "file" in self.fs.protocol
        if self.is_local:
            Path(self.root).mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> str:
        if not is_safe_key(key):
            raise UnsafeKey(f"refusing store key {key!r}")
        return f"{self.root}/{key}"

    def uri(self, key: str) -> str:
        return f"{self.url}/{key}"

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    def put_file(self, local_path: str | Path, key: str) -> str:
        """Upload atomically where the filesystem allows it: readers never see half a file.

        Returns the key, which is what a database row keeps: a URI would pin the store's place.
        """
        path = self._path(key)
        if self.is_local:
            _replace_local(path, lambda partial: shutil.copyfile(local_path, partial))
        else:
            self.fs.put_file(str(local_path), path)
        return key

    def get_file(self, key: str, local_path: str | Path) -> Path:
        local = Path(local_path)
        local.parent.mkdir(parents=True, exist_ok=True)
        self.fs.get_file(self._path(key), str(local))
        return local

    def size(self, key: str) -> int:
        return int(self.fs.size(self._path(key)))

    def iter_bytes(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The file in chunks, for streaming a download without holding it all in memory."""
        with self.fs.open(self._path(key), "rb") as file:
            while chunk := file.read(chunk_size):
                yield chunk

    def write_json(self, key: str, value: Any) -> None:
        path = self._path(key)
        data = json.dumps(value).encode()
        if self.is_local:
            _replace_local(path, lambda partial: partial.write_bytes(data))
        else:
            self.fs.pipe_file(path, data)

    def read_json(self, key: str) -> Any:
        return json.loads(self.fs.cat_file(self._path(key)))

    def list_names(self, prefix: str) -> list[str]:
        """The names directly under `prefix` (files and folders); none when it does not exist."""
        path = self._path(prefix)
        try:
            entries = self.fs.ls(path, detail=False)
        except FileNotFoundError:
            return []
        return [str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries]

    def files(self, prefix: str = "") -> dict[str, int]:
        """Every finished file under `prefix` (the whole store when empty): key -> size in
        bytes. Half-written `.partial` siblings are left out: they are no one's file yet; so
        are names no key can have (the repository's `models_store/.gitkeep`, a `.DS_Store`):
        they are not the service's, and every operation would refuse them."""
        root = self._path(prefix) if prefix else self.root
        try:
            found = self.fs.find(root, detail=True)
        except FileNotFoundError:
            return {}
        files: dict[str, int] = {}
        inside = f"{self.root}/"
        for path, info in found.items():
            key = str(path).removeprefix(inside)
            ours = key != path and is_safe_key(key) and not key.endswith(".partial")
            if info.get("type") == "file" and ours:
                files[key] = int(info.get("size") or 0)
        return files

    def total_bytes(self) -> int:
        return sum(self.files().values())

    def free_bytes(self) -> int | None:
        """Free space where a local store lives; None for an object store (it has no disk)."""
        if not self.is_local:
            return None
        return shutil.disk_usage(self.root).free

    def delete_prefix(self, prefix: str) -> None:
        path = self._path(prefix)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def stored_key(self, value: str) -> str:
        """The key a database row names: a key as such, or a URI inside this store (rows from
        before keys were stored); UnsafeKey for anything else."""
        if value.startswith(f"{self.url}/"):
            return self.key_of(value)
        self._path(value)
        return value

    def key_of(self, uri: str) -> str:
        if not uri.startswith(f"{self.url}/"):
            raise UnsafeKey(f"{uri!r} is not inside the model store {self.url!r}")
        key = uri[len(self.url) + 1 :]
        self._path(key)
        return key


def _replace_local(path: str, write: Callable[[Path], object]) -> None:
    """Write a sibling file, then rename it over `path`: readers never see half a file.

    The sibling's name is unique, so two writers of one key (a worker that lost its lease and
    the one that took over) cannot rename each other's half-written file into place.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{uuid.uuid4().hex}.partial")
    try:
        write(partial)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def store_from_settings(settings: Settings) -> ModelStore:
    """The one store the API and the workers share: MODELS_URL (or MODELS_DIR) and its options."""
    return ModelStore(settings.model_store_url, settings.models_storage_options)
