"""The fire drill (``mlops drill``): monitoring and response proved on a replayed stream.

``scenarios`` plans the stream and what each scenario injects, ``timeline`` scores and
renders the decisions, ``runner`` runs the real commands in a throwaway copy.
"""
