"""The learned router: logistic regression on cheap features, cross-fitted.

Label: the strongest tier answers right where the cheapest does not ("strong helps"). Each item's
score comes from a model fitted on the other folds only (scikit-learn's cross_val_predict over a
stratified k-fold), so no item is ever scored by a model that saw it.
"""
import numpy as np
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler

from testbed.errors import UserError
from testbed.routing.base import ROUTERS, Router
from testbed.routing.outcomes import OutcomeTable


def strong_helps(table: OutcomeTable) -> np.ndarray:
    return table.correct[:, -1] & ~table.correct[:, 0]


def check_enough(n_items: int, folds: int, where: str) -> None:
    """Plan-time check: every fold needs items to train on and items to score."""
    if n_items < 2 * folds:
        raise UserError(f"{where}.router.folds: {folds}-fold cross-fitting needs at least {2 * folds} labelled items, "
                        f"the workload has {n_items}",
                        f"lower {where}.router.folds (at least 2) or raise workload.limit")


@ROUTERS.register("learned")
class Learned(Router):
    where = "routing"

    def fit(self, table: OutcomeTable) -> None:
        y = strong_helps(table).astype(int)
        folds = self.cfg.folds
        rarest = int(min(y.sum(), len(y) - y.sum()))
        if rarest < folds:
            raise UserError(f"{self.where}.router.folds: {folds}-fold cross-fitting needs {folds} labelled items of each "
                            f"class; {int(y.sum())} of {len(y)} items are ones where only the strong tier is right",
                            f"lower {self.where}.router.folds to {max(2, rarest)} or below, or label more items "
                            "(raise workload.limit)")
        model = make_pipeline(DictVectorizer(sparse=False), MaxAbsScaler(),
                              LogisticRegression(C=self.cfg.c, class_weight="balanced", max_iter=1000))
        x = [self.features[i].as_dict() for i in table.item_ids]
        cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.cfg.seed)
        prob = cross_val_predict(model, x, y, cv=cv, method="predict_proba")[:, 1]
        self.oof = dict(zip(table.item_ids, prob))
        cut = self.calibrated_cut(table, prob)
        self.threshold = self.cfg.threshold if cut is None else cut

    def first_tier(self, item_id: str) -> int:
        return self.n_tiers - 1 if self.oof[item_id] >= self.threshold else 0

    def scores(self, table: OutcomeTable) -> np.ndarray:
        return np.array([self.oof[i] for i in table.item_ids])
