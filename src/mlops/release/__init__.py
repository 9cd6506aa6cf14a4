"""Release: the gate (the blessing), the model registry on git tags, production."""
