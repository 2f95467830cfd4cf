import pytest
import torch

from bierlib.models import (BackboneEmbedder, FrozenBatchNorm2d, SmallConvNet, build_model,
                            init_embedding)


def test_small_cnn_shapes():
    model = SmallConvNet(embedding_dim=16)
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 16)
    assert model(torch.rand(2, 1, 64, 64)).shape == (2, 16)
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 1, H, W\)"):
        model(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="positive integer"):
        SmallConvNet(embedding_dim=0)


@pytest.mark.parametrize("name,feature_dim", [("googlenet", 1024), ("resnet50", 2048)])
def test_backbones_random_init(name, feature_dim):
    torch.manual_seed(0)
    model = build_model(name, embedding_dim=32, pretrained=False).eval()
    x = torch.rand(2, 3, 64, 64)
    assert model.features(x).shape == (2, feature_dim)
    assert model(x).shape == (2, 32)


def test_pretrained_without_weights_fails_clearly(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # empty cache: torchvision must download

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    import torchvision.models._api as api  # where torchvision's weights enum downloads from
    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError, match="network unreachable.*pretrained=False"):
        BackboneEmbedder("resnet50", 8, pretrained=True)


def test_frozen_batchnorm_keeps_statistics():
    model = BackboneEmbedder("resnet18", 8, pretrained=False, frozen_batchnorm=True)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(isinstance(m, FrozenBatchNorm2d) for m in bns)
    before = bns[0].running_mean.clone()
    model.train()
    model(torch.rand(4, 3, 64, 64)).sum().backward()
    assert torch.equal(bns[0].running_mean, before)
    assert bns[0].weight.grad is None and model.embedding.weight.grad is not None


def test_bad_arguments():
    with pytest.raises(ValueError, match="backbone must be one of"):
        BackboneEmbedder("vgg", 8, pretrained=False)
    with pytest.raises(ValueError, match="RGB"):
        build_model("resnet50", 8, in_channels=1, pretrained=False)


def test_batchnorm_affine_dropout_and_embedding_init_options():
    model = BackboneEmbedder("resnet18", 8, pretrained=False, frozen_batchnorm=True,
                             train_batchnorm_affine=True, dropout=0.5)
    bn = next(m for m in model.modules() if isinstance(m, FrozenBatchNorm2d))
    before = bn.running_mean.clone()
    model.train()
    images = torch.rand(2, 3, 64, 64)
    model(images).sum().backward()
    assert torch.equal(bn.running_mean, before) and bn.weight.grad is not None
    assert not torch.equal(model.features(images), model.features(images))  # dropout on
    model.eval()
    assert torch.equal(model.features(images), model.features(images))  # and off
    with pytest.raises(ValueError, match="frozen_batchnorm=True"):
        BackboneEmbedder("resnet18", 8, pretrained=False, train_batchnorm_affine=True)
    with pytest.raises(ValueError, match="small_cnn"):
        build_model("small_cnn", 8, 1, pretrained=False, dropout=0.1)
    layer = torch.nn.Linear(32, 12)
    init_embedding(layer, (4, 8), "xavier-uniform")
    assert torch.all(layer.bias == 0)
    for rows, fan_out in ((slice(0, 4), 4), (slice(4, 12), 8)):  # each block its own fan-out
        assert layer.weight[rows].abs().max() <= (6 / (32 + fan_out)) ** 0.5
    with pytest.raises(ValueError, match="init must be one of"):
        init_embedding(layer, (4, 8), "orthogonal")
    with pytest.raises(ValueError, match="sum to the layer's 12"):
        init_embedding(layer, (4, 4), "xavier-normal")
