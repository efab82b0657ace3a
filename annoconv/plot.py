"""`annoconv stats --plot`: class counts and box size histograms as a PNG (matplotlib, the
`plot` extra, imported only here and only when asked; drawn with the Agg backend, no display)."""

from __future__ import annotations

import io
from typing import Any

from annoconv.errors import MissingDependencyError
from annoconv.io.fs import write_atomic
from annoconv.stats import DatasetStats, log2_histogram

#: The classes drawn in the class-count panel (the most frequent ones).
MAX_CLASSES_SHOWN = 30


def plot_stats(
    stats: DatasetStats, path: str, *, width: int = 1600, height: int = 1000, dpi: int = 100
) -> int:
    """Draw `stats` into a PNG of `width` x `height` pixels at `path` (written atomically);
    returns the file's size in bytes."""
    figure_class, canvas_class = _matplotlib()
    figure = figure_class(figsize=(width / dpi, height / dpi), dpi=dpi)
    canvas_class(figure)
    classes, sizes, aspects, per_image = figure.subplots(2, 2).flat
    _class_counts(classes, stats)
    _histogram(sizes, {"width": stats.widths, "height": stats.heights}, "box side (px)")
    _histogram(aspects, {"width / height": stats.aspects}, "box aspect (w/h)")
    counts = sorted(stats.boxes_per_image.items())
    per_image.bar([str(n) for n, _ in counts], [images for _, images in counts], color="tab:green")
    per_image.set_title("images by number of boxes")
    per_image.set_xlabel("boxes in the image")
    per_image.set_ylabel("images")
    figure.suptitle(f"{stats.images} images, {stats.boxes} boxes")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return write_atomic(path, buffer.getvalue())


def _matplotlib() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError(
            "plotting needs matplotlib: pip install 'annoconv[plot]'"
        ) from None
    return Figure, FigureCanvasAgg


def _class_counts(axes: Any, stats: DatasetStats) -> None:
    top = stats.boxes_per_class.most_common(MAX_CLASSES_SHOWN)
    names = [name for name, _ in reversed(top)]
    axes.barh(names, [count for _, count in reversed(top)], color="tab:blue")
    hidden = len(stats.boxes_per_class) - len(top)
    axes.set_title("boxes per class" + (f" (top {len(top)}, {hidden} more)" if hidden else ""))
    axes.set_xlabel("boxes")


def _histogram(axes: Any, series: dict[str, Any], label: str) -> None:
    """Power-of-two bins (see stats.log2_histogram), one bar series per entry, side by side."""
    for index, (name, values) in enumerate(series.items()):
        _, bins = log2_histogram(values)
        offset = 0.8 / len(series)
        positions = [low * 2 ** (offset * (index - (len(series) - 1) / 2)) for low, _, _ in bins]
        axes.bar(
            positions,
            [count for _, _, count in bins],
            width=[low * offset for low, _, _ in bins],
            align="edge",
            label=name,
        )
    axes.set_xscale("log", base=2)
    axes.set_xlabel(label)
    axes.set_ylabel("boxes")
    axes.set_title(f"{label}, power-of-two bins")
    if len(series) > 1:
        axes.legend()
