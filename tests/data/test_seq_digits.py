import pytest
import torch

from neurotoken.data.digits import load_digits
from neurotoken.data.seq_digits import load_seq_digits
from neurotoken.models import SpikingSSMClassifier


@pytest.fixture(scope="module")
def plain():
    return load_seq_digits()


def test_sequences_are_the_images_read_row_by_row(plain):
    images, seq = load_digits(), plain
    assert seq.x_train.shape == (len(images.x_train), 64, 1) and seq.x_test.shape == (len(images.x_test), 64, 1)
    assert torch.equal(seq.x_train[..., 0], images.x_train) and torch.equal(seq.x_test[..., 0], images.x_test)
    assert torch.equal(seq.y_train, images.y_train) and torch.equal(seq.y_test, images.y_test)


def test_permuted_variant_uses_one_fixed_permutation(plain):
    perm = load_seq_digits(permuted=True, permutation_seed=3)
    x, px = torch.cat([plain.x_train, plain.x_test])[..., 0], torch.cat([perm.x_train, perm.x_test])[..., 0]
    same = (px.unsqueeze(2) == x.unsqueeze(1)).all(0)  # [j, i]: permuted pixel j is pixel i in every image
    assert same.any(1).all()
    assert torch.equal(px, torch.cat(load_seq_digits(permuted=True, permutation_seed=3)[::2])[..., 0])
    assert not torch.equal(px, torch.cat(load_seq_digits(permuted=True, permutation_seed=4)[::2])[..., 0])
    assert not torch.equal(px, x)


def test_classifier_maps_sequences_to_logits_and_twin_shares_shapes(plain):
    x = plain.x_test[:5]
    for spiking in (True, False):
        for mixer in ("selective", "lru"):
            model = SpikingSSMClassifier(d_model=8, d_state=4, layers=2, spiking=spiking, mixer=mixer, dropout=0.1)
            assert model(x).shape == (5, 10)
    with pytest.raises(ValueError, match="1 channels"):
        SpikingSSMClassifier()(torch.zeros(2, 64, 3))
    with pytest.raises(ValueError, match="mixer must be one of"):
        SpikingSSMClassifier(mixer="s4")
