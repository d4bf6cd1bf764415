"""Child-process side of the benchmark: ``child.py`` runs one workload through ``adapters.py``.

Both files run inside each peer's own virtualenv, so they use the standard library only.
"""
