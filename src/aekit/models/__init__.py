"""Models: shared layers, the architectures (stacked, classifier, conv, VAE, PCA-residual, ladder) and their registry."""
