"""What the user asks for: sample options, manifests, the config fingerprint, and row checks.

* :mod:`.options`: :class:`SampleOptions`, validated once;
* :mod:`.manifest`: :class:`ManifestColumns` and the manifest reader (CSV, per-split CSVs, ``dict_meta``);
* :mod:`.fingerprint`: the config summary a checkpoint carries;
* :mod:`.checks`: a row checked against its file's metadata (shared by the loader, ``inspect`` and the index).
"""
