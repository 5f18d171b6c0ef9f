"""A zoo of small torch models written the way people write them, for ``parity.generate_port``.

Each model follows a well-known source's style (the PyTorch tutorials and examples, torchvision,
nanoGPT, milesial's U-Net, the MLP-Mixer paper's pseudo-code): ``nn.Sequential`` stacks built in
loops, ``_make_layer`` helpers, in-place ``ReLU`` modules reused twice, ``F.relu`` and
``F.max_pool2d`` in ``forward``, ``x.view(-1, ...)``, ``torch.flatten``, ``torch.cat`` skip
connections, ``.transpose(1, 2)`` mixing, ``split`` / ``view`` / ``masked_fill`` attention,
tuples unpacked from recurrent layers, ``randn_like`` noise and ``nn.Dropout`` in train mode. The
sizes are tiny, so each trains in a fraction of a second.

Every :class:`ZooCase` says how to train its model: a seeded builder, a seeded batch
``(inputs..., target)`` in torch's layout, the loss (a name that ``torch.nn.functional`` and
``jaxnets.losses`` share, or a ``(torch_fn, jax_fn)`` pair whose JAX side reads outputs of rank
>= 3 in the port's layout) and the model's own optimiser. ``ZOO`` lists them all; the tests feed
each model to ``parity.generate_port`` and train the generated port beside it with
``parity.check_port``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import torch
import torch.nn as nn
import torch.nn.functional as F

from jaxnets import losses

__all__ = ["ZOO", "ZooCase"]


@dataclass(frozen=True)
class ZooCase:
    """One zoo model and how to train it.

    Attributes:
      name: the case's id.
      build: seeds torch and returns the model, in train mode.
      batch: a seeded ``(inputs..., target)`` tuple of tensors in torch's layout.
      loss: given ``channels_last``, the ``loss=`` argument of ``parity.check_port``.
      optimizer: a fresh optimiser of the given model's parameters.
      n_inputs: how many leading items of ``batch()`` are the model's inputs.
    """

    name: str
    build: Callable[[], nn.Module]
    batch: Callable[[], tuple[torch.Tensor, ...]]
    loss: Callable[[bool], Any]
    optimizer: Callable[[nn.Module], torch.optim.Optimizer]
    n_inputs: int = 1


def _named(name: str) -> Callable[[bool], str]:
    """A loss both libraries have under ``name``; the same in either layout."""
    return lambda channels_last: name


def _image_loss(torch_fn: Callable, jax_fn: Callable) -> Callable[[bool], tuple]:
    """A per-pixel loss of an image output against an image target in torch's layout.

    With ``channels_last`` the port's output is ``(N, H, W, C)`` while ``check_port`` passes the
    target as torch has it, so the JAX side moves the target's channel axis last.
    """

    def pair(channels_last: bool) -> tuple[Callable, Callable]:
        def jax_loss(output, target):
            return jax_fn(output, jnp.moveaxis(target, 1, -1) if channels_last else target)

        return torch_fn, jax_loss

    return pair


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- 1. LeNet (the "Neural Networks" tutorial of the 60-minute blitz, narrowed) ---------------


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        # 1 input image channel, 4 output channels, 5x5 square convolution kernel
        self.conv1 = nn.Conv2d(1, 4, 5)
        self.conv2 = nn.Conv2d(4, 8, 5)
        # an affine operation: y = Wx + b
        self.fc1 = nn.Linear(8 * 5 * 5, 16)  # 5*5 from image dimension
        self.fc2 = nn.Linear(16, 12)
        self.fc3 = nn.Linear(12, 10)

    def forward(self, x):
        # Max pooling over a (2, 2) window
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        # If the size is a square, you can specify with a single number
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(-1, 8 * 5 * 5)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


def _lenet() -> nn.Module:
    torch.manual_seed(0)
    return LeNet().train()


def _lenet_batch():
    g = _generator(1)
    return torch.randn(2, 1, 32, 32, generator=g), torch.randint(0, 10, (2,), generator=g)


# --- 2. ResNet (torchvision.models.resnet, two narrow stages) ---------------------------------


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding"""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution"""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion: int = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        # Both self.conv1 and self.downsample layers downsample the input when stride != 1
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x

        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)

        out = self.conv2(out)
        out = self.bn2(out)

        if self.downsample is not None:
            identity = self.downsample(x)

        out += identity
        out = self.relu(out)

        return out


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=5):
        super().__init__()
        self.inplanes = 4
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 4, layers[0])
        self.layer2 = self._make_layer(block, 8, layers[1], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )

        layers = []
        layers.append(block(self.inplanes, planes, stride, downsample))
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes))

        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)

        x = self.layer1(x)
        x = self.layer2(x)

        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.fc(x)

        return x


def _resnet() -> nn.Module:
    torch.manual_seed(0)
    return ResNet(BasicBlock, [2, 2]).train()


def _resnet_batch():
    g = _generator(2)
    return torch.randn(2, 3, 8, 8, generator=g), torch.randint(0, 5, (2,), generator=g)


# --- 3. VGG (torchvision.models.vgg's make_layers and classifier, dropout on) -----------------


def make_layers(cfg, batch_norm=False):
    layers = []
    in_channels = 3
    for v in cfg:
        if v == "M":
            layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
        else:
            conv2d = nn.Conv2d(in_channels, v, kernel_size=3, padding=1)
            if batch_norm:
                layers += [conv2d, nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            else:
                layers += [conv2d, nn.ReLU(inplace=True)]
            in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(self, features, num_classes=5, dropout=0.5):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = nn.Sequential(
            nn.Linear(8 * 2 * 2, 16),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(16, 16),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(16, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x


def _vgg() -> nn.Module:
    torch.manual_seed(0)
    return VGG(make_layers([4, "M", 8, 8, "M"])).train()


def _vgg_batch():
    g = _generator(3)
    return torch.randn(3, 3, 16, 16, generator=g), torch.randint(0, 5, (3,), generator=g)


# --- 4. U-Net (milesial/Pytorch-UNet's parts, two levels) -------------------------------------


class DoubleConv(nn.Module):
    """(convolution => [BN] => ReLU) * 2"""

    def __init__(self, in_channels, out_channels, mid_channels=None):
        super().__init__()
        if not mid_channels:
            mid_channels = out_channels
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    """Downscaling with maxpool then double conv"""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    """Upscaling then double conv"""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        x = torch.cat([x2, x1], dim=1)
        return self.conv(x)


class UNet(nn.Module):
    def __init__(self, n_channels=3, n_classes=1):
        super().__init__()
        self.n_channels = n_channels
        self.n_classes = n_classes
        self.inc = DoubleConv(n_channels, 4)
        self.down1 = Down(4, 8)
        self.down2 = Down(8, 16)
        self.up1 = Up(16, 8)
        self.up2 = Up(8, 4)
        self.outc = nn.Conv2d(4, n_classes, kernel_size=1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x = self.up1(x3, x2)
        x = self.up2(x, x1)
        logits = self.outc(x)
        return logits


def _unet() -> nn.Module:
    torch.manual_seed(0)
    return UNet().train()


def _unet_batch():
    g = _generator(4)
    images = torch.randn(2, 3, 8, 8, generator=g)
    masks = (torch.rand(2, 1, 8, 8, generator=g) > 0.5).float()
    return images, masks


# --- 5-6. DCGAN (pytorch/examples' dcgan/main.py, 16x16 images) -------------------------------

NZ, NGF, NDF, NC = 4, 4, 4, 3


def weights_init(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        torch.nn.init.normal_(m.weight, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        torch.nn.init.normal_(m.weight, 1.0, 0.02)
        torch.nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            # input is Z, going into a convolution
            nn.ConvTranspose2d(NZ, NGF * 2, 4, 1, 0, bias=False),
            nn.BatchNorm2d(NGF * 2),
            nn.ReLU(True),
            # state size. (ngf*2) x 4 x 4
            nn.ConvTranspose2d(NGF * 2, NGF, 4, 2, 1, bias=False),
            nn.BatchNorm2d(NGF),
            nn.ReLU(True),
            # state size. (ngf) x 8 x 8
            nn.ConvTranspose2d(NGF, NC, 4, 2, 1, bias=False),
            nn.Tanh(),
            # state size. (nc) x 16 x 16
        )

    def forward(self, input):
        output = self.main(input)
        return output


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            # input is (nc) x 16 x 16
            nn.Conv2d(NC, NDF, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf) x 8 x 8
            nn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(NDF * 2),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*2) x 4 x 4
            nn.Conv2d(NDF * 2, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, input):
        output = self.main(input)
        return output.view(-1, 1).squeeze(1)


def _generator_model() -> nn.Module:
    torch.manual_seed(0)
    netG = Generator()
    netG.apply(weights_init)
    return netG.train()


def _generator_batch():
    g = _generator(5)
    noise = torch.randn(2, NZ, 1, 1, generator=g)
    real = torch.rand(2, NC, 16, 16, generator=g) * 2 - 1
    return noise, real


def _discriminator_model() -> nn.Module:
    torch.manual_seed(0)
    netD = Discriminator()
    netD.apply(weights_init)
    return netD.train()


def _discriminator_batch():
    g = _generator(6)
    images = torch.rand(3, NC, 16, 16, generator=g) * 2 - 1
    label = torch.tensor([1.0, 0.0, 1.0])
    return images, label


def _dcgan_adam(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))


# --- 7. LSTM text classifier ------------------------------------------------------------------


class LSTMClassifier(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_dim, num_class):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, batch_first=True)
        self.fc = nn.Linear(hidden_dim, num_class)

    def forward(self, text):
        emb = self.embedding(text)
        _, (h_n, c_n) = self.lstm(emb)
        return self.fc(h_n[-1])


def _lstm() -> nn.Module:
    torch.manual_seed(0)
    return LSTMClassifier(vocab_size=15, embed_dim=8, hidden_dim=8, num_class=4).train()


def _lstm_batch():
    g = _generator(7)
    text = torch.randint(1, 15, (3, 7), generator=g)
    text[0, 5:] = 0  # padded
    return text, torch.randint(0, 4, (3,), generator=g)


# --- 8. GRU seq2seq encoder (the "NLP From Scratch: translation" tutorial's EncoderRNN) --------


class EncoderRNN(nn.Module):
    def __init__(self, input_size, hidden_size, dropout_p=0.1):
        super().__init__()
        self.hidden_size = hidden_size

        self.embedding = nn.Embedding(input_size, hidden_size)
        self.gru = nn.GRU(
            hidden_size, hidden_size, num_layers=2, batch_first=True, bidirectional=True
        )
        self.dropout = nn.Dropout(dropout_p)

    def forward(self, input):
        embedded = self.dropout(self.embedding(input))
        output, hidden = self.gru(embedded)
        return output, hidden


def _encoder() -> nn.Module:
    torch.manual_seed(0)
    return EncoderRNN(input_size=11, hidden_size=6).train()


def _encoder_batch():
    g = _generator(8)
    return torch.randint(0, 11, (3, 5), generator=g), torch.randn(3, generator=g)


def _encoder_loss(channels_last: bool) -> tuple[Callable, Callable]:
    # output is (N, L, 2H) and hidden (layers * directions, N, H) in torch; the loss reads them
    # through reductions that do not depend on where a port keeps those axes.
    def torch_loss(out, target):
        output, hidden = out
        return F.mse_loss(output.mean(dim=(1, 2)), target) + hidden.pow(2).mean()

    def jax_loss(out, target):
        output, hidden = out
        return losses.mse_loss(output.mean(axis=(1, 2)), target) + jnp.mean(hidden**2)

    return torch_loss, jax_loss


# --- 9. Transformer encoder classifier --------------------------------------------------------


class TransformerClassifier(nn.Module):
    def __init__(self, vocab_size, seq_len, d_model=8, nhead=2, num_layers=2, num_classes=3):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.pos_embedding = nn.Parameter(torch.randn(1, seq_len, d_model) * 0.02)
        encoder_layer = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward=16, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(encoder_layer, num_layers=num_layers)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x):
        x = self.embedding(x) + self.pos_embedding
        x = self.encoder(x)
        x = x.mean(dim=1)
        return self.head(x)


def _transformer() -> nn.Module:
    torch.manual_seed(0)
    return TransformerClassifier(vocab_size=13, seq_len=6).train()


def _transformer_batch():
    g = _generator(9)
    return torch.randint(0, 13, (4, 6), generator=g), torch.randint(0, 3, (4,), generator=g)


# --- 10. GPT (nanoGPT's model.py, the explicit-attention path, no weight tying) ---------------


@dataclass
class GPTConfig:
    block_size: int = 8
    vocab_size: int = 13
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 8
    dropout: float = 0.0
    bias: bool = True


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        # key, query, value projections for all heads, but in a batch
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        # output projection
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        # regularization
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout
        # causal mask to ensure that attention is only applied to the left in the input sequence
        self.register_buffer(
            "bias",
            torch.tril(torch.ones(config.block_size, config.block_size)).view(
                1, 1, config.block_size, config.block_size
            ),
        )

    def forward(self, x):
        B, T, C = x.size()  # batch size, sequence length, embedding dimensionality (n_embd)

        # calculate query, key, values for all heads in batch and move head forward to be the
        # batch dim
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)

        # causal self-attention; Self-attend: (B, nh, T, hs) x (B, nh, hs, T) -> (B, nh, T, T)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        att = self.attn_dropout(att)
        y = att @ v  # (B, nh, T, T) x (B, nh, T, hs) -> (B, nh, T, hs)
        y = (
            y.transpose(1, 2).contiguous().view(B, T, C)
        )  # re-assemble all head outputs side by side

        # output projection
        y = self.resid_dropout(self.c_proj(y))
        return y


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        x = self.c_fc(x)
        x = self.gelu(x)
        x = self.c_proj(x)
        x = self.dropout(x)
        return x


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config

        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=nn.LayerNorm(config.n_embd),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)

        # init all weights
        self.apply(self._init_weights)
        # apply special scaled init to the residual projections, per GPT-2 paper
        for pn, p in self.named_parameters():
            if pn.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx):
        device = idx.device
        b, t = idx.size()
        assert t <= self.config.block_size, (
            f"Cannot forward sequence of length {t}, block size is only {self.config.block_size}"
        )
        pos = torch.arange(0, t, dtype=torch.long, device=device)  # shape (t)

        # forward the GPT model itself
        tok_emb = self.transformer.wte(idx)  # token embeddings of shape (b, t, n_embd)
        pos_emb = self.transformer.wpe(pos)  # position embeddings of shape (t, n_embd)
        x = self.transformer.drop(tok_emb + pos_emb)
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        logits = self.lm_head(x)
        return logits.view(-1, logits.size(-1))

    def configure_optimizers(self, weight_decay, learning_rate, betas):
        # any parameter that is 2D will be weight decayed, otherwise no.
        # i.e. all weight tensors in matmuls + embeddings decay, all biases and layernorms don't.
        param_dict = {pn: p for pn, p in self.named_parameters() if p.requires_grad}
        decay_params = [p for n, p in param_dict.items() if p.dim() >= 2]
        nodecay_params = [p for n, p in param_dict.items() if p.dim() < 2]
        optim_groups = [
            {"params": decay_params, "weight_decay": weight_decay},
            {"params": nodecay_params, "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(optim_groups, lr=learning_rate, betas=betas)


def _gpt() -> nn.Module:
    torch.manual_seed(0)
    return GPT(GPTConfig()).train()


def _gpt_batch():
    g = _generator(10)
    data = torch.randint(0, 13, (2, 9), generator=g)
    x, y = data[:, :-1], data[:, 1:]
    return x.contiguous(), y.reshape(-1)


# --- 11. VAE (pytorch/examples' vae/main.py, 4x4 images) --------------------------------------

PIXELS = 16


class VAE(nn.Module):
    def __init__(self):
        super().__init__()

        self.fc1 = nn.Linear(PIXELS, 8)
        self.fc21 = nn.Linear(8, 3)
        self.fc22 = nn.Linear(8, 3)
        self.fc3 = nn.Linear(3, 8)
        self.fc4 = nn.Linear(8, PIXELS)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, PIXELS))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def _vae() -> nn.Module:
    torch.manual_seed(0)
    return VAE().train()


def _vae_batch():
    x = torch.rand(4, 1, 4, 4, generator=_generator(11))
    return x, x


def _vae_loss(channels_last: bool) -> tuple[Callable, Callable]:
    # Reconstruction + KL divergence losses summed over all elements and batch; the target is
    # the input image in torch's layout on both sides (check_port never moves the target).
    def torch_loss(out, x):
        recon_x, mu, logvar = out
        BCE = F.binary_cross_entropy(recon_x, x.view(-1, PIXELS), reduction="sum")
        KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return BCE + KLD

    def jax_loss(out, x):
        recon_x, mu, logvar = out
        BCE = losses.binary_cross_entropy(recon_x, x.reshape(-1, PIXELS), reduction="sum")
        KLD = -0.5 * jnp.sum(1 + logvar - mu**2 - jnp.exp(logvar))
        return BCE + KLD

    return torch_loss, jax_loss


# --- 12. MLP-Mixer ----------------------------------------------------------------------------


class MlpBlock(nn.Module):
    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class MixerBlock(nn.Module):
    def __init__(self, num_tokens, dim, tokens_hidden, channels_hidden):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.token_mixing = MlpBlock(num_tokens, tokens_hidden)
        self.norm2 = nn.LayerNorm(dim)
        self.channel_mixing = MlpBlock(dim, channels_hidden)

    def forward(self, x):
        y = self.norm1(x).transpose(1, 2)
        y = self.token_mixing(y).transpose(1, 2)
        x = x + y
        x = x + self.channel_mixing(self.norm2(x))
        return x


class MlpMixer(nn.Module):
    def __init__(self, image_size=8, patch_size=4, in_channels=3, dim=8, depth=2, num_classes=4):
        super().__init__()
        num_tokens = (image_size // patch_size) ** 2
        self.stem = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
        self.blocks = nn.Sequential(
            *[
                MixerBlock(num_tokens, dim, tokens_hidden=6, channels_hidden=16)
                for _ in range(depth)
            ]
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.stem(x)  # (N, dim, H/p, W/p)
        x = x.flatten(2).transpose(1, 2)  # (N, tokens, dim)
        x = self.blocks(x)
        x = self.norm(x)
        x = x.mean(dim=1)
        return self.head(x)


def _mixer() -> nn.Module:
    torch.manual_seed(0)
    return MlpMixer().train()


def _mixer_batch():
    g = _generator(12)
    return torch.randn(2, 3, 8, 8, generator=g), torch.randint(0, 4, (2,), generator=g)


# --- 13. A small CNN flattening with x.view(x.size(0), -1) (log-softmax, NLL) ------------------


class SmallCNN(nn.Module):
    def __init__(self, num_classes=6):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 8, kernel_size=3, padding=1)
        self.fc = nn.Linear(8 * 2 * 2, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.view(x.size(0), -1)
        x = self.fc(x)
        return F.log_softmax(x, dim=1)


def _small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return SmallCNN().train()


def _small_cnn_batch():
    g = _generator(13)
    return torch.randn(3, 3, 8, 8, generator=g), torch.randint(0, 6, (3,), generator=g)


# --- 14. A small CNN with global average pooling as x.mean(dim=(2, 3)) ------------------------


class GapCNN(nn.Module):
    def __init__(self, num_classes=4):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU6(inplace=True),
            # depthwise, then pointwise
            nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU6(inplace=True),
            nn.Conv2d(8, 8, 1, bias=False),
            nn.BatchNorm2d(8),
        )
        self.classifier = nn.Linear(8, num_classes)

    def forward(self, x):
        x = self.features(x)
        x = x.mean(dim=(2, 3))
        return self.classifier(x)


def _gap_cnn() -> nn.Module:
    torch.manual_seed(0)
    return GapCNN().train()


def _gap_cnn_batch():
    g = _generator(14)
    return torch.randn(2, 3, 8, 8, generator=g), torch.randint(0, 4, (2,), generator=g)


ZOO: list[ZooCase] = [
    ZooCase(
        "lenet",
        _lenet,
        _lenet_batch,
        _named("cross_entropy"),
        lambda m: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9),
    ),
    ZooCase(
        "resnet",
        _resnet,
        _resnet_batch,
        _named("cross_entropy"),
        lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4),
    ),
    ZooCase(
        "vgg",
        _vgg,
        _vgg_batch,
        _named("cross_entropy"),
        lambda m: torch.optim.AdamW(m.parameters(), lr=1e-3),
    ),
    ZooCase(
        "unet",
        _unet,
        _unet_batch,
        _image_loss(F.binary_cross_entropy_with_logits, losses.binary_cross_entropy_with_logits),
        lambda m: torch.optim.RMSprop(m.parameters(), lr=1e-3, weight_decay=1e-8, momentum=0.9),
    ),
    ZooCase(
        "dcgan_generator",
        _generator_model,
        _generator_batch,
        _image_loss(F.mse_loss, losses.mse_loss),
        _dcgan_adam,
    ),
    ZooCase(
        "dcgan_discriminator",
        _discriminator_model,
        _discriminator_batch,
        _named("binary_cross_entropy"),
        _dcgan_adam,
    ),
    ZooCase(
        "lstm_classifier",
        _lstm,
        _lstm_batch,
        _named("cross_entropy"),
        lambda m: torch.optim.RMSprop(m.parameters(), lr=1e-2),
    ),
    ZooCase(
        "gru_encoder",
        _encoder,
        _encoder_batch,
        _encoder_loss,
        lambda m: torch.optim.Adadelta(m.parameters(), lr=1.0),
    ),
    ZooCase(
        "transformer_classifier",
        _transformer,
        _transformer_batch,
        _named("cross_entropy"),
        lambda m: torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.01),
    ),
    ZooCase(
        "gpt",
        _gpt,
        _gpt_batch,
        _named("cross_entropy"),
        lambda m: m.configure_optimizers(weight_decay=0.1, learning_rate=1e-3, betas=(0.9, 0.95)),
    ),
    ZooCase(
        "vae",
        _vae,
        _vae_batch,
        _vae_loss,
        lambda m: torch.optim.Adam(m.parameters(), lr=1e-3),
    ),
    ZooCase(
        "mlp_mixer",
        _mixer,
        _mixer_batch,
        _named("cross_entropy"),
        lambda m: torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, nesterov=True),
    ),
    ZooCase(
        "cnn_view_flatten",
        _small_cnn,
        _small_cnn_batch,
        _named("nll_loss"),
        lambda m: torch.optim.Adam(m.parameters(), lr=1e-3, amsgrad=True),
    ),
    ZooCase(
        "cnn_mean_pool",
        _gap_cnn,
        _gap_cnn_batch,
        _named("cross_entropy"),
        lambda m: torch.optim.RMSprop(m.parameters(), lr=1e-3, alpha=0.9, centered=True),
    ),
]
