"""Evaluate profiles: classifiers, retrieval, embeddings, feature-set comparison and tap selection."""
