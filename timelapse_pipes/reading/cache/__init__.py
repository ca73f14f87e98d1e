"""The metadata cache: kept per process, persisted to a JSON file or read from an index.

* :mod:`.metadata_cache`: :class:`MetadataCache` (also the low-resolution maps crop placement plans from);
* :mod:`.file_format`: the cache / index file format;
* :mod:`.atomic`: atomic JSON writes (also used for checkpoints).
"""
