"""scikit-learn's estimator checks for the deep detectors on 2-D input."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from mvtec_sklearn.detectors import FeatureAutoencoderDetector, FeatureVAEDetector

_TINY = dict(max_epochs=3, batch_size=64, random_state=0)


@parametrize_with_checks(
    [
        FeatureAutoencoderDetector(hidden_sizes=(8,), latent_dim=2, **_TINY),
        FeatureVAEDetector(hidden_sizes=(8,), latent_dim=2, **_TINY),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
