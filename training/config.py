"""Configuration dataclasses for the networks, the losses and the meta-learning loop.

Two model sizes share one code path: ``paper`` (the widths of Zakharov et al. 2019) and ``lite`` (a
small generator for laptop CPUs). A config can also be read from a JSON file; unknown keys are
errors.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError
from .precision import PRECISIONS

# iBUG-68 face parts, each a polyline over landmark indices; closed parts wrap around.
FACE_PARTS: tuple[tuple[str, tuple[int, ...], bool], ...] = (
    ("jaw", tuple(range(0, 17)), False),
    ("right_brow", tuple(range(17, 22)), False),
    ("left_brow", tuple(range(22, 27)), False),
    ("nose_bridge", tuple(range(27, 31)), False),
    ("lower_nose", tuple(range(30, 36)), False),
    ("right_eye", tuple(range(36, 42)), True),
    ("left_eye", tuple(range(42, 48)), True),
    ("outer_lips", tuple(range(48, 60)), True),
    ("inner_lips", tuple(range(60, 68)), True),
)


@dataclass
class RasterConfig:
    """Landmark rasteriser: one channel per face part, soft lines of Gaussian profile."""

    sigma: float = 1.2  # line half-width in output pixels (Gaussian std)
    samples_per_segment: int = 8  # points splatted along each polyline segment

    def validate(self) -> None:
        if not self.sigma > 0:
            raise ConfigError(f"raster.sigma must be > 0, got {self.sigma}")
        if self.samples_per_segment < 1:
            raise ConfigError("raster.samples_per_segment must be >= 1")


@dataclass
class WarpConfig:
    """The warping generator (family ``warp``, training/networks/warp_generator.py)."""

    prior_grid: int = 64  # resolution of the analytic piecewise-affine field (upsampled to the output)
    net_grid: int = 64  # resolution of the per-shot flow/confidence refiner
    synth_grid: int = 128  # resolution of the synthesis branch and its occlusion mask
    flow_width: int = 16
    synth_width: int = 16
    blend_top: int = 2  # shots warped at full resolution per frame: the nearest by landmark distance
    tau_init: float = 0.002  # blend temperature of the landmark distance: small, the nearest shot wins
    max_correction: float = 0.05  # bound of the learned flow correction (crop units; 0.05 = 6.4 px at 256)
    mask_bias: float = 6.0  # occlusion mask logit at init (6: sigmoid 0.998, the warp shows through)
    # The synthesis branch paints the warp plus a correction (True) or an image of its own (False,
    # the first design: its mask had to start near 1, where the sigmoid's slope, 0.0025, starved it).
    synth_residual: bool = False
    reference_cap: int = 8  # shots an avatar keeps for the generator (the manifest states it)
    # The synthesis branch also reads where the target's mouth is open beyond every chosen shot's
    # (the inner-lip polygon, filled, times the opening no shot shows): what only painting can show.
    mouth_channel: bool = False
    # With mouth_channel: the occlusion mask's logit minus this x the mouth channel, so where the
    # mouth opens beyond every shot the painter's correction shows in full instead of (1 - mask) of
    # it (~0.4 at step 22,162). It holds no weights: the residual painter's correction starts small,
    # so a gain changes the frames little until training uses it (training.warp_convert --mouth-mask-gain).
    mouth_mask_gain: float = 0.0

    def validate(self) -> None:
        if self.mouth_mask_gain < 0 or (self.mouth_mask_gain > 0 and not self.mouth_channel):
            raise ConfigError("warp.mouth_mask_gain must be >= 0 and needs warp.mouth_channel")
        for name in ("prior_grid", "net_grid", "synth_grid"):
            v = getattr(self, name)
            if v < 8 or v % 4:
                raise ConfigError(f"warp.{name} must be a multiple of 4 and >= 8, got {v}")
        if self.flow_width < 1 or self.synth_width < 1:
            raise ConfigError("warp.flow_width and warp.synth_width must be >= 1")
        if not self.tau_init > 0 or not self.max_correction >= 0:
            raise ConfigError("warp.tau_init must be > 0 and warp.max_correction >= 0")
        if not 1 <= self.blend_top <= 8:
            raise ConfigError("warp.blend_top must be in 1..8")
        if not 1 <= self.reference_cap <= 32:
            raise ConfigError("warp.reference_cap must be in 1..32")


FAMILIES = ("adain", "warp")
# The warp family's shots at this multiple of the output side (training, export, the package).
REFERENCE_SCALES = (1, 2, 3, 4)


@dataclass
class NetworkConfig:
    """Widths and depths of the embedder, generator and discriminator."""

    resolution: int = 256
    embedding_dim: int = 512
    # Generator: downsampling widths (one residual block each, resolution halves per block),
    # bottleneck residual blocks at the last width, then upsampling back to `resolution`.
    gen_down: tuple[int, ...] = (64, 128, 256, 512)
    gen_bottleneck: int = 4
    gen_up: tuple[int, ...] = (256, 128, 64, 32)
    gen_stem: int = 32  # width of the full-resolution stem conv (0: no stem, first block downsamples)
    gen_attention: tuple[int, ...] = (64,)  # feature resolutions with self-attention
    gen_separable: bool = False  # depthwise-separable 3x3 convs (lite)
    # Embedder and discriminator: residual downsampling widths (one block per halving).
    emb_widths: tuple[int, ...] = (64, 128, 256, 512, 512, 512)
    emb_attention: tuple[int, ...] = (32,)
    disc_widths: tuple[int, ...] = (64, 128, 256, 512, 512, 512)
    disc_attention: tuple[int, ...] = (32,)
    trunk_pool_first: bool = False  # embedder/discriminator's first block pools before its convs (4x cheaper)
    spectral_norm: bool = True
    raster: RasterConfig = field(default_factory=RasterConfig)
    # The generator family: "adain" (the paper's: synthesis from landmarks + AdaIN identity) or
    # "warp" (warps the avatar's shots along a motion field, synthesises what they hide).
    family: str = "adain"
    warp: WarpConfig = field(default_factory=WarpConfig)

    def validate(self) -> None:
        self.raster.validate()
        self.warp.validate()
        if self.family not in FAMILIES:
            raise ConfigError(f"net.family must be one of {FAMILIES}, got {self.family!r}")
        if self.resolution % (2 ** len(self.gen_down)) != 0:
            raise ConfigError("resolution must be divisible by 2**len(gen_down)")
        if len(self.gen_up) != len(self.gen_down):
            raise ConfigError("gen_up must have as many entries as gen_down")
        if self.embedding_dim < 1:
            raise ConfigError("embedding_dim must be positive")
        for name in ("emb_widths", "disc_widths"):
            if self.resolution // (2 ** len(getattr(self, name))) < 1:
                raise ConfigError(f"{name} downsamples below 1 pixel at resolution {self.resolution}")


@dataclass
class LossConfig:
    """Loss weights (the paper's values where it gives them) and the content-loss backbone."""

    content_backbone: Literal["efficientnet-lite0", "vgg19", "none"] = "efficientnet-lite0"
    content_weights_file: str = ""  # VGG19/VGGFace state dict the user names (no downloads)
    content_vggface_file: str = ""
    w_content: float = 0.1  # EfficientNet-Lite0 features are large; balances with w_l1
    w_vgg19: float = 1e-2
    w_vggface: float = 2e-3
    w_l1: float = 10.0  # multi-scale L1 (used with every backbone)
    l1_scales: int = 3
    w_adv: float = 1.0
    w_fm: float = 10.0
    w_match: float = 80.0
    w_gradient: float = 0.0  # L1 of image gradients (finite differences): punishes blur (warp family)
    # The content loss again on the mouth box alone (warp family; training/losses.mouth_crops): the
    # mouth is ~5% of the crop, so the whole-image loss barely asks the synthesis branch to paint an
    # opening mouth's inside (teeth), which no warp of a closed-mouth shot shows.
    w_mouth: float = 0.0
    mouth_crop: int = 64  # side of the mouth box the mouth loss compares, in pixels
    # A patch discriminator on the mouth box, conditioned on the inner-lip polygon (warp family;
    # training/networks/mouth_discriminator.py): L1 and perceptual losses settle for the mean of
    # teeth, tongue and shadow, which the warp's stretched lips already nearly are.
    w_mouth_adv: float = 0.0

    @property
    def adversarial(self) -> bool:
        """Whether training needs a discriminator (always for the adain family; warp: when weighted)."""
        return self.w_adv > 0 or self.w_fm > 0

    def validate(self) -> None:
        if self.content_backbone == "vgg19" and not self.content_weights_file:
            raise ConfigError("content_backbone 'vgg19' needs loss.content_weights_file (a state dict)")
        if self.l1_scales < 1:
            raise ConfigError("loss.l1_scales must be >= 1")
        if self.w_mouth < 0 or self.w_mouth_adv < 0 or self.mouth_crop < 16 or self.mouth_crop % 16:
            raise ConfigError("loss.w_mouth and loss.w_mouth_adv must be >= 0, loss.mouth_crop a multiple of 16")


@dataclass
class TrainConfig:
    """The meta-learning loop."""

    k_shots: int = 8
    batch_size: int = 1  # episodes (videos) per step
    lr_gen: float = 5e-5  # embedder + generator (paper)
    lr_disc: float = 2e-4  # discriminator (paper)
    # The projection P (identity -> AdaIN parameters) learns at lr_gen x this. The embeddings are
    # small (|e| ~ 0.3 in the lite model), so at 1 Adam's steps on P move psi = P e very slowly: after
    # 4,000 CPU steps psi still differed by only ~0.02 between people (AdaIN scale 1 +- 0.05).
    lr_projection_scale: float = 1.0
    betas: tuple[float, float] = (0.5, 0.999)
    d_steps: int = 2  # discriminator updates per generator update (paper: TTUR, two)
    steps: int = 1000
    seed: int = 0
    log_every: int = 10
    sample_every: int = 200
    checkpoint_every: int = 200
    flip_prob: float = 0.5
    color_jitter: float = 0.1
    num_workers: int = 0  # threads building the coming steps' batches (training.prefetch); 0: inline
    # Exponential moving average of the embedder's and generator's weights (training/averaging.py):
    # 0 = off; e.g. 0.999 averages over the last ~1,000 steps. Checkpoints then ship the average.
    ema_decay: float = 0.0
    # Speed (training/precision.py; bench/train_speed.py measures it): "bf16" runs the forward passes
    # under torch.autocast (weights, optimiser and losses stay fp32); channels_last lays activations
    # out NHWC, which oneDNN's convolutions prefer.
    # "auto": bf16 where the CPU has native bf16 (AVX512_BF16 or AMX) or on a GPU, else fp32.
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    channels_last: bool = False
    # Warp family: the episode's shots at this multiple of the output side (data prepared at
    # net.resolution x this), as a package exported with --reference-scale renders from them.
    reference_scale: int = 1
    # Warp family: this fraction of episodes takes as target the frame whose mouth opens widest among
    # the episode's K + 1 frames, so the painter often sees a mouth no shot shows (0: all random).
    mouth_open_targets: float = 0.0

    def validate(self) -> None:
        if not 0.0 <= self.mouth_open_targets <= 1.0:
            raise ConfigError(f"train.mouth_open_targets must be in [0, 1], got {self.mouth_open_targets}")
        if not 1 <= self.k_shots <= 32:
            raise ConfigError("train.k_shots must be in 1..32")
        if self.batch_size < 1 or self.steps < 0 or self.d_steps < 0:
            raise ConfigError("train.batch_size >= 1, steps >= 0, d_steps >= 0")
        if self.lr_projection_scale <= 0:
            raise ConfigError("train.lr_projection_scale must be > 0")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"train.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"train.ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.reference_scale not in REFERENCE_SCALES:
            raise ConfigError(f"train.reference_scale must be one of {REFERENCE_SCALES}, got {self.reference_scale}")


@dataclass
class Config:
    """Everything a run needs; stored in each checkpoint so export can rebuild the modules."""

    size: Literal["lite", "paper", "tiny", "warp", "tiny-warp"] = "lite"
    net: NetworkConfig = field(default_factory=NetworkConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> "Config":
        self.net.validate()
        self.loss.validate()
        self.train.validate()
        if self.train.reference_scale != 1 and self.net.family != "warp":
            raise ConfigError("train.reference_scale is for the warp family (its generator reads the shots)")
        if (self.loss.w_mouth > 0 or self.loss.w_mouth_adv > 0) and self.net.family != "warp":
            raise ConfigError("loss.w_mouth and loss.w_mouth_adv are for the warp family")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        return json.dumps(self.to_dict(), indent=1)


def paper_config() -> Config:
    """The paper's widths at 256x256."""
    return Config(size="paper", net=NetworkConfig())


def lite_config() -> Config:
    """A small generator for laptop CPUs (~30 FPS on 2 cores through ONNX Runtime)."""
    net = NetworkConfig(
        gen_stem=0,
        gen_down=(32, 64, 128, 192),
        gen_bottleneck=3,
        gen_up=(128, 64, 32, 16),
        gen_attention=(32,),
        gen_separable=True,
        emb_widths=(32, 64, 128, 256, 256, 256),  # + a linear to D=512: keeps the package small
        emb_attention=(32,),
        disc_widths=(32, 64, 128, 256, 384, 512),
        disc_attention=(),
        trunk_pool_first=True,
    )
    return Config(size="lite", net=net)


def tiny_config() -> Config:
    """A very small model at 64x64 for tests (seconds on a CPU)."""
    net = NetworkConfig(
        resolution=64,
        embedding_dim=64,
        gen_stem=0,
        gen_down=(16, 32),
        gen_bottleneck=1,
        gen_up=(16, 8),
        gen_attention=(16,),
        gen_separable=False,
        emb_widths=(16, 32, 64),
        emb_attention=(16,),
        disc_widths=(16, 32, 64),
        disc_attention=(),
        raster=RasterConfig(sigma=0.8),
    )
    loss = LossConfig(content_backbone="none")
    return Config(size="tiny", net=net, loss=loss)


def warp_config() -> Config:
    """The warping generator beside lite's embedder (which it reuses, frozen)."""
    config = lite_config()
    config.size = "warp"
    config.net.family = "warp"
    config.train.lr_gen = 2e-4
    config.train.betas = (0.9, 0.999)  # no adversary: plain Adam
    config.train.k_shots = 8
    config.train.batch_size = 4
    config.train.precision = "auto"
    config.train.ema_decay = 0.99
    config.train.num_workers = 1
    config.train.sample_every = 100
    config.train.checkpoint_every = 100
    config.loss.w_gradient = 10.0
    # No adversary by default; a config with w_adv or w_fm > 0 (training/configs/warp_adversarial.json)
    # trains beside lite's projection discriminator (training/warp_learning.py).
    config.loss.w_adv = 0.0
    config.loss.w_fm = 0.0
    config.train.d_steps = 1
    config.net.warp.synth_residual = True  # synth = warp + correction: untrained, still the warp at any mask
    config.net.warp.mask_bias = 0.0  # so the mask starts where the sigmoid has slope (0.25)
    return config


def tiny_warp_config() -> Config:
    """The warping generator at 64x64 for tests."""
    config = tiny_config()
    config.size = "tiny-warp"
    config.net.family = "warp"
    config.net.warp = WarpConfig(prior_grid=16, net_grid=16, synth_grid=32, flow_width=4, synth_width=4,
                                 reference_cap=4, synth_residual=True, mask_bias=0.0)
    config.loss.w_adv = config.loss.w_fm = 0.0  # as the warp preset: no adversary unless weighted
    return config


PRESETS = {"lite": lite_config, "paper": paper_config, "tiny": tiny_config, "warp": warp_config,
           "tiny-warp": tiny_warp_config}


_SUBCONFIGS: dict[str, type] = {
    "net": NetworkConfig, "loss": LossConfig, "train": TrainConfig, "raster": RasterConfig,
    "warp": WarpConfig,
}


def _from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected an object, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown config key(s) {unknown}; known: {sorted(known)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        sub = _SUBCONFIGS.get(name)
        if sub is not None:
            kwargs[name] = _from_dict(sub, value, f"{where}.{name}")
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> Config:
    """Build a config from a dict (e.g. a checkpoint's). Unknown keys are errors.

    A ``size`` key names the preset that missing keys default to.
    """
    data = dict(data)
    size = data.get("size", "lite")
    if size not in PRESETS:
        raise ConfigError(f"unknown size {size!r}; choose one of {sorted(PRESETS)}")
    base = PRESETS[size]().to_dict()
    merged = _deep_merge(base, data)
    return _from_dict(Config, merged, "config").validate()


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def load_config(name_or_path: str) -> Config:
    """A preset name (``lite``, ``paper``, ``tiny``) or a JSON file of overrides."""
    if name_or_path in PRESETS:
        return PRESETS[name_or_path]().validate()
    path = Path(name_or_path)
    if not path.is_file():
        raise ConfigError(f"config {name_or_path!r} is neither a preset {sorted(PRESETS)} nor a file")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid JSON: {exc}") from exc
    return config_from_dict(data)
