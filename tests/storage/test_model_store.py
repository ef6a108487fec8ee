"""The model store against a local directory and a real S3-compatible server (moto)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from service.config import Settings
from service.errors import UnsafeKey
from service.storage import ModelStore, model_key, store_from_settings
from tests.helpers import s3_client, s3_options

UNSAFE_KEYS = [
    "",
    "../x",
    "/etc/passwd",
    "/abs/model.keras",
    "experiments/../../x",
    "experiments/a/../b",
    "experiments/./a",
    "./a",
    "experiments//a",
    "experiments/a/",
    "experiments\\a",
    "~/a",
    "experiments/a\n",
    "s3://other-bucket/a",
]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    name = f"models-{uuid.uuid4().hex[:12]}"
    s3_client(s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["local", "s3", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ModelStore:
    if request.param == "local":
        return ModelStore(str(tmp_path / "store"))
    if request.param == "memory":  # fsspec's in-memory filesystem: a remote store, no server
        return ModelStore(f"memory://{tmp_path.name}/models")
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = request.getfixturevalue("bucket")
    return ModelStore(f"s3://{bucket}/models", storage_options=s3_options(endpoint))


def make_file(tmp_path: Path, content: bytes, name: str = "upload.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_put_file_then_get_file_round_trips(store: ModelStore, tmp_path: Path) -> None:
    content = bytes(range(256)) * 64
    stored = store.put_file(make_file(tmp_path, content), model_key("exp1"))

    assert stored == "experiments/exp1/model.keras"  # a key: rows survive a moved store
    fetched = store.get_file(model_key("exp1"), tmp_path / "download" / "model.keras")
    assert fetched.read_bytes() == content


def test_put_file_overwrites(store: ModelStore, tmp_path: Path) -> None:
    store.put_file(make_file(tmp_path, b"first", "a"), "experiments/e/model.keras")
    store.put_file(make_file(tmp_path, b"second", "b"), "experiments/e/model.keras")

    fetched = store.get_file("experiments/e/model.keras", tmp_path / "out")
    assert fetched.read_bytes() == b"second"


def test_get_file_of_missing_key_raises(store: ModelStore, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        store.get_file("experiments/missing/model.keras", tmp_path / "out")


def test_exists(store: ModelStore, tmp_path: Path) -> None:
    assert not store.exists("experiments/e/model.keras")

    store.put_file(make_file(tmp_path, b"x"), "experiments/e/model.keras")

    assert store.exists("experiments/e/model.keras")
    assert not store.exists("experiments/e/other.keras")


def test_write_json_then_read_json(store: ModelStore) -> None:
    value = {"epoch": 3, "history": {"loss": [0.5, 0.25]}, "note": "ünïcode"}
    store.write_json("experiments/e/checkpoint/last.json", value)

    assert store.read_json("experiments/e/checkpoint/last.json") == value
    assert store.exists("experiments/e/checkpoint/last.json")


def test_write_json_overwrites(store: ModelStore) -> None:
    store.write_json("experiments/e/meta.json", {"epoch": 1})
    store.write_json("experiments/e/meta.json", {"epoch": 2})

    assert store.read_json("experiments/e/meta.json") == {"epoch": 2}


def test_read_json_of_missing_key_raises(store: ModelStore) -> None:
    with pytest.raises(FileNotFoundError):
        store.read_json("experiments/missing/meta.json")


def test_delete_prefix_removes_everything_under_it_and_nothing_beside(
    store: ModelStore, tmp_path: Path
) -> None:
    upload = make_file(tmp_path, b"model")
    store.put_file(upload, "experiments/abc/model.keras")
    store.write_json("experiments/abc/checkpoint/last.json", {"epoch": 1})
    store.put_file(upload, "experiments/abcdef/model.keras")
    store.put_file(upload, "experiments/ab/model.keras")

    store.delete_prefix("experiments/abc")

    assert not store.exists("experiments/abc/model.keras")
    assert not store.exists("experiments/abc/checkpoint/last.json")
    assert store.exists("experiments/abcdef/model.keras")
    assert store.exists("experiments/ab/model.keras")


def test_delete_prefix_of_missing_prefix_is_a_no_op(store: ModelStore) -> None:
    store.delete_prefix("experiments/never-written")


def test_key_of_inverts_uri(store: ModelStore) -> None:
    key = "experiments/e/checkpoint/last.keras"
    assert store.key_of(store.uri(key)) == key


@pytest.mark.parametrize(
    "suffix", ["", "-other/experiments/e/model.keras", "/../outside", "/experiments/../../x"]
)
def test_key_of_refuses_uris_outside_the_store(store: ModelStore, suffix: str) -> None:
    with pytest.raises(UnsafeKey):
        store.key_of(f"{store.url}{suffix}")


def test_key_of_refuses_another_store(store: ModelStore) -> None:
    with pytest.raises(UnsafeKey):
        store.key_of("s3://somebody-else/models/experiments/e/model.keras")


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_unsafe_keys_are_refused_by_every_operation(
    store: ModelStore, tmp_path: Path, key: str
) -> None:
    upload = make_file(tmp_path, b"x")
    operations: list[Callable[[], object]] = [
        lambda: store.exists(key),
        lambda: store.put_file(upload, key),
        lambda: store.get_file(key, tmp_path / "out"),
        lambda: store.write_json(key, {}),
        lambda: store.read_json(key),
        lambda: store.delete_prefix(key),
    ]
    for operation in operations:
        with pytest.raises(UnsafeKey):
            operation()


def test_files_leaves_out_names_that_are_no_key(tmp_path: Path) -> None:
    """A clone's models_store/.gitkeep (or a .DS_Store) is not the service's file."""
    store = ModelStore(str(tmp_path / "store"))
    (tmp_path / "store" / ".gitkeep").touch()
    store.write_json("experiments/a/last.json", {})
    assert store.files() == {"experiments/a/last.json": 2}


def test_unsafe_key_writes_nothing_outside_a_local_store(tmp_path: Path) -> None:
    store = ModelStore(str(tmp_path / "store"))

    with pytest.raises(UnsafeKey):
        store.write_json("../escaped.json", {"x": 1})

    assert not (tmp_path / "escaped.json").exists()


def test_local_put_file_leaves_no_partial_files(tmp_path: Path) -> None:
    store = ModelStore(str(tmp_path / "store"))

    store.put_file(make_file(tmp_path, b"model"), "experiments/e/model.keras")
    store.write_json("experiments/e/meta.json", {"epoch": 1})

    assert sorted(p.name for p in (tmp_path / "store/experiments/e").iterdir()) == [
        "meta.json",
        "model.keras",
    ]


def test_local_concurrent_writers_of_one_key_never_leave_a_torn_file(tmp_path: Path) -> None:
    """A worker that lost its lease may still be writing while the new owner writes too."""
    store = ModelStore(str(tmp_path / "store"))
    key = "experiments/e/checkpoint/last.keras"
    contents = [bytes([n]) * 2_000_000 for n in range(4)]
    uploads = [make_file(tmp_path, content, f"upload-{n}") for n, content in enumerate(contents)]
    errors: list[BaseException] = []

    def write(upload: Path) -> None:
        try:
            for _ in range(10):
                store.put_file(upload, key)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(upload,)) for upload in uploads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert store.get_file(key, tmp_path / "final").read_bytes() in contents
    assert [p.name for p in (tmp_path / "store/experiments/e/checkpoint").iterdir()] == [
        "last.keras"
    ]


def test_s3_exists_sees_objects_written_by_another_process(
    s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    """The API and the workers share the bucket: no process may trust a stale listing."""
    store = ModelStore(f"s3://{bucket}/models", storage_options=s3_options(s3_endpoint))
    store.put_file(make_file(tmp_path, b"old"), "experiments/gone/model.keras")
    store.delete_prefix("experiments/gone")  # lists the prefix, which may fill a listing cache
    assert not store.exists("experiments/new/model.keras")

    s3_client(s3_endpoint).put_object(
        Bucket=bucket, Key="models/experiments/new/model.keras", Body=b"new"
    )
    s3_client(s3_endpoint).put_object(
        Bucket=bucket, Key="models/experiments/gone/model.keras", Body=b"back"
    )

    assert store.exists("experiments/new/model.keras")
    assert store.exists("experiments/gone/model.keras")
    assert store.get_file("experiments/gone/model.keras", tmp_path / "o").read_bytes() == b"back"


def test_s3_objects_land_under_the_url_prefix(
    s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    store = ModelStore(f"s3://{bucket}/models/", storage_options=s3_options(s3_endpoint))
    store.put_file(make_file(tmp_path, b"m"), "experiments/e/model.keras")
    store.write_json("experiments/e/meta.json", {"epoch": 1})

    listed = s3_client(s3_endpoint).list_objects_v2(Bucket=bucket)
    assert sorted(obj["Key"] for obj in listed["Contents"]) == [
        "models/experiments/e/meta.json",
        "models/experiments/e/model.keras",
    ]
    assert store.url == f"s3://{bucket}/models"


def test_store_from_settings_defaults_to_models_dir(tmp_path: Path) -> None:
    store = store_from_settings(Settings(models_dir=str(tmp_path / "models")))

    assert store.is_local
    store.write_json("experiments/e/meta.json", {"epoch": 1})
    assert (tmp_path / "models/experiments/e/meta.json").is_file()


def test_store_from_settings_reads_storage_options_from_the_environment(
    s3_endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELS_URL", f"s3://{bucket}/prefix")
    monkeypatch.setenv("MODELS_STORAGE_OPTIONS", json.dumps(s3_options(s3_endpoint)))

    store = store_from_settings(Settings())
    store.write_json("experiments/e/meta.json", {"epoch": 7})

    body = s3_client(s3_endpoint).get_object(Bucket=bucket, Key="prefix/experiments/e/meta.json")
    assert json.loads(body["Body"].read()) == {"epoch": 7}
