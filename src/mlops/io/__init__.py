"""Adapters to the external systems, one module each: files on disk (``files``), users'
data files (``tables``), model files (``modelfile``), run records (``runs``), git, DVC,
the tuning study's database (``studydb``) and GTO. A stage imports only the ones it
uses, so editing one adapter reruns only the stages that depend on it.
"""
