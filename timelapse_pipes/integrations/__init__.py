"""Adapters for the tools users come from.

* :mod:`.dataset`: a map-style ``TimelapseDataset`` and its sampler, for ``DataLoader`` /
  ``StatefulDataLoader``;
* :mod:`.lightning`: ``RandomTimelapseDatamodule`` (cyto-dl's name), also reachable as
  ``timelapse_pipes.lightning``;
* :mod:`.monai`: ``BioIOImageLoaderd``, a MONAI dict transform over the same readers.
"""
