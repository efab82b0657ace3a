"""The loaders stay behind their extras: the base install pulls in neither TensorFlow nor
PyTorch, `import annoconv` (and a conversion to a Hub-ready dataset) imports neither, the torch
loader runs without TensorFlow and the TensorFlow one without torch."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

from detection_data import voc_dataset
from packaging.markers import default_environment
from packaging.requirements import Requirement

HEAVY = {"tensorflow", "tensorflow-cpu", "tensorflow-intel", "keras", "tf-keras", "torch"}


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _closure(name: str, extras: frozenset[str] = frozenset()) -> set[str]:
    """Every distribution installing `name` (with `extras`) pulls in, itself included, from
    the installed packages' metadata (annoconv's own: its pyproject.toml as installed)."""
    found: set[str] = set()
    pending = [(name, extras)]
    while pending:
        current, wanted = pending.pop()
        if _name(current) in found:
            continue
        found.add(_name(current))
        try:
            requires = importlib.metadata.requires(current) or []
        except importlib.metadata.PackageNotFoundError:
            continue  # not installed here, so nothing installed depends on it
        for text in requires:
            requirement = Requirement(text)
            if _applies(requirement, wanted):
                pending.append((requirement.name, frozenset(requirement.extras)))
    return found


def _applies(requirement: Requirement, extras: frozenset[str]) -> bool:
    if requirement.marker is None:
        return True
    environment = default_environment()
    return any(
        requirement.marker.evaluate({**environment, "extra": extra}) for extra in {"", *extras}
    )


def test_the_base_install_pulls_no_tensorflow_and_no_torch() -> None:
    base = _closure("annoconv")
    assert {"pyarrow", "pillow", "pydantic", "google-crc32c"} <= base
    assert not base & HEAVY, sorted(base & HEAVY)
    with_tf = _closure("annoconv", frozenset({"tf"})) - base
    with_torch = _closure("annoconv", frozenset({"torch"})) - base
    assert "tensorflow-cpu" in with_tf and "torch" not in with_tf
    assert "torch" in with_torch and not with_torch & (HEAVY - {"torch"})


def _run(script: str) -> str:
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_import_annoconv_and_a_hub_ready_conversion_import_neither(tmp_path: Path) -> None:
    voc = voc_dataset(tmp_path / "voc", images=4)
    out = tmp_path / "ds"
    script = (
        "import sys, annoconv\n"
        "import annoconv.formats.parquet_hub\n"
        f"annoconv.convert({str(voc.root)!r}, {str(out)!r}, to_format='parquet',\n"
        "                 split='train=0.5,test=0.5', write_options={'embed_images': True})\n"
        "heavy = ('tensorflow', 'torch', 'keras', 'datasets')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    assert _run(script) == "[]"
    assert (out / "README.md").is_file()


def test_the_torch_loader_needs_no_tensorflow_and_the_tf_loader_no_torch(tmp_path: Path) -> None:
    voc = voc_dataset(tmp_path / "voc", images=4)
    record = tmp_path / "ds.record"
    script = (
        "import sys, annoconv, annoconv.torch\n"
        f"annoconv.convert({str(voc.root)!r}, {str(record)!r})\n"
        f"items = list(annoconv.torch.TFRecordDetection({str(record)!r}))\n"
        "print(len(items), 'tensorflow' in sys.modules)\n"
    )
    assert _run(script) == "4 False"
    script = (
        "import sys, annoconv.tf\n"
        f"print(sum(1 for _ in annoconv.tf.dataset({str(record)!r})), 'torch' in sys.modules)\n"
    )
    assert _run(script).splitlines()[-1] == "4 False"
