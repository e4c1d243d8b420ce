"""scikit-learn's 8x8 digits as 64-feature CSV rows, classified by an MLP: the default task."""
