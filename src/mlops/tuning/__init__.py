"""Tuning: the Optuna search over model families and their hyperparameters."""
