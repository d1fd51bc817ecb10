"""The warping generator (family ``warp``): move the shots' real pixels, synthesise only what is hidden.

Per frame, from the target's 68 landmarks and K reference shots (crops + their landmarks):

1. ``PiecewiseAffineField``: an analytic motion field per shot. Target and shot share one fixed
   triangulation (training/face_mesh.py, crop-border points included); each target pixel keeps its
   barycentric coordinates and takes the shot's point with the same coordinates.
2. ``FlowRefiner``: a small conv net per shot adds a bounded flow correction and a confidence
   logit (its last layer starts at zero: no correction, no confidence).
3. Warping: 2-D GridSample of each shot along its (upsampled) field; shots larger than the output
   are box-filtered over an output pixel's footprint first (``prefiltered``: no aliasing).
4. Blending: softmax over the shots of ``-mean landmark distance / tau + confidence``, per pixel
   (tau starts small: the nearest shot wins).
5. ``Synthesiser``: a small U-Net conditioned on the identity (FiLM) paints the image and an
   occlusion mask m (with ``mouth_channel`` it also reads ``MouthInterior``: where the target's
   mouth opens beyond every chosen shot's, and ``mouth_mask_gain`` lowers the mask's logit there):
   ``out = m * warped + (1 - m) * synth``. With ``synth_residual`` the painted
   image is the warp plus a correction (zero at init), so the mask can start at 0.5, where it and
   the painter get gradient; otherwise (the first design) the mask starts at ~1 to show the warp.

Untrained, the module therefore renders the classical piecewise-affine warp of the nearest shot;
training can only add. ``stages`` switches the learned parts off for the ablation table.
Every op is plain ONNX (opset 16+: GridSample 2-D); K is a dynamic axis of the exported graph.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import NetworkConfig, WarpConfig
from ..face_mesh import BORDER_POINTS, TRIANGLES
from ..rasterizer import LandmarkRasterizer
from ..resample import box_filter_to

STAGES = ("prior", "flow", "blend", "synthesis")  # cumulative ablation stages


def pixel_centres(size: int) -> torch.Tensor:
    """[size*size, 2] (x, y) pixel centres of a size x size grid in crop-normalised units."""
    u = (torch.arange(size, dtype=torch.float32) * 2 + 1) / size - 1
    gy, gx = torch.meshgrid(u, u, indexing="ij")
    return torch.stack([gx, gy], -1).reshape(-1, 2)


def homogeneous(points: torch.Tensor) -> torch.Tensor:
    """[P, 2] (x, y) -> [P, 3] (x, y, 1): the form ``barycentric`` multiplies."""
    return torch.cat([points, torch.ones(len(points), 1)], 1)


class PiecewiseAffineField(nn.Module):
    """Target landmarks [B,68,2] + shot landmarks [B,K,68,2] -> sampling grid [B,K,G,G,2].

    The grid holds, for each target pixel, where to read the shot (crop-normalised x, y). Pixels in
    no triangle (a fold of the target mesh can leave holes) read the shot at their own place;
    pixels in several (overlaps) average them.
    """

    def __init__(self, grid: int) -> None:
        super().__init__()
        self.grid = grid
        self.register_buffer("triangles", torch.tensor(TRIANGLES, dtype=torch.int64).reshape(-1), persistent=False)
        self.register_buffer("border", torch.tensor(BORDER_POINTS, dtype=torch.float32), persistent=False)
        pixels = pixel_centres(grid)
        self.register_buffer("pixels", pixels, persistent=False)
        self.register_buffer("pixels_h", homogeneous(pixels), persistent=False)
        self.num_triangles = len(TRIANGLES)

    def forward(self, target: torch.Tensor, shots: torch.Tensor) -> torch.Tensor:
        b, k = shots.shape[0], shots.shape[1]
        t, g = self.num_triangles, self.grid
        pts_t = torch.cat([target, self.border.expand(b, -1, -1)], 1)  # [B, N, 2]
        tri = pts_t.index_select(1, self.triangles).reshape(b, t, 3, 2)
        inside, l1, l2 = barycentric(self.pixels_h, tri)
        weight = inside.to(target.dtype)  # [B, P, T]
        count = weight.sum(-1, keepdim=True)  # [B, P, 1]
        weight = weight / count.clamp(min=1.0)
        # Shot point = sum_t w_t (v0' + l1 (v1' - v0') + l2 (v2' - v0')): one matmul over [w, w l1, w l2].
        pts_s = torch.cat([shots, self.border.expand(b, k, -1, -1)], 2)  # [B, K, N, 2]
        tri_s = pts_s.index_select(2, self.triangles).reshape(b, k, t, 3, 2)
        s0 = tri_s[:, :, :, 0]
        basis = torch.cat([s0, tri_s[:, :, :, 1] - s0, tri_s[:, :, :, 2] - s0], 2)  # [B, K, 3T, 2]
        terms = torch.cat([weight, weight * l1, weight * l2], 2)  # [B, P, 3T]
        src = torch.matmul(terms[:, None], basis)  # [B, K, P, 2]
        empty = (count <= 0).to(target.dtype)  # [B, P, 1]
        src = src + (empty * self.pixels)[:, None]
        return src.reshape(b, k, g, g, 2)


def barycentric(pixels_h: torch.Tensor, tri: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pixels [P, 3] (x, y, 1) against triangles [B, T, 3, 2] -> (inside [B, P, T] bool, l1, l2
    [B, P, T]): each pixel's barycentric coordinates in each triangle (degenerate ones: never inside)."""
    t = tri.shape[1]
    v0, v1, v2 = tri[:, :, 0], tri[:, :, 1], tri[:, :, 2]  # [B, T, 2]
    a, c = v1 - v0, v2 - v0
    det = a[..., 0] * c[..., 1] - a[..., 1] * c[..., 0]  # [B, T]
    valid = det.abs() > 1e-7
    inv_det = torch.where(valid, 1.0 / torch.where(valid, det, torch.ones_like(det)), torch.zeros_like(det))
    # Barycentrics are affine in the pixel: [l1, l2] = [x, y, 1] @ coef, coef [B, 3, 2T].
    ax, ay, cx, cy, x0, y0 = a[..., 0], a[..., 1], c[..., 0], c[..., 1], v0[..., 0], v0[..., 1]
    coef1 = torch.stack([cy, -cx, cx * y0 - cy * x0], 1) * inv_det[:, None]
    coef2 = torch.stack([-ay, ax, ay * x0 - ax * y0], 1) * inv_det[:, None]
    lam = torch.matmul(pixels_h, torch.cat([coef1, coef2], 2))  # [B, P, 2T]
    l1, l2 = lam[..., :t], lam[..., t:]
    l0 = 1.0 - l1 - l2
    inside = (torch.minimum(torch.minimum(l0, l1), l2) >= -1e-5) & valid[:, None]
    return inside, l1, l2


INNER_LIPS = tuple(range(60, 68))  # the 68-point scheme's inner-lip contour, in order
INNER_GAP = (62, 66)  # the inner lips' middle points, top and bottom
MOUTH_GAIN = 10.0  # the channel's scale: an opening of 0.1 face sizes beyond every shot's reads 1


def mouth_opening(landmarks: torch.Tensor) -> torch.Tensor:
    """[..., 68, 2] -> [...]: the inner-lip gap (points 62 to 66) over the face size (the square
    root of the landmarks' bounding-box area), as bench/quality_metrics.mouth_opening measures it."""
    gap = landmarks[..., INNER_GAP[1], :] - landmarks[..., INNER_GAP[0], :]
    span = landmarks.amax(-2) - landmarks.amin(-2)
    size = torch.sqrt((span[..., 0] * span[..., 1]).clamp(min=1e-12))
    return torch.sqrt((gap * gap).sum(-1) + 1e-12) / size


class MouthInterior(nn.Module):
    """Target landmarks [B,68,2] + the chosen shots' [B,M,68,2] -> [B,1,G,G]: the target's inner-lip
    polygon, filled (a fan of triangles from its centroid), times ``MOUTH_GAIN`` x how much wider
    the target's mouth opens than the widest chosen shot's (0 when a shot opens as wide). That is
    where the warp can only stretch lips and the synthesis branch has to paint (teeth, tongue)."""

    def __init__(self, grid: int) -> None:
        super().__init__()
        self.register_buffer("lips", torch.tensor(INNER_LIPS, dtype=torch.int64), persistent=False)
        self.register_buffer("next", torch.tensor(INNER_LIPS[1:] + INNER_LIPS[:1], dtype=torch.int64),
                             persistent=False)
        pixels = pixel_centres(grid)
        self.register_buffer("pixels_h", homogeneous(pixels), persistent=False)
        self.grid = grid

    def forward(self, target: torch.Tensor, shots: torch.Tensor) -> torch.Tensor:
        beyond = (mouth_opening(target) - mouth_opening(shots).amax(1)).clamp(min=0.0)  # [B]
        return self.fill(target) * (MOUTH_GAIN * beyond)[:, None, None, None]

    def fill(self, target: torch.Tensor) -> torch.Tensor:
        """[B,68,2] -> [B,1,G,G]: 1 inside the inner-lip polygon, 0 outside."""
        b, g = target.shape[0], self.grid
        ring, nxt = target.index_select(1, self.lips), target.index_select(1, self.next)  # [B, 8, 2]
        centre = ring.mean(1, keepdim=True).expand_as(ring)
        tri = torch.stack([centre, ring, nxt], 2)  # [B, 8, 3, 2]
        inside, _, _ = barycentric(self.pixels_h, tri)
        return inside.to(target.dtype).amax(-1).reshape(b, 1, g, g)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def _up(x: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def _thumbnail(x: torch.Tensor, size: int) -> torch.Tensor:
    """``x`` box-filtered down to ``size`` when its side is a multiple of it (a bilinear resize that
    far down reads 4 of every 64 pixels of a 512 px shot and aliases); otherwise resized."""
    if x.shape[-1] % size == 0:
        return box_filter_to(x, size)
    return _up(x, size)


class FlowRefiner(nn.Module):
    """Per shot, at the net grid: [warped shot (3), target raster, prior offset (2)] -> (flow (2), confidence (1))."""

    def __init__(self, cin: int, width: int) -> None:
        super().__init__()
        self.c1 = _conv(cin, width)
        self.c2 = _conv(width, 2 * width, stride=2)
        self.c3 = _conv(2 * width, 2 * width)
        self.c4 = _conv(3 * width, width)
        self.out = _conv(width, 3)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f1 = _act(self.c1(x))
        f2 = _act(self.c3(_act(self.c2(f1))))
        f = _act(self.c4(torch.cat([_up(f2, x.shape[-1]), f1], 1)))
        return self.out(f)


class Synthesiser(nn.Module):
    """[blended warp (3), target raster, warp spread (1), (mouth interior (1))] + identity -> (image or correction (3) in [-1,1],
    mask logit (1))."""

    def __init__(self, cin: int, width: int, identity_dim: int, mask_bias: float) -> None:
        super().__init__()
        w = width
        self.c1 = _conv(cin, w)
        self.c2 = _conv(w, 2 * w, stride=2)
        self.c3 = _conv(2 * w, 4 * w, stride=2)
        self.c4 = _conv(4 * w, 4 * w)
        self.film = nn.Linear(identity_dim, 8 * w)  # identity -> scale, shift of the bottleneck
        nn.init.normal_(self.film.weight, std=0.01)
        nn.init.zeros_(self.film.bias)
        self.u1 = _conv(6 * w, 2 * w)
        self.u2 = _conv(3 * w, w)
        self.out = _conv(w, 4)
        nn.init.zeros_(self.out.weight)
        with torch.no_grad():
            self.out.bias.copy_(torch.tensor([0.0, 0.0, 0.0, mask_bias]))

    def forward(self, x: torch.Tensor, identity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f1 = _act(self.c1(x))
        f2 = _act(self.c2(f1))
        f3 = self.c4(_act(self.c3(f2)))
        scale, shift = self.film(identity).chunk(2, dim=1)
        f3 = _act(f3 * (1 + scale[:, :, None, None]) + shift[:, :, None, None])
        u = _act(self.u1(torch.cat([_up(f3, f2.shape[-1]), f2], 1)))
        u = _act(self.u2(torch.cat([_up(u, f1.shape[-1]), f1], 1)))
        o = self.out(u)
        return torch.tanh(o[:, :3]), o[:, 3:4]


class WarpGenerator(nn.Module):
    """landmarks [B,68,2], identity [B,D], shot images [B,K,3,S,S] in [-1,1], shot landmarks [B,K,68,2]
    -> image [B,3,R,R] in [-1, 1]."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        wc: WarpConfig = config.warp
        self.config = wc
        self.resolution = config.resolution
        self.field = PiecewiseAffineField(wc.prior_grid)
        self.net_raster = LandmarkRasterizer(wc.net_grid, config.raster)
        self.synth_raster = LandmarkRasterizer(wc.synth_grid, config.raster)
        parts = self.net_raster.channels
        self.refiner = FlowRefiner(3 + parts + 2, wc.flow_width)
        self.mouth = MouthInterior(wc.synth_grid) if wc.mouth_channel else None
        self.synthesiser = Synthesiser(3 + parts + 1 + wc.mouth_channel, wc.synth_width, config.embedding_dim,
                                       wc.mask_bias)
        self.log_tau = nn.Parameter(torch.tensor(math.log(wc.tau_init)))
        self.register_buffer("net_pixels", pixel_centres(wc.net_grid).reshape(1, wc.net_grid, wc.net_grid, 2),
                             persistent=False)
        self.stages = STAGES  # what forward uses (the ablation switches later ones off)
        self.prefilter: int | None = None  # shot px per output px (None: the shots' multiple of the output)

    def forward(self, landmarks: torch.Tensor, identity: torch.Tensor, shots_image: torch.Tensor,
                shots_landmarks: torch.Tensor) -> torch.Tensor:
        return self.render(landmarks, identity, shots_image, shots_landmarks)["image"]

    def render(self, landmarks: torch.Tensor, identity: torch.Tensor, shots_image: torch.Tensor,
               shots_landmarks: torch.Tensor) -> dict[str, torch.Tensor]:
        """The output and its parts: ``image``, ``warped`` (the blend), ``mask``, ``synth``, ``weights``.
        The shots are per frame ([B,K,3,S,S] and [B,K,68,2]) or shared by the batch ([K,3,S,S] and
        [K,68,2])."""
        wc, r, ng = self.config, self.resolution, self.config.net_grid
        shots_image, shots_landmarks, distance = self.nearest_shots(landmarks, shots_image, shots_landmarks)
        b, m = shots_image.shape[0], shots_image.shape[1]
        with _fp32(landmarks):  # coordinates stay fp32 under a bf16 autocast: bf16 would move pixels
            prior = self.field(landmarks.float(), shots_landmarks.float())  # [B, M, G, G, 2]
        prior = prior.reshape(b * m, wc.prior_grid, wc.prior_grid, 2).permute(0, 3, 1, 2)
        prior_net = _up(prior, ng) if wc.prior_grid != ng else prior  # [BM, 2, ng, ng]
        shots = shots_image.reshape(b * m, *shots_image.shape[2:])
        logits = (-distance / self.log_tau.exp()).reshape(b * m, 1, 1, 1)
        correction = None  # the learned flow correction, at the net grid
        if "flow" in self.stages or "blend" in self.stages:
            small = F.grid_sample(_thumbnail(shots, ng), prior_net.permute(0, 2, 3, 1), mode="bilinear",
                                  padding_mode="border", align_corners=False)
            raster = self.net_raster(landmarks)  # [B, parts, ng, ng]
            raster = raster[:, None].expand(b, m, -1, -1, -1).reshape(b * m, -1, ng, ng)
            offset = prior_net - self.net_pixels.permute(0, 3, 1, 2)
            refined = self.refiner(torch.cat([small, raster, offset], 1))
            if "flow" in self.stages:
                correction = wc.max_correction * torch.tanh(refined[:, :2])
            if "blend" in self.stages:
                logits = logits + _up(refined[:, 2:3], r)
        with _fp32(prior):  # the prior at its own (finer) grid plus the correction, each upsampled once
            field = _up(prior.float(), r) if wc.prior_grid != r else prior.float()
            if correction is not None:
                field = field + _up(correction.float(), r)
            source, scale = self.prefiltered(shots.float())
            grid = field.permute(0, 2, 3, 1)  # [BM, R, R, 2]
            if scale != 1.0:
                grid = grid * scale
            warped_m = F.grid_sample(source, grid, mode="bilinear", padding_mode="border",
                                     align_corners=False)
        weights = torch.softmax(logits.expand(b * m, 1, r, r).reshape(b, m, 1, r, r), dim=1)
        warped_m = warped_m.reshape(b, m, 3, r, r)
        warped = (weights * warped_m).sum(1)  # [B, 3, R, R]
        out = {"warped": warped, "weights": weights, "image": warped}
        if "synthesis" in self.stages:
            sg = wc.synth_grid
            spread = (weights * (warped_m - warped[:, None]).abs().mean(2, keepdim=True)).sum(1)  # [B,1,R,R]
            x = [_up(warped, sg), self.synth_raster(landmarks), _up(spread, sg)]
            mouth = None
            if self.mouth is not None:
                with _fp32(landmarks):
                    mouth = self.mouth(landmarks.float(), shots_landmarks.float()).to(warped.dtype)
                x.append(mouth)
            synth, mask_logit = self.synthesiser(torch.cat(x, 1), identity)
            if mouth is not None and wc.mouth_mask_gain > 0:  # where only painting shows the mouth
                mask_logit = mask_logit - wc.mouth_mask_gain * mouth
            mask = torch.sigmoid(_up(mask_logit, r))
            synth = _up(synth, r)
            if wc.synth_residual:  # the painter's output is a correction of the warp
                synth = (warped + synth).clamp(-1.0, 1.0)
            out.update(synth=synth, mask=mask, image=mask * warped + (1 - mask) * synth)
        return out

    def footprint(self, shot_side: int) -> int:
        """Shot pixels per output pixel along each axis: the shots' multiple of the output side
        (``self.prefilter`` overrides it; 1 = no prefilter, which aliases shots larger than the
        output)."""
        if self.prefilter is not None:
            return self.prefilter
        return max(1, shot_side // self.resolution)

    def prefiltered(self, shots: torch.Tensor) -> tuple[torch.Tensor, float]:
        """The shots box-filtered over one output pixel's footprint (n x n, stride 1, unpadded:
        side S - n + 1), and the scale of the sampling grid that reads them there.

        One bilinear sample per output pixel of a shot n times larger reads only a few of its
        pixels (a pure decimation at some offsets): the warp aliases. Prefiltering first makes each
        sample the mean of the n x n shot pixels around it (a box convolved with the bilinear tent,
        as n x n bilinear samples averaged would give, at 1/n^2 of their cost): a target in a
        shot's pose renders that shot box-filtered, as the crop rule samples down. Box j is centred
        on shot pixel j + (n - 1) / 2; with align_corners=False the crop-normalised point x then
        falls on box coordinate x * S / (S - n + 1) (no padding, only the grid scales).
        """
        n = self.footprint(shots.shape[-1])
        if n == 1:
            return shots, 1.0
        side = shots.shape[-1]
        return F.avg_pool2d(shots, n, stride=1), side / (side - n + 1)

    def nearest_shots(self, landmarks: torch.Tensor, shots_image: torch.Tensor,
                      shots_landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The min(``blend_top``, K) shots nearest the target by mean landmark distance, and those
        distances.

        Warping costs a full-resolution resample per shot, so only the nearest few are warped and
        blended. With fewer shots than ``blend_top`` only those are warped: an exported graph takes
        its count from the shots' shape at run time (``_shot_count``), so one graph serves any
        K >= 1 and a one-shot avatar costs one warp, not a repeat that would weigh zero.
        """
        shared = shots_image.dim() == 4  # one set of shots [K,3,S,S] for the whole batch (the graph's form)
        b = landmarks.shape[0]
        k = shots_image.shape[0] if shared else shots_image.shape[1]
        top = _shot_count(shots_image, 0 if shared else 1, self.config.blend_top)
        if shared:
            shots_landmarks = shots_landmarks[None].expand(b, -1, -1, -1)
        distance = _landmark_distance(landmarks, shots_landmarks)  # [B, K]
        _, idx = torch.topk(-distance, top, dim=1)  # [B, top]
        chosen = distance.gather(1, idx)
        if shared:  # gather the chosen shots only: no copy of every shot per frame
            flat = idx.reshape(-1)  # into [K]
            images = shots_image.index_select(0, flat)
            lms = shots_landmarks[0].index_select(0, flat)
        else:
            flat = (idx + torch.arange(b, device=idx.device)[:, None] * k).reshape(-1)  # into [B*K]
            images = shots_image.reshape(b * k, *shots_image.shape[2:]).index_select(0, flat)
            lms = shots_landmarks.reshape(b * k, 68, 2).index_select(0, flat)
        return (images.reshape(b, -1, *images.shape[1:]), lms.reshape(b, -1, 68, 2), chosen)


def _shot_count(shots: torch.Tensor, dim: int, top: int) -> int | torch.Tensor:
    """min(``top``, shots.shape[dim]). While tracing for ONNX it is a tensor computed from the
    shape (a Shape and a Clip in the graph), so the graph does not fix the count that the example
    input had."""
    if torch.jit.is_tracing():
        return torch.clamp(torch._shape_as_tensor(shots)[dim], max=top)
    return min(top, shots.shape[dim])


class SharedReferences(nn.Module):
    """The graph contract's form: one avatar's references [K,...] shared by a batch of B frames."""

    def __init__(self, generator: WarpGenerator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, landmarks: torch.Tensor, identity: torch.Tensor, ref_images: torch.Tensor,
                ref_landmarks: torch.Tensor) -> torch.Tensor:
        """``ref_images`` [K,3,S,S] and ``ref_landmarks`` [K,68,2], shared by the B frames (not
        copied per frame: only the chosen shots are gathered)."""
        if "synthesis" not in self.generator.stages:
            # An ablation graph without the synthesis branch does not read the identity, and the ONNX
            # exporter drops unread inputs; the contract's interface keeps it (+ 0 x identity).
            landmarks = landmarks + 0.0 * identity[:, :1, None]
        return self.generator(landmarks, identity, ref_images, ref_landmarks)


def _fp32(like: torch.Tensor):
    """A region where autocast is off (fp32 arithmetic for sampling coordinates)."""
    return torch.autocast(like.device.type, enabled=False)


def _landmark_distance(target: torch.Tensor, shots: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance over the 68 landmarks: [B,68,2], [B,K,68,2] -> [B, K]."""
    diff = shots - target[:, None]
    return torch.sqrt((diff * diff).sum(-1) + 1e-12).mean(-1)
