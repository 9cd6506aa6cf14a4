"""Production monitoring: the reference profile saved with a model, the prediction log,
drift, numerical stability and realised and estimated performance."""
