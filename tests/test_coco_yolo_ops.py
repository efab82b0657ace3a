"""COCO and YOLO with the rest of annoconv: S3 in and out (a real moto_server), images in a tar
archive, operations (split, classes, rename, dedup), merge, stats and the processes engine."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import yaml
from coco_factory import IMAGES, coco_document, draw_images, pixel_boxes, write_coco

from annoconv import convert
from annoconv.cli import main
from annoconv.formats.coco import CocoReader
from annoconv.merge import merge


def test_coco_from_s3_to_coco_and_yolo_on_s3(
    tmp_path: Path, s3: Any, s3_bucket: str, s3_storage_options: dict[str, Any]
) -> None:
    draw_images(tmp_path / "images")
    source = write_coco(tmp_path / "instances.json", coco_document())
    s3.put(str(source), f"{s3_bucket}/ann/instances.json")
    s3.put(str(tmp_path / "images"), f"{s3_bucket}/images", recursive=True)
    remote = f"s3://{s3_bucket}"
    options = {"storage_options": s3_storage_options}
    declared = CocoReader(str(source)).declared_label_map()
    convert(
        f"{remote}/ann/instances.json", f"{remote}/out/coco.json", label_map=declared, **options
    )
    convert(
        f"{remote}/ann/instances.json",
        f"{remote}/out/yolo",
        to_format="yolo",
        images=f"{remote}/images",
        label_map=declared,
        **options,
    )
    s3.invalidate_cache()
    written = json.loads(s3.cat(f"{s3_bucket}/out/coco.json"))
    assert [a["bbox"] for a in written["annotations"]] == [
        a["bbox"] for a in coco_document()["annotations"]
    ]
    data = yaml.safe_load(s3.cat(f"{s3_bucket}/out/yolo/data.yaml"))
    assert data["names"] == {0: "person", 1: "dog", 2: "toothbrush"}
    image = s3.cat(f"{s3_bucket}/out/yolo/images/000000000139.jpg")
    assert image == (tmp_path / "images" / "000000000139.jpg").read_bytes()
    label = s3.cat(f"{s3_bucket}/out/yolo/labels/000000000139.txt").decode()
    assert [line.split()[0] for line in label.splitlines()] == ["0", "1"]
    # And back from S3: the YOLO dataset read where it lies.
    back = tmp_path / "back.csv"
    report = convert(f"{remote}/out/yolo/data.yaml", str(back), **options)
    assert report.images_written == len(IMAGES)
    assert report.boxes_written == sum(len(boxes) for boxes in pixel_boxes().values())


def test_images_from_a_tar_archive_into_yolo(tmp_path: Path) -> None:
    draw_images(tmp_path / "images")
    source = write_coco(tmp_path / "instances.json", coco_document())
    archive = tmp_path / "images.tar"
    with tarfile.open(archive, "w") as tar:
        for name, *_ in IMAGES:
            tar.add(tmp_path / "images" / name, f"train2017/{name}")
    report = convert(str(source), str(tmp_path / "yolo"), to_format="yolo", images=str(archive))
    assert report.images_written == len(IMAGES)
    for name, *_ in IMAGES:
        assert (tmp_path / "yolo" / "images" / name).read_bytes() == (
            tmp_path / "images" / name
        ).read_bytes()


def test_operations_on_coco(tmp_path: Path) -> None:
    draw_images(tmp_path / "images")
    (tmp_path / "images" / "copy.jpg").write_bytes(
        (tmp_path / "images" / "000000000139.jpg").read_bytes()
    )
    images = [*IMAGES, ("copy.jpg", 640, 426, [(1, [1, 1, 10, 10])])]
    source = write_coco(tmp_path / "instances.json", coco_document(images))
    out = tmp_path / "ops.json"
    report = convert(
        str(source),
        str(out),
        images=str(tmp_path / "images"),
        classes=["dog", "person"],
        rename={"person": "human"},
        dedup=True,
    )
    document = json.loads(out.read_text())
    assert [c["name"] for c in document["categories"]] == ["dog", "human"]
    assert len(report.duplicates) == 1
    names = sorted(image["file_name"] for image in document["images"])
    # The toothbrush-only image is left without boxes (dropped), the copy is a duplicate; the
    # negative image stays one.
    assert names == ["000000000139.jpg", "000000000632.jpg", "000000000724.jpg"]
    assert report.images_read == report.images_written + report.images_skipped


def test_merge_coco_and_yolo_and_stats(tmp_path: Path, capsys: Any) -> None:
    draw_images(tmp_path / "images")
    source = write_coco(tmp_path / "instances.json", coco_document())
    convert(str(source), str(tmp_path / "yolo"), to_format="yolo", images=str(tmp_path / "images"))
    report = merge(
        [str(source), str(tmp_path / "yolo" / "data.yaml")],
        str(tmp_path / "both.csv"),
        images=str(tmp_path / "images"),
    )
    boxes = sum(len(b) for b in pixel_boxes().values())
    assert (report.images_written, report.boxes_written) == (2 * len(IMAGES), 2 * boxes)
    assert main(["stats", str(source), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["images"] == len(IMAGES)
    assert json.dumps(stats).count("toothbrush") >= 1


def test_coco_to_yolo_on_worker_processes_matches_the_local_run(tmp_path: Path) -> None:
    draw_images(tmp_path / "images")
    source = write_coco(tmp_path / "instances.json", coco_document())
    for engine in ("local", "processes"):
        extra: dict[str, Any] = {"workers": 2} if engine == "processes" else {}
        convert(
            str(source),
            str(tmp_path / engine),
            to_format="yolo",
            images=str(tmp_path / "images"),
            engine=engine,
            **extra,
        )
    local = sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local").rglob("*"))
    parallel = sorted(
        p.relative_to(tmp_path / "processes") for p in (tmp_path / "processes").rglob("*")
    )
    assert local == parallel
    for path in local:
        if (tmp_path / "local" / path).is_file():
            assert (tmp_path / "local" / path).read_bytes() == (
                tmp_path / "processes" / path
            ).read_bytes()


def test_dask_engine_reads_and_writes_both_formats_as_the_local_one(tmp_path: Path) -> None:
    import distributed

    draw_images(tmp_path / "images")
    source = write_coco(tmp_path / "instances.json", coco_document())
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        for engine in ("local", "dask"):
            extra: dict[str, Any] = {"scheduler": client} if engine == "dask" else {}
            out = tmp_path / engine
            convert(
                str(source),
                str(out / "yolo"),
                to_format="yolo",
                images=str(tmp_path / "images"),
                engine=engine,
                **extra,
            )
            convert(str(out / "yolo" / "data.yaml"), str(out / "back.csv"), engine=engine, **extra)
            convert(str(source), str(out / "coco.json"), engine=engine, **extra)
    for name in ("back.csv", "coco.json", "yolo/data.yaml", "yolo/labels/000000000139.txt"):
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
