"""A fully automated MLOps template for tabular ML on DVC.

Layers, imports pointing one way only: ``cli`` and ``stages`` (thin entry
points) -> logic modules (pure functions) ; ``config`` and ``io`` hold the
typed params and every disk access.
"""
