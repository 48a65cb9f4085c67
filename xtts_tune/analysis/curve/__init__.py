"""One learning curve's numbers and verdict: thresholds, reading and checking it, its noise and trend, the
diagnosis (healthy, overfitting, underfitting, unstable). Nothing here knows about a study."""
