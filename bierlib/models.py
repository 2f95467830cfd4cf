"""Embedding networks: a small CNN (pretrained on font glyphs) for the quick profile and
torchvision backbones for the paper profile.

Every model maps images (B, C, H, W) to embeddings (B, D). The embeddings are
*not* normalised by the model: losses and evaluation choose (``normalize=``).
"""
from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from .utils import check_positive_int

BACKBONES = {
    # name: (constructor in torchvision.models, feature dimension, its weights enum); torchvision
    # is imported when a backbone is built (it costs 2-3 s, the quick profile never needs it)
    "googlenet": ("googlenet", 1024, "GoogLeNet_Weights"),
    "resnet50": ("resnet50", 2048, "ResNet50_Weights"),
    "resnet18": ("resnet18", 512, "ResNet18_Weights"),
}


class SmallConvNet(nn.Module):
    """Conv-BN-ReLU-maxpool blocks, global average pooling and a linear embedding layer.

    The quick profile's backbone, a miniature of the papers' (GoogLeNet's 1024-d pool5 feeds a
    512-d embedding): four blocks of ``widths`` (32, 64, 128, 256) give F = 256 features for a
    D = 128 embedding (F = 2D), about 0.1 s per training step of 128 images of 28x28 on two
    CPU cores. ``pretrained=True`` loads the shipped weights of the convolutional blocks,
    trained by ``python -m bierlib.pretrain`` as a classifier of 1,000 font glyphs (see
    :func:`load_pretrained`); the embedding layer always starts from PyTorch's default
    initialisation. (B, C, H, W) -> (B, embedding_dim); ``features(images)`` -> (B, F).
    """

    def __init__(self, embedding_dim: int = 128, in_channels: int = 1,
                 widths: Sequence[int] = (32, 64, 128, 256), pretrained: bool = False):
        super().__init__()
        check_positive_int(embedding_dim, "embedding_dim")
        check_positive_int(in_channels, "in_channels")
        self.widths = tuple(check_positive_int(w, "widths") for w in widths)
        if not self.widths:
            raise ValueError("widths must name at least one block's channels, found ()")
        layers, c_in = [], in_channels
        for c_out in self.widths:
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())  # (B, F)
        self.feature_dim = self.widths[-1]
        self.embedding = nn.Linear(self.feature_dim, embedding_dim)
        self.in_channels = in_channels
        if pretrained:
            load_pretrained(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != self.in_channels:
            raise ValueError(f"expected images of shape (B, {self.in_channels}, H, W), "
                             f"found {tuple(images.shape)}")
        return self.embedding(self.features(images))


WEIGHTS_FOLDER = Path(__file__).parent / "weights"
PRETRAINED = "glyphs"  # the shipped weights of SmallConvNet: WEIGHTS_FOLDER / "glyphs.pt"


def pretrained_metadata(name: str = PRETRAINED) -> dict:
    """The metadata written with the weights ``name`` by ``python -m bierlib.pretrain``
    (source classes and images, steps, held-out accuracy, seed, command, sha256, ...)."""
    path = WEIGHTS_FOLDER / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in WEIGHTS_FOLDER.glob("*.json"))
        raise FileNotFoundError(f"no pretrained weights named {name!r} in {WEIGHTS_FOLDER} "
                                f"(shipped: {known}); make them with `python -m bierlib.pretrain "
                                f"--name {name}` or reinstall bierlib")
    return json.loads(path.read_text())


def load_pretrained(model: SmallConvNet, name: str = PRETRAINED) -> SmallConvNet:
    """Load the shipped convolutional weights ``name`` into ``model.features``, after checking
    the file against the sha256 of its metadata and the architecture against ``model``'s."""
    meta = pretrained_metadata(name)
    path = WEIGHTS_FOLDER / meta["file"]
    data = path.read_bytes() if path.is_file() else b""
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise RuntimeError(f"{path} does not match its metadata's sha256 (missing, truncated or "
                           f"replaced): reinstall bierlib or run `python -m bierlib.pretrain "
                           f"--name {name}` again")
    arch = {"widths": list(model.widths), "in_channels": model.in_channels}
    if meta["architecture"] != arch:
        raise ValueError(f"the pretrained weights {name!r} are for {meta['architecture']}, "
                         f"the model is {arch}: build SmallConvNet with those widths")
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    model.features.load_state_dict(state)
    return model


class FrozenBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm that always uses its stored statistics and never updates them (batches of 80
    from few classes would give poor batch statistics). Its affine parameters are frozen too,
    unless ``train_affine`` (divide and conquer's official code keeps training them)."""

    def __init__(self, num_features: int, train_affine: bool = False, **kwargs):
        super().__init__(num_features, **kwargs)
        for p in self.parameters():
            p.requires_grad_(train_affine)

    def train(self, mode: bool = True):
        return super().train(False)


def freeze_batchnorm(module: nn.Module, train_affine: bool = False) -> nn.Module:
    """Replace every ``BatchNorm2d`` in ``module`` by a :class:`FrozenBatchNorm2d` with its
    state (and ``train_affine``)."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d) and not isinstance(child, FrozenBatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, train_affine, eps=child.eps,
                                       momentum=child.momentum)
            frozen.load_state_dict(child.state_dict())
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child, train_affine)
    return module


#: Initialisations of the embedding layer (see :func:`init_embedding`).
EMBEDDING_INITS = ("pytorch", "xavier-normal", "xavier-uniform")


def init_embedding(layer: nn.Linear, sizes: Sequence[int], init: str = "pytorch") -> nn.Linear:
    """Initialise an embedding layer (D, F) block by block, one block of rows per learner or
    slice of ``sizes`` (summing to D), in place:

    * ``"pytorch"``: leave ``nn.Linear``'s default;
    * ``"xavier-normal"``: each block Xavier-normal with its own fan-out, biases of a fresh
      ``nn.Linear(F, d)`` (divide and conquer's official ``init_splitted``);
    * ``"xavier-uniform"``: each block Xavier-uniform, zero biases (BIER's official heads,
      TF-slim's ``fully_connected`` defaults).
    """
    if init not in EMBEDDING_INITS:
        raise ValueError(f"init must be one of {EMBEDDING_INITS}, found {init!r}")
    if sum(sizes) != layer.out_features or min(sizes) < 1:
        raise ValueError(f"sizes {list(sizes)} must be positive and sum to the layer's "
                         f"{layer.out_features} outputs")
    if init == "pytorch":
        return layer
    with torch.no_grad():
        start = 0
        for d in sizes:
            rows = slice(start, start + d)
            if init == "xavier-normal":
                fresh = nn.Linear(layer.in_features, d)
                layer.weight[rows] = nn.init.xavier_normal_(fresh.weight)
                layer.bias[rows] = fresh.bias
            else:
                layer.weight[rows] = nn.init.xavier_uniform_(torch.empty_like(layer.weight[rows]))
                layer.bias[rows] = 0.0
            start += d
    return layer


class BackboneEmbedder(nn.Module):
    """A torchvision backbone (classifier removed) followed by a linear embedding layer.

    Args:
        backbone: one of ``BACKBONES`` (``"googlenet"``, ``"resnet50"``, ``"resnet18"``).
        embedding_dim: D, the output size.
        pretrained: load the ImageNet weights. They are downloaded by torchvision on
            first use; if that fails (no network) a RuntimeError says so. Pass
            ``pretrained=False`` to ask for random initialisation explicitly.
        frozen_batchnorm: replace BatchNorm layers by frozen ones.
        train_batchnorm_affine: with ``frozen_batchnorm``, still train their affine parameters.
        dropout: dropout probability on the features before the embedding layer (active in
            training mode only: evaluation and clustering see the features unchanged).

    (B, 3, H, W) -> (B, embedding_dim). ``features(images)`` gives the pooled
    backbone features (B, F) used, for instance, to cluster the data.
    """

    def __init__(self, backbone: str = "googlenet", embedding_dim: int = 512,
                 pretrained: bool = True, frozen_batchnorm: bool = False,
                 train_batchnorm_affine: bool = False, dropout: float = 0.0):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {sorted(BACKBONES)}, found {backbone!r}")
        check_positive_int(embedding_dim, "embedding_dim")
        if train_batchnorm_affine and not frozen_batchnorm:
            raise ValueError("train_batchnorm_affine applies to frozen BatchNorm: set "
                             "frozen_batchnorm=True too")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), found {dropout}")
        import torchvision

        build, feature_dim, weights_enum = BACKBONES[backbone]
        build, weights_enum = (getattr(torchvision.models, name) for name in (build, weights_enum))
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
            freeze_batchnorm(net, train_batchnorm_affine)
        self.backbone, self.feature_dim, self.name = net, feature_dim, backbone
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.embedding = nn.Linear(feature_dim, embedding_dim)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected RGB images of shape (B, 3, H, W), "
                             f"found {tuple(images.shape)}")
        return self.dropout(self.backbone(images))  # (B, F)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.features(images))


def build_model(name: str, embedding_dim: int, in_channels: int = 3, pretrained: bool = True,
                frozen_batchnorm: bool = False, train_batchnorm_affine: bool = False,
                dropout: float = 0.0) -> nn.Module:
    """Build the embedding network named by a profile: ``"small_cnn"`` or a backbone name
    (the BatchNorm and dropout options apply to backbones only)."""
    if name == "small_cnn":
        if train_batchnorm_affine or dropout:
            raise ValueError("train_batchnorm_affine and embedding dropout apply to the paper "
                             "profile's backbones, not to small_cnn")
        return SmallConvNet(embedding_dim, in_channels=in_channels, pretrained=pretrained)
    if in_channels != 3:
        raise ValueError(f"backbone {name!r} takes RGB images (in_channels=3), found {in_channels}")
    return BackboneEmbedder(name, embedding_dim, pretrained, frozen_batchnorm,
                            train_batchnorm_affine, dropout)
