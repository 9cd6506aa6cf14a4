"""Features: the per-feature imputation plan, the KNN imputer, and the model pipeline
(imputation, encoding, estimator) built from it.
"""
