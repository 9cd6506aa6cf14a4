"""Evaluation: held-out metrics, baselines, business value, slices, plots and
per-prediction explanations.
"""
