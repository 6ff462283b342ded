"""Evaluate profiles: classifiers (classify), retrieval (mAP, NSC / NSCB), embeddings and comparisons.

>>> from stratonet.evaluate.classify import evaluate_classifiers
>>> from stratonet.evaluate.retrieval import map_scores, nsc_accuracy, evaluate_retrieval

Submodules are imported on demand (scikit-learn and copairs are slow to import).
"""
