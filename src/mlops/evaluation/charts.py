"""Evaluation charts as PNG bytes, for people (DVC renders the CSV tables itself).

Figures are drawn with matplotlib's object API and the Agg renderer, never
pyplot, so nothing global is touched; PNG metadata carries no software
version or date, so the same tables give the same bytes. Each chart draws one
plot table, so a task gets the charts of the tables its evaluation makes.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any

import matplotlib.style
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_SIZE = (5.0, 4.0)
_DPI = 100
_TOP_FEATURES = 15


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure)  # attaches the Agg renderer to this figure only
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _draw(plot: Callable[[Axes], None], size: tuple[float, float] = _SIZE) -> bytes:
    # matplotlib's default style, whatever another library set for the process: the same
    # tables give the same bytes in `dvc repro` and in a notebook that ran Optuna's plots.
    with matplotlib.style.context("default"):
        figure = Figure(figsize=size, dpi=_DPI, layout="constrained")
        plot(figure.add_subplot())
        return png(figure)


def _diagonal(axes: Axes) -> None:
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)


def roc(table: pd.DataFrame, details: Mapping[str, Any]) -> bytes:
    auc = details["test"].get("roc_auc")

    def plot(axes: Axes) -> None:
        axes.plot(table["fpr"], table["tpr"], label=f"model (AUC {_number(auc)})")
        _diagonal(axes)
        axes.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curve")
        axes.legend(loc="lower right")

    return _draw(plot)


def precision_recall(table: pd.DataFrame, details: Mapping[str, Any]) -> bytes:
    average_precision = details["test"].get("pr_auc")

    def plot(axes: Axes) -> None:
        axes.plot(
            table["recall"], table["precision"], label=f"model (AP {_number(average_precision)})"
        )
        axes.set(xlabel="Recall", ylabel="Precision", title="Precision-recall curve")
        axes.set_ylim(0, 1.02)
        axes.legend(loc="lower left")

    return _draw(plot)


def confusion(table: pd.DataFrame, details: Mapping[str, Any]) -> bytes:
    """Counts of (actual, predicted) over the model's classes, in its order."""
    classes = list(details["classes"])
    counts = pd.crosstab(table["actual"], table["predicted"]).reindex(
        index=classes, columns=classes, fill_value=0
    )
    ticks = list(range(len(classes)))
    names = [str(c) for c in classes]

    def plot(axes: Axes) -> None:
        axes.imshow(counts.to_numpy(), cmap="Blues")
        darkest = counts.to_numpy().max()
        for (row, column), value in np.ndenumerate(counts.to_numpy()):
            color = "white" if value > darkest / 2 else "black"  # readable on the dark cells
            axes.text(column, row, str(value), ha="center", va="center", color=color)
        axes.set(xticks=ticks, yticks=ticks, xlabel="Predicted", ylabel="Actual")
        axes.set_xticklabels(names, rotation=45 if len(classes) > 2 else 0, ha="right")
        axes.set_yticklabels(names)
        axes.set_title("Confusion matrix")

    side = max(_SIZE[1], 0.5 * len(classes) + 2.0)
    return _draw(plot, size=(side + 1.0, side))


def calibration(table: pd.DataFrame, details: Mapping[str, Any]) -> bytes:
    """One curve per calibrated class (one-vs-rest), the ECE in the title."""
    groups = list(table.groupby("class", sort=False))

    def plot(axes: Axes) -> None:
        for name, part in groups:
            label = "model" if len(groups) == 1 else f"class {name}"
            axes.plot(part["mean_predicted"], part["fraction_positive"], marker="o", label=label)
        _diagonal(axes)
        axes.set(
            xlabel="Mean predicted probability",
            ylabel="Observed rate of the class",
            title=f"Calibration curve (ECE {_number(details['test'].get('ece'))})",
        )
        axes.legend(loc="upper left")

    return _draw(plot)


def importance(table: pd.DataFrame, details: Mapping[str, Any]) -> bytes:
    top = table.head(_TOP_FEATURES).iloc[::-1]

    def plot(axes: Axes) -> None:
        axes.barh(top["feature"], top["importance"], xerr=top["std"], color="tab:blue")
        axes.set(
            xlabel=f"Drop in {details['metric']} when shuffled",
            title="Permutation importance (test split)",
        )

    return _draw(plot, size=(6.0, 0.3 * len(top) + 1.5))


def business(table: pd.DataFrame, details: Mapping[str, Any]) -> bytes:
    best_threshold, best_value = details["business"]["best_threshold"], details["business"]["value"]

    def plot(axes: Axes) -> None:
        axes.plot(table["threshold"], table["value"])
        axes.axvline(best_threshold, linestyle="--", color="grey")
        axes.set(
            xlabel="Decision threshold",
            ylabel="Expected value per prediction",
            title=f"Business value (best {best_value:.3f} at {best_threshold:.3f})",
        )

    return _draw(plot)


def residuals(table: pd.DataFrame, details: Mapping[str, Any]) -> bytes:
    """Residual (actual minus predicted) against the prediction: a pattern is a bias."""

    def plot(axes: Axes) -> None:
        axes.scatter(table["predicted"], table["residual"], s=6, alpha=0.5)
        axes.axhline(0.0, linestyle="--", color="grey", linewidth=1)
        axes.set(xlabel="Predicted value", ylabel="Actual - predicted", title="Residuals")

    return _draw(plot)


def predicted_actual(table: pd.DataFrame, details: Mapping[str, Any]) -> bytes:
    """Predicted against actual values; a perfect model lies on the diagonal."""
    low = float(min(table["actual"].min(), table["predicted"].min()))
    high = float(max(table["actual"].max(), table["predicted"].max()))

    def plot(axes: Axes) -> None:
        axes.scatter(table["actual"], table["predicted"], s=6, alpha=0.5)
        axes.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1)
        axes.set(xlabel="Actual value", ylabel="Predicted value", title="Predicted vs actual")

    return _draw(plot)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


Chart = Callable[[pd.DataFrame, Mapping[str, Any]], bytes]
# The chart of each plot table that has one (a table such as per_class is for DVC only).
CHARTS: dict[str, Chart] = {
    "roc": roc,
    "pr": precision_recall,
    "confusion": confusion,
    "calibration": calibration,
    "importance": importance,
    "business": business,
    "residuals": residuals,
    "predicted_actual": predicted_actual,
}


def render(tables: Mapping[str, pd.DataFrame], details: Mapping[str, Any]) -> dict[str, bytes]:
    """One PNG per evaluation table that has a chart, named like its CSV table."""
    return {name: CHARTS[name](table, details) for name, table in tables.items() if name in CHARTS}
