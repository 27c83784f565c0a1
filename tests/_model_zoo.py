"""A zoo of tiny models of the kinds researchers train, for the probe × model tests.

Each :func:`case` returns a :class:`Case`: the model (seeded, in the dtype asked for), its loss,
one batch ``(inputs, targets)`` and, where the model's output is not the logits, an ``output_fn``.
Widths are tiny so that float64 references (dense Hessians, python loops over examples) stay cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn
import torch.nn.functional as F


def ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out, y)


class ResNetBN(nn.Module):
    """Conv → BatchNorm → ReLU, one residual block with BatchNorm, global pooling, classifier."""

    def __init__(self, c: int = 3):
        super().__init__()
        self.stem = nn.Conv2d(1, c, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(c)
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.fc = nn.Linear(c, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn0(self.stem(x)))
        r = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(h)))))
        h = F.relu(h + r)
        return self.fc(h.mean((2, 3)))


class Encoder(nn.Module):
    """Linear embedding, one ``nn.TransformerEncoderLayer`` (dropout, LayerNorm), mean pooling."""

    def __init__(self, d: int = 4, dropout: float = 0.2, layers: int = 1, norm_first: bool = False):
        super().__init__()
        self.embed = nn.Linear(3, d)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(d, 2, dim_feedforward=6, dropout=dropout, batch_first=True, norm_first=norm_first)
            for _ in range(layers)
        )
        self.head = nn.Linear(d, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for layer in self.layers:
            h = layer(h)
        return self.head(h.mean(1))


class Tied(nn.Module):
    """Embedding and output layer sharing one weight (``out.weight is emb.weight``)."""

    def __init__(self, vocab: int = 7, d: int = 4):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.mix = nn.Linear(d, d)
        self.out = nn.Linear(d, vocab, bias=False)
        self.out.weight = self.emb.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.mix(self.emb(tokens).mean(1))))


class DictTuple(nn.Module):
    """Takes ``{"a": (N, 3), "b": (N, 2)}`` and returns ``(logits, features)``."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 4)
        self.b = nn.Linear(2, 4)
        self.head = nn.Linear(4, 3)

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.tanh(self.a(batch["a"]) + self.b(batch["b"]))
        return self.head(h), h


class Recurrent(nn.Module):
    """A one-layer GRU or LSTM over a sequence, classifier on the last hidden state."""

    def __init__(self, kind: str, h: int = 3):
        super().__init__()
        self.rnn = (nn.GRU if kind == "gru" else nn.LSTM)(2, h, batch_first=True)
        self.head = nn.Linear(h, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class WeightNormNet(nn.Module):
    """A ``weight_norm`` parametrized layer (``torch.nn.utils.parametrizations``)."""

    def __init__(self):
        super().__init__()
        self.l1 = nn.utils.parametrizations.weight_norm(nn.Linear(4, 5))
        self.l2 = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(torch.tanh(self.l1(x)))


class FrozenUnused(nn.Module):
    """An MLP with a frozen first layer and a layer that forward never calls."""

    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(4, 5)
        self.l2 = nn.Linear(5, 3)
        self.unused = nn.Linear(5, 5)
        for p in self.l1.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(torch.tanh(self.l1(x)))


@dataclass
class Case:
    name: str
    model: nn.Module
    loss_fn: Callable
    data: tuple[Any, torch.Tensor]
    output_fn: Callable | None = None
    traits: set[str] = field(default_factory=set)  # "batchnorm", "dropout", "rnn", "parametrized", ...

    @property
    def n(self) -> int:
        return int(self.data[1].shape[0])


NAMES = ["resnet", "encoder", "prelnt", "tied", "dict", "gru", "lstm", "weightnorm", "frozen"]


def case(name: str, dtype: torch.dtype = torch.float64, n: int = 6, seed: int = 0) -> Case:
    """The zoo model ``name`` with a batch of ``n`` examples (3 classes; 7 tokens for ``tied``)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    y = torch.randint(0, 3, (n,), generator=g)
    traits: set[str] = set()
    output_fn = None
    if name == "resnet":
        model, x = ResNetBN(), torch.randn(n, 1, 4, 4, generator=g)
        traits = {"batchnorm"}
    elif name == "encoder":
        model, x = Encoder(), torch.randn(n, 3, 3, generator=g)
        traits = {"dropout", "attention"}
    elif name == "prelnt":
        model, x = Encoder(dropout=0.0, layers=2, norm_first=True), torch.randn(n, 3, 3, generator=g)
        traits = {"attention"}
    elif name == "tied":
        model, x = Tied(), torch.randint(0, 7, (n, 3), generator=g)
        y = torch.randint(0, 7, (n,), generator=g)
        traits = {"tied"}
    elif name == "dict":
        model = DictTuple()
        x = {"a": torch.randn(n, 3, generator=g), "b": torch.randn(n, 2, generator=g)}
        output_fn = first  # the probes apply loss_fn to output_fn(model(inputs))
        traits = {"dict", "tuple-out"}
    elif name in ("gru", "lstm"):
        model, x = Recurrent(name), torch.randn(n, 4, 2, generator=g)
        traits = {"rnn"}
    elif name == "weightnorm":
        model, x = WeightNormNet(), torch.randn(n, 4, generator=g)
        traits = {"parametrized"}
    elif name == "frozen":
        model, x = FrozenUnused(), torch.randn(n, 4, generator=g)
        traits = {"frozen", "unused"}
    else:
        raise KeyError(name)
    model = model.to(dtype)
    if isinstance(x, dict):
        x = {k: v.to(dtype) for k, v in x.items()}
    elif x.is_floating_point():
        x = x.to(dtype)
    return Case(name, model, ce, (x, y), output_fn, traits)


def first(out: tuple) -> torch.Tensor:
    """The logits of a model returning ``(logits, features)``."""
    return out[0]
