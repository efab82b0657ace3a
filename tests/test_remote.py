"""Annotations, images and outputs on S3 (a real moto_server), storage options, errors."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from factories import Box, labelimg_xml
from od_protos import parse_with_protobuf
from s3server import moto_server
from test_tfrecord import IMAGES, check_examples, dataset, read_examples  # noqa: F401

from annoconv import convert
from annoconv.cli import main
from annoconv.errors import AccessDeniedError, AnnotationError, NotFoundError
from annoconv.io.fs import (
    _fs_kwargs,
    exists,
    filesystem,
    merge_storage_options,
    parse_storage_option,
    read_bytes,
    retrying,
    using_storage_options,
)
from annoconv.tfexample import iter_tfrecords


def _tar_of(folder: Path, top: str) -> bytes:
    """The files under `folder` as a tar, below a top-level folder as USPTO tarballs have."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                tar.add(path, f"{top}/{path.relative_to(folder).as_posix()}")
    return buffer.getvalue()


def _download_shards(s3: Any, prefix: str, into: Path) -> list[Path]:
    s3.invalidate_cache()
    shards = sorted(s3.glob(f"{prefix}-*-of-*"))
    local = []
    for shard in shards:
        target = into / Path(shard).name
        s3.get(shard, str(target))
        local.append(target)
    return local


@pytest.mark.parametrize("layout", ["loose", "tar"])
def test_xml2tfrecord_with_everything_on_s3(
    layout: str,
    dataset: tuple[Path, Path],  # noqa: F811
    s3: Any,
    s3_bucket: str,
    s3_endpoint: str,
    tmp_path: Path,
) -> None:
    ann, images = dataset
    s3.put(str(ann), f"{s3_bucket}/ann", recursive=True)
    if layout == "loose":
        s3.put(str(images), f"{s3_bucket}/images", recursive=True)
        image_source = f"s3://{s3_bucket}/images"
    else:
        s3.pipe(f"{s3_bucket}/drawings.tar", _tar_of(images, "grant_yb2_20200107"))
        image_source = f"s3://{s3_bucket}/drawings.tar"
    prefix = f"s3://{s3_bucket}/out/uspto.record"
    s3.pipe(f"{s3_bucket}/out/uspto.record-00002-of-00003", b"an earlier run's shard")
    code = main(
        [
            "xml2tfrecord",
            f"s3://{s3_bucket}/ann",
            prefix,
            "--images",
            image_source,
            "--shards",
            "2",
            "--storage-option",
            f"endpoint_url={s3_endpoint}",
            "-q",
        ]
    )
    assert code == 0
    shards = _download_shards(s3, prefix, tmp_path)
    assert [p.name for p in shards] == [
        "uspto.record-00000-of-00002",
        "uspto.record-00001-of-00002",
    ]
    examples = read_examples(shards)
    assert sorted(e["image/source_id"].decode() for e in examples) == sorted(x[0] for x in IMAGES)
    check_examples(examples)
    label_map = parse_with_protobuf(s3.cat(f"{s3_bucket}/out/label_map.pbtxt").decode())
    assert label_map == [("figure", 1, None), ("label", 2, None)]


def test_archive_and_loose_images_give_the_same_shards(
    dataset: tuple[Path, Path],  # noqa: F811
    s3: Any,
    s3_bucket: str,
    s3_storage_options: dict[str, Any],
    tmp_path: Path,
) -> None:
    """Shards are chosen by key, so streaming the archive (records in archive order) puts
    every record in the same shard as the loose run; only the order within a shard may
    differ, and it is the same on every run over the same archive."""
    ann, images = dataset
    (tmp_path / "drawings.tar").write_bytes(_tar_of(images, "top"))
    results = {}
    for name, source in [("loose", str(images)), ("tar", str(tmp_path / "drawings.tar"))]:
        prefix = f"s3://{s3_bucket}/{name}/out.record"
        convert(
            str(ann),
            prefix,
            images=source,
            write_options={"shards": 3},
            storage_options=s3_storage_options,
        )
        (tmp_path / name).mkdir()
        shards = _download_shards(s3, prefix, tmp_path / name)
        results[name] = [sorted(iter_tfrecords(str(shard))) for shard in shards]
    assert results["loose"] == results["tar"]
    assert sum(len(shard) for shard in results["tar"]) == len(IMAGES)


def test_failed_run_leaves_no_object_and_no_open_upload(
    s3: Any, s3_bucket: str, s3_storage_options: dict[str, Any], tmp_path: Path
) -> None:
    from PIL import Image

    ann, images = tmp_path / "ann", tmp_path / "images"
    ann.mkdir()
    images.mkdir()
    # A 6 MB PNG of noise: more than s3fs's 5 MB block, so a part is uploaded before the
    # run fails and the multipart upload must be aborted, not completed.
    Image.frombytes("RGB", (1500, 1400), os.urandom(1500 * 1400 * 3)).save(images / "a.png")
    assert (images / "a.png").stat().st_size > 5 * 2**20
    (ann / "a.xml").write_text(labelimg_xml("a.png", 1500, 1400, [Box("x", 1, 1, 10, 10)]))
    (ann / "b.xml").write_text(labelimg_xml("b.png", 10, 10, [Box("x", 1, 1, 5, 5)]))  # no image
    prefix = f"s3://{s3_bucket}/out/run.record"
    with pytest.raises(AnnotationError, match=r"b\.xml.*b\.png"):
        convert(str(ann), prefix, images=str(images), storage_options=s3_storage_options)
    s3.invalidate_cache()
    assert s3.find(f"{s3_bucket}/out") == []
    client = _boto_client(s3_storage_options)
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def _boto_client(options: dict[str, Any]) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=options["endpoint_url"], region_name="us-east-1")


def test_missing_bucket_and_key_are_one_line_errors(
    s3_bucket: str,
    s3_storage_options: dict[str, Any],
    s3_endpoint: str,
    tmp_path: Path,
    capsys: Any,
) -> None:
    with using_storage_options(s3_storage_options):
        with pytest.raises(NotFoundError, match=rf"^s3://{s3_bucket}/nothing/here\.jpg: not found"):
            read_bytes(f"s3://{s3_bucket}/nothing/here.jpg")
        with pytest.raises(NotFoundError, match=r"^s3://no-such-bucket-4a1b/x\.tif: not found"):
            read_bytes("s3://no-such-bucket-4a1b/x.tif")
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "a.xml").write_text(labelimg_xml("a.jpg", 10, 10, [Box("x", 1, 1, 5, 5)]))
    argv = ["xml2tfrecord", str(tmp_path / "ann"), str(tmp_path / "out.record")]
    missing = "s3://no-such-bucket-4a1b/drawings.tar"
    code = main([*argv, "--images", missing, "--storage-option", f"endpoint_url={s3_endpoint}"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"annoconv: error: {missing}: not found")
    assert not list(tmp_path.glob("out.record*"))


def test_permission_denied_names_the_url() -> None:
    """A second server that checks credentials (moto's INITIAL_NO_AUTH_ACTION_COUNT=0):
    the dummy keys are unknown to it, so every request is refused with 403."""
    with (
        moto_server(env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as endpoint,
        using_storage_options({"endpoint_url": endpoint}),
        pytest.raises(AccessDeniedError, match=r"^s3://locked/a\.png: permission denied"),
    ):
        read_bytes("s3://locked/a.png")


def test_chained_url_takes_the_options_to_the_storage_layer(
    s3: Any, s3_bucket: str, s3_storage_options: dict[str, Any]
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ann/1.xml", "<annotation/>")
    s3.pipe(f"{s3_bucket}/ann.zip", buffer.getvalue())
    with using_storage_options(s3_storage_options):
        assert read_bytes(f"zip://ann/1.xml::s3://{s3_bucket}/ann.zip") == b"<annotation/>"


def test_storage_option_values_and_s3_client_kwargs() -> None:
    pairs = [
        parse_storage_option(text)
        for text in [
            "endpoint_url=http://127.0.0.1:9000",
            "anon=FALSE",
            "default_block_size=1048576",
            "timeout=2.5",
            "profile=none",
            "client_kwargs.region_name=eu-west-1",
            'config_kwargs={"max_pool_connections": 20}',
        ]
    ]
    options = merge_storage_options(pairs)
    assert options == {
        "endpoint_url": "http://127.0.0.1:9000",
        "anon": False,
        "default_block_size": 1048576,
        "timeout": 2.5,
        "profile": None,
        "client_kwargs": {"region_name": "eu-west-1"},
        "config_kwargs": {"max_pool_connections": 20},
    }
    with using_storage_options(options):
        s3_kwargs = _fs_kwargs("s3://bucket/key")
        chained = _fs_kwargs("zip://a.xml::s3://bucket/a.zip")
        memory = _fs_kwargs("memory://x/y")
    assert s3_kwargs["client_kwargs"] == {
        "region_name": "eu-west-1",
        "endpoint_url": "http://127.0.0.1:9000",
    }
    assert "endpoint_url" not in s3_kwargs and s3_kwargs["anon"] is False
    assert chained == {"s3": s3_kwargs}
    with using_storage_options({"endpoint_url": "http://127.0.0.1:9"}):
        fs, path = filesystem("s3://bucket/key")
    assert fs.client_kwargs == {"endpoint_url": "http://127.0.0.1:9"} and path == "bucket/key"
    assert memory["endpoint_url"] == "http://127.0.0.1:9000"  # other stores take them as given
    assert _fs_kwargs("s3://bucket/key") == {}  # only inside the block
    for bad in ["novalue", "=x", "x={broken"]:
        with pytest.raises(ValueError):
            parse_storage_option(bad)


def test_cli_rejects_a_malformed_storage_option(capsys: Any) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["xml2tfrecord", "a", "b", "--storage-option", "endpoint_url"])
    assert exit_info.value.code == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_transient_errors_are_retried_and_others_are_not() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError("connection reset by peer")
        return "done"

    assert retrying(flaky, backoff=0) == "done" and len(calls) == 3

    def forbidden() -> str:
        calls.append(1)
        raise PermissionError("denied")

    calls.clear()
    with pytest.raises(PermissionError):
        retrying(forbidden, backoff=0)
    assert len(calls) == 1

    def always_down() -> str:
        calls.append(1)
        raise TimeoutError("timed out")

    calls.clear()
    with pytest.raises(TimeoutError):
        retrying(always_down, attempts=4, backoff=0)
    assert len(calls) == 4


def test_transcode_a_red_book_tarball_on_s3(
    s3: Any, s3_bucket: str, s3_storage_options: dict[str, Any], tmp_path: Path
) -> None:
    from factories import draw_image
    from PIL import Image

    from annoconv.io.transcode import transcode_images

    sheet = draw_image(tmp_path / "s.tif", 40, 30, mode="1", compression="group4").read_bytes()
    patent = io.BytesIO()
    with zipfile.ZipFile(patent, "w") as archive:
        archive.writestr("US1-20200107.XML", "<us-patent-grant/>")
        archive.writestr("US1-20200107-D00001.TIF", sheet)
    tarball = io.BytesIO()
    with tarfile.open(fileobj=tarball, mode="w") as tar:
        for name, data in [("I20200107/US1-20200107.ZIP", patent.getvalue()), ("y/2.tif", sheet)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    s3.pipe(f"{s3_bucket}/I20200107.tar", tarball.getvalue())
    dst = tmp_path / "pngs"
    report = transcode_images(
        f"s3://{s3_bucket}/I20200107.tar", str(dst), to="png", storage_options=s3_storage_options
    )
    assert sorted(Path(p).relative_to(dst).as_posix() for p in report.written) == [
        "I20200107/US1-20200107/US1-20200107-D00001.png",
        "y/2.png",
    ]
    with Image.open(dst / "y" / "2.png") as page:
        assert (page.format, page.mode, page.size) == ("PNG", "1", (40, 30))


def test_missing_credentials_are_a_one_line_error(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-role lookup
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    options = {"endpoint_url": s3_endpoint, "skip_instance_cache": True}
    with (
        using_storage_options(options),
        pytest.raises(AccessDeniedError, match=r"^s3://bucket/ann: no usable credentials"),
    ):
        exists("s3://bucket/ann")
