"""Everything that touches a file: storage URLs, bioio readers, region reads and metadata.

* :mod:`.storage`: local paths and fsspec URLs, credentials, staging and redaction;
* :mod:`.readers`: bioio reader classes and the per-process cache of open images;
* :mod:`.regions`: reading the timepoints, channels and crop of a sample (crop pushdown);
* :mod:`.metadata` and :mod:`.frame_times`: one (file, scene, level)'s metadata;
* :mod:`.cache`: the metadata cache, kept per process and persisted (its file format, atomic writes);
* :mod:`.retry`: transient errors and their retries;
* :mod:`.fast`: the chunk and page decoders that bypass dask for the common layouts.
"""
