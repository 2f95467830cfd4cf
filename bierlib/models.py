"""Embedding networks: a small CNN for the quick profile and torchvision backbones for the paper
profile.

Every model maps images (B, C, H, W) to embeddings (B, D). The embeddings are
*not* normalised by the model: losses and evaluation choose (``normalize=``).
"""
from __future__ import annotations

import torch
import torchvision
from torch import nn

from .utils import check_positive_int

BACKBONES = {
    # name: (torchvision constructor, feature dimension, weights enum)
    "googlenet": (torchvision.models.googlenet, 1024, torchvision.models.GoogLeNet_Weights),
    "resnet50": (torchvision.models.resnet50, 2048, torchvision.models.ResNet50_Weights),
    "resnet18": (torchvision.models.resnet18, 512, torchvision.models.ResNet18_Weights),
}


class SmallConvNet(nn.Module):
    """Three conv-BN-ReLU-maxpool blocks, global average pooling and a linear embedding layer.

    Sized for 28-64 px images on a CPU: with the default width, about 0.06 s per
    training step of 128 images of 28x28 on two cores. (B, C, H, W) -> (B, embedding_dim).
    """

    def __init__(self, embedding_dim: int = 64, in_channels: int = 1, width: int = 32):
        super().__init__()
        check_positive_int(embedding_dim, "embedding_dim")
        check_positive_int(in_channels, "in_channels")
        check_positive_int(width, "width")

        def block(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                    nn.ReLU(inplace=True), nn.MaxPool2d(2)]

        self.features = nn.Sequential(*block(in_channels, width), *block(width, width),
                                      *block(width, 2 * width), nn.AdaptiveAvgPool2d(1),
                                      nn.Flatten())  # (B, 2 * width)
        self.feature_dim = 2 * width
        self.embedding = nn.Linear(self.feature_dim, embedding_dim)
        self.in_channels = in_channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != self.in_channels:
            raise ValueError(f"expected images of shape (B, {self.in_channels}, H, W), "
                             f"found {tuple(images.shape)}")
        return self.embedding(self.features(images))


class FrozenBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm that always uses its stored statistics and never updates them or its affine
    parameters (divide-and-conquer trains ResNet-50 this way: batches of 80 from few classes
    would give poor batch statistics)."""

    def __init__(self, num_features: int, **kwargs):
        super().__init__(num_features, **kwargs)
        for p in self.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True):
        return super().train(False)


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` in ``module`` by a :class:`FrozenBatchNorm2d` with its
    state."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d) and not isinstance(child, FrozenBatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps, momentum=child.momentum)
            frozen.load_state_dict(child.state_dict())
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child)
    return module


class BackboneEmbedder(nn.Module):
    """A torchvision backbone (classifier removed) followed by a linear embedding layer.

    Args:
        backbone: one of ``BACKBONES`` (``"googlenet"``, ``"resnet50"``, ``"resnet18"``).
        embedding_dim: D, the output size.
        pretrained: load the ImageNet weights. They are downloaded by torchvision on
            first use; if that fails (no network) a RuntimeError says so. Pass
            ``pretrained=False`` to ask for random initialisation explicitly.
        frozen_batchnorm: replace BatchNorm layers by frozen ones.

    (B, 3, H, W) -> (B, embedding_dim). ``features(images)`` gives the pooled
    backbone features (B, F) used, for instance, to cluster the data.
    """

    def __init__(self, backbone: str = "googlenet", embedding_dim: int = 512,
                 pretrained: bool = True, frozen_batchnorm: bool = False):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {sorted(BACKBONES)}, found {backbone!r}")
        check_positive_int(embedding_dim, "embedding_dim")
        build, feature_dim, weights_enum = BACKBONES[backbone]
        extra = {"aux_logits": False} if backbone == "googlenet" else {}
        if not pretrained:
            if backbone == "googlenet":
                extra["init_weights"] = True  # silences torchvision's FutureWarning
            net = build(weights=None, **extra)
        else:
            try:
                net = build(weights=weights_enum.DEFAULT, **extra)
            except Exception as err:  # no network shows as URLError, OSError, RuntimeError...
                raise RuntimeError(
                    f"could not load the ImageNet weights of {backbone} ({type(err).__name__}: "
                    f"{err}). torchvision downloads them into $TORCH_HOME on first use: run "
                    "once with internet access or copy the weight file there, or pass "
                    "pretrained=False to train from random initialisation") from err
        net.fc = nn.Identity()
        if frozen_batchnorm:
            freeze_batchnorm(net)
        self.backbone, self.feature_dim, self.name = net, feature_dim, backbone
        self.embedding = nn.Linear(feature_dim, embedding_dim)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected RGB images of shape (B, 3, H, W), "
                             f"found {tuple(images.shape)}")
        return self.backbone(images)  # (B, F)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.features(images))


def build_model(name: str, embedding_dim: int, in_channels: int = 3, pretrained: bool = True,
                frozen_batchnorm: bool = False) -> nn.Module:
    """Build the embedding network named by a profile: ``"small_cnn"`` or a backbone name."""
    if name == "small_cnn":
        return SmallConvNet(embedding_dim, in_channels=in_channels)
    if in_channels != 3:
        raise ValueError(f"backbone {name!r} takes RGB images (in_channels=3), found {in_channels}")
    return BackboneEmbedder(name, embedding_dim, pretrained, frozen_batchnorm)
