"""The task layer: what binary, multiclass and regression each mean, stated once.

``metrics`` is the metric registry, ``families`` the model family registry and
``task`` the tasks themselves (target encoding, splits and folds, predictions,
baselines). Every other module asks these instead of assuming a task.
"""
