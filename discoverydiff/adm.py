"""The ADM UNet of Dhariwal & Nichol (2021), able to load OpenAI's guided-diffusion checkpoints as they are.

ADM ("Diffusion Models Beat GANs on Image Synthesis", arXiv 2105.05233; code: openai/guided-diffusion) is the
architecture behind many published pixel-space diffusion checkpoints, among them the P2-weighting models of
Choi et al. (2022, jychoi118/P2-weighting), whose AFHQ-dog 256x256 model is a base model of this project. This
file is an independent implementation: every module, parameter name and tensor shape is chosen so that
``ADMUNet.state_dict()`` has exactly the keys and shapes of ``guided_diffusion.unet.UNetModel``, hence

    model = adm_from_flags(AFHQ_DOG_P2_FLAGS)
    model.load_state_dict(torch.load("afhqdog_p2.pt", map_location="cpu", weights_only=True), strict=True)

works without renaming anything. The numerics follow guided-diffusion too: the same sinusoidal timestep
embedding, group normalisation evaluated in float32, the same residual and attention wiring, so an fp32 forward
pass agrees with OpenAI's to float rounding.

The network, top to bottom
--------------------------
A timestep ``t`` becomes a ``4 * model_channels`` embedding (sinusoid -> Linear -> SiLU -> Linear), plus a class
embedding for class-conditional models. The image goes through

* ``input_blocks``: a 3x3 stem convolution, then for each resolution level ``num_res_blocks`` residual blocks
  (each optionally followed by self-attention), then a 2x downsampler (except after the last level). Every
  block's output is kept for a skip connection.
* ``middle_block``: residual block, self-attention, residual block at the lowest resolution.
* ``output_blocks``: for each level, from the lowest resolution up, ``num_res_blocks + 1`` residual blocks that
  each take the previous output concatenated with one stored skip tensor (optionally followed by attention), and
  a 2x upsampler at the end of every level but the highest.
* ``out``: GroupNorm -> SiLU -> 3x3 convolution to ``out_channels``.

Residual blocks receive the time embedding either additively or, with ``use_scale_shift_norm``, as a FiLM-like
scale and shift after their second normalisation. With ``resblock_updown`` the down/upsamplers are themselves
residual blocks (the "BigGAN" blocks of ADM) instead of strided/nearest-neighbour convolutions.

Checkpoint layout
-----------------
Parameter names are fixed by the published checkpoints, which is why several modules are ``nn.Sequential`` with
parameter-free entries (SiLU, Dropout) in them: their positions appear in the keys, e.g. a residual block's second
convolution is ``out_layers.3`` because normalisation, SiLU and dropout come first. Attention projections are
``Conv1d`` with kernel 1 (weights of shape ``(out, in, 1)``) for the same reason.

Precision
---------
There is no fp16 conversion machinery here: run the model in float32, or under ``torch.autocast``. Group
normalisation always computes in float32 and casts back to its input dtype, as guided-diffusion's
``GroupNorm32`` does; under bf16/fp16 autocast this keeps the statistics of large activations accurate.
Attention uses ``torch.nn.functional.scaled_dot_product_attention`` (fused kernels on GPU), which is equivalent
to guided-diffusion's explicit softmax attention up to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ADMUNet",
    "ADM_DEFAULTS",
    "AFHQ_DOG_P2_FLAGS",
    "adm_from_flags",
    "count_parameters",
    "default_channel_mult",
    "sinusoidal_timestep_embedding",
]

#: Number of classes of a class-conditional guided-diffusion model (ImageNet); ``class_cond=True`` implies it.
NUM_CLASSES = 1000


# ---------------------------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------------------------


def sinusoidal_timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps, as in guided-diffusion.

    Frequency ``i`` of ``half = dim // 2`` is ``max_period ** (-i / half)``; the embedding is the cosines of
    ``t * freq`` followed by their sines (cosines first, unlike the "Attention is all you need" layout), padded
    with one zero column when ``dim`` is odd.

    Parameters
    ----------
    timesteps : torch.Tensor
        Shape ``(batch,)``, any numeric dtype; converted to float32.
    dim : int
        Embedding width.
    max_period : float
        Longest period; controls the lowest frequency.

    Returns
    -------
    torch.Tensor
        Shape ``(batch, dim)``, float32, on the device of ``timesteps``.
    """
    half = dim // 2
    # The frequencies are built on the CPU in float32 with the same operation order as guided-diffusion, then
    # moved: this makes the embedding bitwise identical to the one the checkpoints were trained with, whatever the
    # device's exp() implementation.
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    angles = timesteps[:, None].float() * freqs.to(timesteps.device)[None]
    embedding = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding


class GroupNorm32(nn.GroupNorm):
    """Group normalisation with 32 groups, computed in float32 and cast back to the input dtype.

    Parameters
    ----------
    num_channels : int
        Channels of the input ``(batch, num_channels, ...)``; must be divisible by 32.
    """

    def __init__(self, num_channels: int):
        super().__init__(num_groups=32, num_channels=num_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # float32 statistics even under reduced-precision autocast: the mean and variance of wide, large-valued
        # feature maps lose too much in bf16. The affine parameters are upcast too, so a model cast to bf16
        # still normalises in float32.
        weight = self.weight.float() if self.weight is not None else None
        bias = self.bias.float() if self.bias is not None else None
        return F.group_norm(x.float(), self.num_groups, weight, bias, self.eps).to(x.dtype)


def _zero_init(module: nn.Module) -> nn.Module:
    """Zero a module's parameters, so the residual branch it ends starts as the identity (ADM's initialisation)."""
    for parameter in module.parameters():
        nn.init.zeros_(parameter)
    return module


class Downsample(nn.Module):
    """Halve height and width with a stride-2 3x3 convolution (checkpoint key ``op``).

    Parameters
    ----------
    channels : int
        Input and output channels.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, height, width)`` -> ``(batch, channels, height // 2, width // 2)``."""
        return self.op(x)


class Upsample(nn.Module):
    """Double height and width by nearest-neighbour repetition, then a 3x3 convolution (checkpoint key ``conv``).

    Parameters
    ----------
    channels : int
        Input and output channels.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, height, width)`` -> ``(batch, channels, 2 * height, 2 * width)``."""
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class ResBlock(nn.Module):
    """Residual block conditioned on the time embedding, optionally resampling (ADM's BigGAN-style block).

    ``out = skip(x) + conv(dropout(silu(norm(conv(silu(norm(x)))) conditioned on emb)))``, where conditioning is
    ``h + proj(emb)`` before the second norm, or ``norm(h) * (1 + scale) + shift`` with ``use_scale_shift_norm``.

    Parameters
    ----------
    in_channels : int
        Channels of the input.
    emb_channels : int
        Width of the time (and class) embedding.
    out_channels : int, optional
        Channels of the output; defaults to ``in_channels``. A 1x1 convolution adapts the skip path when they
        differ.
    dropout : float
        Dropout probability before the last convolution.
    use_scale_shift_norm : bool
        Condition by scale and shift (FiLM) instead of by addition.
    resample : {None, "up", "down"}
        Resample by 2x inside the block: nearest-neighbour ("up") or 2x2 average pooling ("down") on both the
        residual path (after the first nonlinearity, before the first convolution) and the skip path.
    """

    def __init__(self, in_channels: int, emb_channels: int, out_channels: int | None = None, dropout: float = 0.0,
                 use_scale_shift_norm: bool = False, resample: str | None = None):
        super().__init__()
        if resample not in (None, "up", "down"):
            raise ValueError(f"resample must be None, 'up' or 'down', got {resample!r}")
        out_channels = out_channels or in_channels
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.use_scale_shift_norm = use_scale_shift_norm
        self.resample = resample

        self.in_layers = nn.Sequential(
            GroupNorm32(in_channels),
            nn.SiLU(),
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        )
        # Scale-shift conditioning needs two numbers (scale, shift) per channel.
        self.emb_layers = nn.Sequential(
            nn.SiLU(),
            nn.Linear(emb_channels, 2 * out_channels if use_scale_shift_norm else out_channels),
        )
        self.out_layers = nn.Sequential(
            GroupNorm32(out_channels),
            nn.SiLU(),
            nn.Dropout(p=dropout),
            _zero_init(nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)),
        )
        if out_channels == in_channels:
            self.skip_connection = nn.Identity()
        else:
            self.skip_connection = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2, mode="nearest")
        if self.resample == "down":
            return F.avg_pool2d(x, kernel_size=2, stride=2)
        return x

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Parameters
        ----------
        x : torch.Tensor
            Shape ``(batch, in_channels, height, width)``.
        emb : torch.Tensor
            Shape ``(batch, emb_channels)``.

        Returns
        -------
        torch.Tensor
            Shape ``(batch, out_channels, height', width')`` with ``height' = 2 * height`` for ``resample="up"``,
            ``height // 2`` for ``"down"``, ``height`` otherwise (likewise for the width).
        """
        norm_in, act_in, conv_in = self.in_layers
        # Resampling sits between the nonlinearity and the convolution, so the convolution already works at the
        # new resolution; the skip path is resampled identically so the two can be added.
        h = conv_in(self._resample(act_in(norm_in(x))))
        x = self._resample(x)

        emb_out = self.emb_layers(emb).to(h.dtype)[:, :, None, None]  # (batch, C or 2C, 1, 1)
        norm_out, act_out, dropout, conv_out = self.out_layers
        if self.use_scale_shift_norm:
            scale, shift = emb_out.chunk(2, dim=1)
            h = norm_out(h) * (1 + scale) + shift
        else:
            h = norm_out(h + emb_out)
        h = conv_out(dropout(act_out(h)))
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    """Multi-head self-attention over all spatial positions, with a residual connection.

    Parameters
    ----------
    channels : int
        Channels of the input; the attention width.
    num_heads : int
        Number of heads, used when ``num_head_channels == -1``.
    num_head_channels : int
        If not -1, a fixed width per head (``channels // num_head_channels`` heads), overriding ``num_heads``.
    use_new_attention_order : bool
        Layout of the fused ``qkv`` projection's output channels. False (the "legacy" layout of most published
        checkpoints): heads outermost, ``[q, k, v]`` of head 0, then of head 1, ... True: ``[q of all heads,
        k of all heads, v of all heads]``. The two layouts give different results from the same weights, so it
        must match the checkpoint.
    """

    def __init__(self, channels: int, num_heads: int = 1, num_head_channels: int = -1,
                 use_new_attention_order: bool = False):
        super().__init__()
        if num_head_channels == -1:
            heads = num_heads
        else:
            if num_head_channels <= 0 or channels % num_head_channels:
                raise ValueError(f"attention over {channels} channels cannot use num_head_channels="
                                 f"{num_head_channels}: it must divide the channel count")
            heads = channels // num_head_channels
        if heads <= 0 or channels % heads:
            raise ValueError(f"attention over {channels} channels cannot be split into num_heads={heads} heads")
        self.channels = channels
        self.num_heads = heads
        self.use_new_attention_order = use_new_attention_order

        self.norm = GroupNorm32(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, kernel_size=1)
        self.proj_out = _zero_init(nn.Conv1d(channels, channels, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, height, width)`` -> same shape."""
        batch, channels, height, width = x.shape
        tokens = x.reshape(batch, channels, height * width)  # (batch, channels, length)
        length = tokens.shape[-1]
        head_channels = channels // self.num_heads

        qkv = self.qkv(self.norm(tokens))  # (batch, 3 * channels, length)
        if self.use_new_attention_order:
            qkv = qkv.reshape(batch, 3, self.num_heads, head_channels, length).transpose(1, 2)
        else:
            qkv = qkv.reshape(batch, self.num_heads, 3, head_channels, length)
        # Each of q, k, v: (batch, heads, length, head_channels), the layout scaled_dot_product_attention expects;
        # its default scale 1 / sqrt(head_channels) is ADM's.
        q, k, v = qkv.transpose(-1, -2).unbind(dim=2)
        attended = F.scaled_dot_product_attention(q, k, v)  # (batch, heads, length, head_channels)
        attended = attended.transpose(-1, -2).reshape(batch, channels, length)
        return (tokens + self.proj_out(attended)).reshape(batch, channels, height, width)


class TimestepEmbedSequential(nn.Sequential):
    """A sequence of layers; residual blocks also receive the embedding, the others only the feature map."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x


# ---------------------------------------------------------------------------------------------------------------
# The UNet
# ---------------------------------------------------------------------------------------------------------------


class ADMUNet(nn.Module):
    """The ADM UNet; ``state_dict()`` keys and shapes are those of guided-diffusion's ``UNetModel``.

    Parameters
    ----------
    image_size : int
        Training resolution. Recorded only: the network runs at any height and width divisible by
        ``2 ** (len(channel_mult) - 1)``.
    in_channels : int
        Channels of the input image.
    model_channels : int
        Base width; level ``i`` has ``int(channel_mult[i] * model_channels)`` channels.
    out_channels : int
        Channels of the output (``2 * in_channels`` for learned-variance models: eps first, then the variance
        interpolation).
    num_res_blocks : int
        Residual blocks per level on the way down (one more per level on the way up).
    attention_resolutions : iterable of int
        Downsample rates (1 = full resolution, 2 = half, ...) at which the residual blocks are followed by
        self-attention. guided-diffusion's command line gives resolutions instead; see :func:`adm_from_flags`.
        The middle block always has attention.
    dropout : float
        Dropout probability inside the residual blocks.
    channel_mult : sequence of float
        Width multiplier of each resolution level; its length sets the number of levels.
    num_classes : int, optional
        Number of classes of a class-conditional model (adds ``label_emb``); None for unconditional.
    num_heads : int
        Attention heads of the down path and middle block (when ``num_head_channels == -1``).
    num_head_channels : int
        If not -1, a fixed width per attention head, overriding ``num_heads`` and ``num_heads_upsample``.
    num_heads_upsample : int
        Attention heads on the up path; -1 means ``num_heads``.
    use_scale_shift_norm : bool
        FiLM-like scale-and-shift conditioning in the residual blocks.
    resblock_updown : bool
        Down/upsample with residual blocks instead of strided / nearest-neighbour convolutions.
    use_new_attention_order : bool
        Layout of the fused qkv projection; see :class:`AttentionBlock`.
    """

    def __init__(self, image_size: int, in_channels: int, model_channels: int, out_channels: int,
                 num_res_blocks: int, attention_resolutions: Iterable[int], dropout: float = 0.0,
                 channel_mult: Sequence[float] = (1, 2, 4, 8), num_classes: int | None = None, num_heads: int = 1,
                 num_head_channels: int = -1, num_heads_upsample: int = -1, use_scale_shift_norm: bool = False,
                 resblock_updown: bool = False, use_new_attention_order: bool = False):
        super().__init__()
        if num_heads_upsample == -1:
            num_heads_upsample = num_heads
        channel_mult = tuple(channel_mult)
        if not channel_mult:
            raise ValueError("channel_mult must name at least one resolution level")
        attention_rates = frozenset(int(rate) for rate in attention_resolutions)

        self.image_size = image_size
        self.in_channels = in_channels
        self.model_channels = model_channels
        self.out_channels = out_channels
        self.num_res_blocks = num_res_blocks
        self.attention_resolutions = tuple(sorted(attention_rates))
        self.dropout = dropout
        self.channel_mult = channel_mult
        self.num_classes = num_classes
        self.num_heads = num_heads
        self.num_head_channels = num_head_channels
        self.num_heads_upsample = num_heads_upsample
        self.use_scale_shift_norm = use_scale_shift_norm
        self.resblock_updown = resblock_updown
        self.use_new_attention_order = use_new_attention_order

        emb_channels = 4 * model_channels
        self.time_embed = nn.Sequential(
            nn.Linear(model_channels, emb_channels),
            nn.SiLU(),
            nn.Linear(emb_channels, emb_channels),
        )
        if num_classes is not None:
            self.label_emb = nn.Embedding(num_classes, emb_channels)

        def res_block(in_ch: int, out_ch: int | None = None, resample: str | None = None) -> ResBlock:
            return ResBlock(in_ch, emb_channels, out_ch, dropout=dropout, use_scale_shift_norm=use_scale_shift_norm,
                            resample=resample)

        def attention(ch: int, heads: int) -> AttentionBlock:
            return AttentionBlock(ch, num_heads=heads, num_head_channels=num_head_channels,
                                  use_new_attention_order=use_new_attention_order)

        # Down path. `skip_channels` records the width of every tensor the down path hands to the up path (the
        # stem, every residual block, every downsampler), in order; the up path pops them in reverse.
        ch = stem_channels = int(channel_mult[0] * model_channels)
        self.input_blocks = nn.ModuleList([
            TimestepEmbedSequential(nn.Conv2d(in_channels, ch, kernel_size=3, padding=1)),
        ])
        skip_channels = [ch]
        rate = 1  # current downsample rate
        for level, mult in enumerate(channel_mult):
            level_channels = int(mult * model_channels)
            for _ in range(num_res_blocks):
                layers: list[nn.Module] = [res_block(ch, level_channels)]
                ch = level_channels
                if rate in attention_rates:
                    layers.append(attention(ch, num_heads))
                self.input_blocks.append(TimestepEmbedSequential(*layers))
                skip_channels.append(ch)
            if level != len(channel_mult) - 1:
                downsampler = res_block(ch, ch, resample="down") if resblock_updown else Downsample(ch)
                self.input_blocks.append(TimestepEmbedSequential(downsampler))
                skip_channels.append(ch)
                rate *= 2

        self.middle_block = TimestepEmbedSequential(
            res_block(ch),
            attention(ch, num_heads),
            res_block(ch),
        )

        # Up path: one more block per level than on the way down, since the downsampler's output is a skip too.
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            level_channels = int(mult * model_channels)
            for i in range(num_res_blocks + 1):
                layers = [res_block(ch + skip_channels.pop(), level_channels)]
                ch = level_channels
                if rate in attention_rates:
                    layers.append(attention(ch, num_heads_upsample))
                if level > 0 and i == num_res_blocks:
                    layers.append(res_block(ch, ch, resample="up") if resblock_updown else Upsample(ch))
                    rate //= 2
                self.output_blocks.append(TimestepEmbedSequential(*layers))

        self.out = nn.Sequential(
            GroupNorm32(ch),
            nn.SiLU(),
            _zero_init(nn.Conv2d(stem_channels, out_channels, kernel_size=3, padding=1)),
        )

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Predict the model output (eps, and the variance interpolation for learned-sigma models).

        Parameters
        ----------
        x : torch.Tensor
            Noisy images, shape ``(batch, in_channels, height, width)``; height and width divisible by
            ``2 ** (len(channel_mult) - 1)``.
        timesteps : torch.Tensor
            Shape ``(batch,)`` (or a scalar, used for the whole batch), any numeric dtype; the diffusion step
            index in ``[0, num_timesteps)`` as the model was trained (guided-diffusion does not rescale it).
        y : torch.Tensor, optional
            Class labels, shape ``(batch,)`` integer; required if and only if the model is class-conditional.

        Returns
        -------
        torch.Tensor
            Shape ``(batch, out_channels, height, width)``.
        """
        if (y is None) != (self.num_classes is None):
            raise ValueError("class labels y must be given if and only if the model is class-conditional "
                             f"(num_classes={self.num_classes})")
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected x of shape (batch, {self.in_channels}, height, width), got {tuple(x.shape)}")
        factor = 2 ** (len(self.channel_mult) - 1)
        if x.shape[2] % factor or x.shape[3] % factor:
            raise ValueError(f"height and width must be divisible by {factor} for {len(self.channel_mult)} "
                             f"resolution levels, got {tuple(x.shape[2:])}")
        batch = x.shape[0]
        timesteps = torch.as_tensor(timesteps, device=x.device)
        if timesteps.ndim == 0:
            timesteps = timesteps.expand(batch)
        if timesteps.shape != (batch,):
            raise ValueError(f"expected timesteps of shape ({batch},), got {tuple(timesteps.shape)}")

        emb = self.time_embed(sinusoidal_timestep_embedding(timesteps, self.model_channels))  # (batch, 4 * mc)
        if y is not None:
            if y.shape != (batch,):
                raise ValueError(f"expected class labels of shape ({batch},), got {tuple(y.shape)}")
            emb = emb + self.label_emb(y)

        # The body runs in the parameters' dtype (float32 unless the caller cast the model); autocast, if active,
        # still decides the dtype of each convolution and matmul.
        h = x.to(self.out[2].weight.dtype)
        skips = []
        for block in self.input_blocks:
            h = block(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        # The output head sees the input's dtype, as in guided-diffusion (whose fp16 body hands back to fp32 here).
        return self.out(h.to(x.dtype))


# ---------------------------------------------------------------------------------------------------------------
# guided-diffusion command-line flags
# ---------------------------------------------------------------------------------------------------------------

#: The defaults of guided-diffusion's ``script_util.model_and_diffusion_defaults()`` that concern the UNet
#: (``learn_sigma`` included: it sets the output channels). The scripts (image_train.py, image_sample.py) start from
#: these. Note that ``create_model``'s own keyword defaults differ (num_heads 1, attention_resolutions "16",
#: use_scale_shift_norm False); the command line never uses those.
ADM_DEFAULTS: dict = {
    "image_size": 64,
    "num_channels": 128,
    "num_res_blocks": 2,
    "num_heads": 4,
    "num_heads_upsample": -1,
    "num_head_channels": -1,
    "attention_resolutions": "16,8",
    "channel_mult": "",
    "dropout": 0.0,
    "class_cond": False,
    "use_checkpoint": False,
    "use_scale_shift_norm": True,
    "resblock_updown": False,
    "use_fp16": False,
    "use_new_attention_order": False,
    "learn_sigma": False,
}

#: Flags of guided-diffusion / P2-weighting that configure the diffusion process, not the network. They are
#: accepted (so a whole training or sampling command line can be passed) and ignored by :func:`adm_from_flags`.
DIFFUSION_ONLY_FLAGS = frozenset({
    "diffusion_steps", "noise_schedule", "timestep_respacing", "use_kl", "predict_xstart", "rescale_timesteps",
    "rescale_learned_sigmas", "p2_gamma", "p2_k",
})

#: The network of the P2-weighting AFHQ-dog 256x256 checkpoint (``afhqdog_p2.pt``; the P2-weighting README calls
#: the download ``afhq_p2.pt``), about 93M parameters. Source: the sampling and training command lines of the
#: jychoi118/P2-weighting README: ``--attention_resolutions 16 --class_cond False --dropout 0.0 --image_size 256
#: --learn_sigma True --num_channels 128 --num_head_channels 64 --num_res_blocks 1 --resblock_updown True
#: --use_fp16 False --use_scale_shift_norm True``. The other keys take ADM_DEFAULTS, P2-weighting's defaults being
#: the same for the network: channel_mult "" resolves to (1, 1, 2, 2, 4, 4) at 256 (written out here), num_heads 4
#: is overridden by num_head_channels 64, attention uses the legacy qkv order.
AFHQ_DOG_P2_FLAGS: dict = {
    "image_size": 256,
    "num_channels": 128,
    "num_res_blocks": 1,
    "channel_mult": "1,1,2,2,4,4",
    "attention_resolutions": "16",
    "num_heads": 4,
    "num_head_channels": 64,
    "num_heads_upsample": -1,
    "use_scale_shift_norm": True,
    "resblock_updown": True,
    "use_new_attention_order": False,
    "learn_sigma": True,
    "class_cond": False,
    "dropout": 0.0,
    "use_checkpoint": False,
    "use_fp16": False,
}


def default_channel_mult(image_size: int) -> tuple[float, ...]:
    """The channel multipliers guided-diffusion's ``create_model`` picks for ``channel_mult=""``.

    Parameters
    ----------
    image_size : int
        One of 64, 128, 256, 512.

    Returns
    -------
    tuple of float
        One multiplier per resolution level.
    """
    defaults = {
        512: (0.5, 1, 1, 2, 2, 4, 4),
        256: (1, 1, 2, 2, 4, 4),
        128: (1, 1, 2, 3, 4),
        64: (1, 2, 3, 4),
    }
    if image_size not in defaults:
        raise ValueError(f"channel_mult='' has no default for image_size={image_size} (guided-diffusion defines "
                         f"{sorted(defaults)}); give channel_mult explicitly, e.g. '1,2,2'")
    return defaults[image_size]


def _parse_bool(name: str, value) -> bool:
    # The command line's str2bool spellings; a real bool passes through.
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("yes", "true", "t", "y", "1"):
            return True
        if lowered in ("no", "false", "f", "n", "0"):
            return False
    raise ValueError(f"flag {name}={value!r}: expected a boolean (True/False)")


def _parse_number(name: str, value, kind: type):
    # Strings are converted as argparse would convert a command-line value; bools are not numbers here.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"flag {name}={value!r}: expected {kind.__name__}")
    try:
        converted = kind(value)
    except ValueError:
        raise ValueError(f"flag {name}={value!r}: expected {kind.__name__}") from None
    if isinstance(value, float) and kind is int and converted != value:
        raise ValueError(f"flag {name}={value!r}: expected an integer")
    return converted


def _parse_int_list(name: str, value) -> tuple[float, ...]:
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",")]
        try:
            return tuple(int(item) for item in items)
        except ValueError:
            raise ValueError(f"flag {name}={value!r}: expected comma-separated integers, e.g. '1,2,2'") from None
    try:
        return tuple(value)
    except TypeError:
        raise ValueError(f"flag {name}={value!r}: expected a comma-separated string or a sequence") from None


def adm_from_flags(flags: Mapping) -> ADMUNet:
    """Build the UNet from guided-diffusion command-line flags, as ``script_util.create_model`` would.

    Parameters
    ----------
    flags : mapping
        guided-diffusion flag names to values (e.g. :data:`AFHQ_DOG_P2_FLAGS`); missing keys take
        :data:`ADM_DEFAULTS`. Values may be typed (``True``, ``128``) or command-line strings (``"True"``,
        ``"128"``). ``channel_mult`` is ``""`` (the default for ``image_size``), a string like ``"1,1,2,2,4,4"``
        or a sequence of numbers. ``attention_resolutions`` is a string of resolutions like ``"32,16,8"`` or a
        sequence of ints, turned into downsample rates ``image_size // resolution``. The flags of
        :data:`DIFFUSION_ONLY_FLAGS` are accepted and ignored, as are ``use_checkpoint`` and ``use_fp16`` (run
        under autocast instead; published checkpoints store float32 weights either way).

    Returns
    -------
    ADMUNet
        Freshly initialised, with 3 input channels, 6 output channels if ``learn_sigma`` else 3, and 1000 classes
        if ``class_cond``.

    Raises
    ------
    ValueError
        For a flag guided-diffusion's UNet does not know (named in the message) or a value of the wrong kind.
    """
    unknown = sorted(set(flags) - set(ADM_DEFAULTS) - DIFFUSION_ONLY_FLAGS)
    if unknown:
        raise ValueError(f"unknown ADM flag(s) {', '.join(map(repr, unknown))}; the UNet flags are "
                         f"{', '.join(sorted(ADM_DEFAULTS))}, and the diffusion flags "
                         f"{', '.join(sorted(DIFFUSION_ONLY_FLAGS))} are accepted and ignored")
    merged = {**ADM_DEFAULTS, **{k: v for k, v in flags.items() if k in ADM_DEFAULTS}}
    for ignored in ("use_checkpoint", "use_fp16"):  # checked for typos in their values, then unused
        _parse_bool(ignored, merged[ignored])

    image_size = _parse_number("image_size", merged["image_size"], int)
    channel_mult = merged["channel_mult"]
    if isinstance(channel_mult, str) and channel_mult.strip() == "":
        channel_mult = default_channel_mult(image_size)
    else:
        channel_mult = _parse_int_list("channel_mult", channel_mult)

    resolutions = _parse_int_list("attention_resolutions", merged["attention_resolutions"])
    attention_rates = tuple(image_size // int(resolution) for resolution in resolutions)

    return ADMUNet(
        image_size=image_size,
        in_channels=3,
        model_channels=_parse_number("num_channels", merged["num_channels"], int),
        out_channels=6 if _parse_bool("learn_sigma", merged["learn_sigma"]) else 3,
        num_res_blocks=_parse_number("num_res_blocks", merged["num_res_blocks"], int),
        attention_resolutions=attention_rates,
        dropout=_parse_number("dropout", merged["dropout"], float),
        channel_mult=channel_mult,
        num_classes=NUM_CLASSES if _parse_bool("class_cond", merged["class_cond"]) else None,
        num_heads=_parse_number("num_heads", merged["num_heads"], int),
        num_head_channels=_parse_number("num_head_channels", merged["num_head_channels"], int),
        num_heads_upsample=_parse_number("num_heads_upsample", merged["num_heads_upsample"], int),
        use_scale_shift_norm=_parse_bool("use_scale_shift_norm", merged["use_scale_shift_norm"]),
        resblock_updown=_parse_bool("resblock_updown", merged["resblock_updown"]),
        use_new_attention_order=_parse_bool("use_new_attention_order", merged["use_new_attention_order"]),
    )


def count_parameters(model: nn.Module) -> int:
    """Number of distinct parameter elements of ``model`` (shared parameters counted once)."""
    return sum(parameter.numel() for parameter in model.parameters())
