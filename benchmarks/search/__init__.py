"""Search strategies replayed on tables of measured curves (``make bench-search``): :mod:`.table` one table,
:mod:`.record` recording it, :mod:`.replay` searches replayed on it, :mod:`.bench` the command."""
