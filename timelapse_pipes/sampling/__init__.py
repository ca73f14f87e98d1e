"""The pure sampling core: what the i-th sample of epoch e is, as a function of (seed, epoch, i).

Nothing here does I/O or keeps random state, and nothing imports beyond numpy,
:mod:`timelapse_pipes.records` and :mod:`timelapse_pipes.errors` (a test checks it). Every draw of
a sample comes from a counter-based stream keyed by ``(seed, epoch, i, TAG)``
(:class:`~timelapse_pipes.sampling.draws.SampleDraws`), so any worker, rank or resumed process
computes the same plan for the same sample.

* :mod:`.draws`: the keyed streams and their tags (row, timepoints, crop, transform, substitute);
* :mod:`.rows`: which row a sample reads, uniformly (one permutation per pass) or by row weights;
* :mod:`.timepoints`: which frames (random, sequential, uniform, offsets, gap);
* :mod:`.crops`: where the crop window lies;
* :mod:`.grid`: the inference grid (no draws: rows, frame windows and tiles in one fixed order),
  and :mod:`.stitching`, its inverse, which puts tile predictions back into whole frames;
* :mod:`.class_ratios`, :mod:`.centre_draws`, :mod:`.block_maps`: crops placed by label classes, by a
  weight map, and from low-resolution foreground counts;
* :mod:`.dims`: how a file's axes map onto the T, C, Z, Y, X a sample is read in;
* :mod:`.sharding`: which samples of the global order a rank takes.
"""
