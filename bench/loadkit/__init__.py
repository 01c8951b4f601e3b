"""Parts of the load harness ``bench/load.py`` (kept out of ``bench/*.py``, which
``make bench`` runs one by one)."""
