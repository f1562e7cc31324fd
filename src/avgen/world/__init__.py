"""The procedural world: training data, test data and benchmark with exact ground truth (WORLD.md)."""
