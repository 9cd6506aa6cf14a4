"""Evaluation charts as PNG bytes, for people (DVC renders the CSV tables itself).

Figures are drawn with matplotlib's object API and the Agg renderer, never
pyplot, so nothing global is touched; PNG metadata carries no software
version or date, so the same tables give the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

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
    figure = Figure(figsize=size, dpi=_DPI, layout="constrained")
    plot(figure.add_subplot())
    return png(figure)


def _diagonal(axes: Axes) -> None:
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)


def roc(table: pd.DataFrame, auc: float) -> bytes:
    def plot(axes: Axes) -> None:
        axes.plot(table["fpr"], table["tpr"], label=f"model (AUC {auc:.3f})")
        _diagonal(axes)
        axes.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curve")
        axes.legend(loc="lower right")

    return _draw(plot)


def precision_recall(table: pd.DataFrame, auc: float) -> bytes:
    def plot(axes: Axes) -> None:
        axes.plot(table["recall"], table["precision"], label=f"model (AP {auc:.3f})")
        axes.set(xlabel="Recall", ylabel="Precision", title="Precision-recall curve")
        axes.set_ylim(0, 1.02)
        axes.legend(loc="lower left")

    return _draw(plot)


def confusion(table: pd.DataFrame) -> bytes:
    counts = pd.crosstab(table["actual"], table["predicted"]).reindex(
        index=[0, 1], columns=[0, 1], fill_value=0
    )

    def plot(axes: Axes) -> None:
        axes.imshow(counts.to_numpy(), cmap="Blues")
        for (row, column), value in np.ndenumerate(counts.to_numpy()):
            axes.text(column, row, str(value), ha="center", va="center", color="black")
        axes.set(xticks=[0, 1], yticks=[0, 1], xlabel="Predicted", ylabel="Actual")
        axes.set_title("Confusion matrix")

    return _draw(plot)


def calibration(table: pd.DataFrame, ece: float) -> bytes:
    def plot(axes: Axes) -> None:
        axes.plot(
            table["mean_predicted"],
            table["fraction_positive"],
            marker="o",
            label=f"model (ECE {ece:.3f})",
        )
        _diagonal(axes)
        axes.set(
            xlabel="Mean predicted probability",
            ylabel="Observed positive rate",
            title="Calibration curve",
        )
        axes.legend(loc="upper left")

    return _draw(plot)


def importance(table: pd.DataFrame) -> bytes:
    top = table.head(_TOP_FEATURES).iloc[::-1]

    def plot(axes: Axes) -> None:
        axes.barh(top["feature"], top["importance"], xerr=top["std"], color="tab:blue")
        axes.set(
            xlabel="Drop in the target metric when shuffled",
            title="Permutation importance (test split)",
        )

    return _draw(plot, size=(6.0, 0.3 * len(top) + 1.5))


def business(table: pd.DataFrame, best_threshold: float, best_value: float) -> bytes:
    def plot(axes: Axes) -> None:
        axes.plot(table["threshold"], table["value"])
        axes.axvline(best_threshold, linestyle="--", color="grey")
        axes.set(
            xlabel="Decision threshold",
            ylabel="Expected value per prediction",
            title=f"Business value (best {best_value:.3f} at {best_threshold:.3f})",
        )

    return _draw(plot)


def render(tables: dict[str, pd.DataFrame], details: dict[str, Any]) -> dict[str, bytes]:
    """One PNG per evaluation chart, named like its CSV table."""
    test, money = details["test"], details["business"]
    return {
        "roc": roc(tables["roc"], test["roc_auc"]),
        "pr": precision_recall(tables["pr"], test["pr_auc"]),
        "confusion": confusion(tables["confusion"]),
        "calibration": calibration(tables["calibration"], test["ece"]),
        "importance": importance(tables["importance"]),
        "business": business(tables["business"], money["best_threshold"], money["value"]),
    }
