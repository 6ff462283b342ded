"""Pixel baselines of the CPJUMP1 study: random forest and RBF-SVM on flattened, standardised pixels."""

from __future__ import annotations

import numpy as np


def make_pixel_model(name: str, balanced: bool, seed: int = 0):
    """A scikit-learn pipeline: StandardScaler on flattened pixels, then RF or RBF-SVM.

    Parameters
    ----------
    name : {"rf", "svm"}
    balanced : bool
        Use ``class_weight='balanced'`` (the pixel-model counterpart of a weighted loss / balanced sampler).
    seed : int
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    cw = "balanced" if balanced else None
    if name == "rf":
        clf = RandomForestClassifier(n_estimators=300, class_weight=cw, random_state=seed, n_jobs=1)
    elif name == "svm":
        clf = SVC(kernel="rbf", C=10.0, gamma="scale", class_weight=cw, random_state=seed)
    else:
        raise ValueError(f"unknown pixel model '{name}'")
    return make_pipeline(StandardScaler(), clf)


def fit_predict_pixels(name: str, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, balanced: bool,
                       seed: int = 0) -> tuple[object, np.ndarray, np.ndarray]:
    """Fit on flattened training images and predict train and validation images.

    Returns
    -------
    model, train predictions, validation predictions
    """
    model = make_pixel_model(name, balanced, seed)
    xt = np.asarray(x_train, dtype=np.float32).reshape(len(x_train), -1)
    xv = np.asarray(x_val, dtype=np.float32).reshape(len(x_val), -1)
    model.fit(xt, y_train)
    return model, model.predict(xt), model.predict(xv)
