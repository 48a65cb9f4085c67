"""The real XTTS v2 GPT shape with random weights (``make bench-real-size``): :mod:`.bench` runs it,
:mod:`.model` builds the model, :mod:`.step` times steps, :mod:`.trial` whole trials, :mod:`.table` the rows."""
