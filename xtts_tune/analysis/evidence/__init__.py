"""What the judgment is checked against: clips selection never saw (the winner against the guide's recipe),
runs with other seeds, and the overfitting flag's effect on the pick."""
