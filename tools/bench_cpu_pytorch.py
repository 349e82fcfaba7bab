"""The PyTorch CPU peer of `cgan_gpu bench --device cpu`: mnist_mlp, mnist_lsgan_embed and anime_small
built by hand as their configs say, one training iteration timed as the engine times it.

    /usr/bin/python3 tools/bench_cpu_pytorch.py --model mnist_mlp [--threads 1] [--steps 200] [--repeats 5]

One iteration = one D step (the fakes made without gradients, as the engine makes them; D's Adam)
+ one G step (D's parameter gradients off, as the engine skips them; G's Adam), with the batch
gathered from an in-memory set of the right shape (random values: the cost does not depend on
them) and fresh noise and labels drawn each iteration. Prints one JSON line
{"model", "batch", "threads", "ms_per_iter" (median of the timed blocks), "min_ms", "max_ms"}.

mnist_mlp         seed 000: G Linear(100+10 -> 128) ReLU Linear(-> 784) sigmoid; D Linear(784+10 -> 128) ReLU
                  Linear(-> 1); one-hot labels concatenated (the batch's own labels for the fakes); BCE on logits;
                  Adam 1e-3 (0.9, 0.999); batch 64.
mnist_lsgan_embed seed 002: G Embedding(10, 10) concatenated to the noise, Linear 128 LReLU, (Linear, BatchNorm1d
                  eps 0.8, LReLU) x (256, 512, 1024), Linear 784 tanh; D Embedding(10, 10) concatenated,
                  Linear 512 LReLU, (Linear 512, Dropout 0.4, LReLU) x 2, Linear 1; squared loss (D's terms
                  weighted 0.5), random labels for the fakes; Adam 2e-4 (0.5, 0.999); batch 64.
anime_small       G Linear(64+22 -> 4*64*64) BatchNorm2d ReLU, Conv3x3(4 -> 12) BN ReLU, Conv3x3(12 -> 8) BN ReLU,
                  Conv2x2/2(8 -> 3) tanh; D label plane Linear(22 -> 32*32) as a 4th channel, Conv5x5(4 -> 16)
                  LReLU AvgPool(2, 2), Conv5x5(16 -> 32) LReLU AvgPool(2, stride 3), Linear(800 -> 256) LReLU
                  Linear(-> 1); three-term BCE (real+tags, fake+tags, fake made from another sample's tags);
                  Adam 3e-4 (0.5, 0.999); batch 32; 22 tags (12 hair + 10 eye colours).
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def lrelu():
    return nn.LeakyReLU(0.2)


class MlpG(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(110, 128), nn.ReLU(), nn.Linear(128, 784))

    def forward(self, z, y):
        return torch.sigmoid(self.net(torch.cat([z, F.one_hot(y, 10).float()], 1)))


class MlpD(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(794, 128), nn.ReLU(), nn.Linear(128, 1))

    def forward(self, x, y):
        return self.net(torch.cat([x, F.one_hot(y, 10).float()], 1))


class LsganG(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 10)
        layers = [nn.Linear(110, 128), lrelu()]
        for i, o in ((128, 256), (256, 512), (512, 1024)):
            layers += [nn.Linear(i, o), nn.BatchNorm1d(o, eps=0.8), lrelu()]
        self.net = nn.Sequential(*layers, nn.Linear(1024, 784), nn.Tanh())

    def forward(self, z, y):
        return self.net(torch.cat([z, self.emb(y)], 1))


class LsganD(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 10)
        self.net = nn.Sequential(nn.Linear(794, 512), lrelu(), nn.Linear(512, 512), nn.Dropout(0.4), lrelu(),
                                 nn.Linear(512, 512), nn.Dropout(0.4), lrelu(), nn.Linear(512, 1))

    def forward(self, x, y):
        return self.net(torch.cat([x, self.emb(y)], 1))


TAGS = 22


class AnimeG(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64 + TAGS, 4 * 64 * 64)
        self.net = nn.Sequential(nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 12, 3, padding=1), nn.BatchNorm2d(12),
                                 nn.ReLU(), nn.Conv2d(12, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                 nn.Conv2d(8, 3, 2, stride=2), nn.Tanh())

    def forward(self, z, c):
        return self.net(self.fc(torch.cat([z, c], 1)).view(-1, 4, 64, 64))


class AnimeD(nn.Module):
    def __init__(self):
        super().__init__()
        self.plane = nn.Linear(TAGS, 32 * 32)
        self.net = nn.Sequential(nn.Conv2d(4, 16, 5, padding=2), lrelu(), nn.AvgPool2d(2, 2),
                                 nn.Conv2d(16, 32, 5, padding=2), lrelu(), nn.AvgPool2d(2, 3), nn.Flatten(),
                                 nn.Linear(32 * 5 * 5, 256), lrelu(), nn.Linear(256, 1))

    def forward(self, x, c):
        return self.net(torch.cat([x.view(-1, 3, 32, 32), self.plane(c).view(-1, 1, 32, 32)], 1))


def make_step(model):
    bce = F.binary_cross_entropy_with_logits
    mse = F.mse_loss
    n = 20000 if model == "anime_small" else 60000
    if model == "mnist_mlp":
        G, D, B, noise, lr, betas = MlpG(), MlpD(), 64, 100, 1e-3, (0.9, 0.999)
    elif model == "mnist_lsgan_embed":
        G, D, B, noise, lr, betas = LsganG(), LsganD(), 64, 100, 2e-4, (0.5, 0.999)
    else:
        G, D, B, noise, lr, betas = AnimeG(), AnimeD(), 32, 64, 3e-4, (0.5, 0.999)
    opt_g, opt_d = torch.optim.Adam(G.parameters(), lr, betas), torch.optim.Adam(D.parameters(), lr, betas)
    images = torch.rand(n, 3 * 32 * 32 if model == "anime_small" else 784) * 2 - 1
    labels = torch.randint(0, 10, (n,))
    tags = (torch.rand(n, TAGS) < 0.1).float()
    ones, zeros = torch.ones(B, 1), torch.zeros(B, 1)

    def d_params(on):
        for p in D.parameters():
            p.requires_grad_(on)

    def step():
        idx = torch.randint(0, n, (B,))
        x = images[idx]
        if model == "anime_small":
            c = tags[idx]
            other = tags[torch.randint(0, n, (B,))]
            with torch.no_grad():
                fake, fake_other = G(torch.randn(B, noise), c), G(torch.randn(B, noise), other)
            d_loss = bce(D(x, c), ones) + bce(D(fake, c), zeros) + bce(D(fake_other, c), zeros)
            cond_g = c
        else:
            y = labels[idx]
            yf = torch.randint(0, 10, (B,)) if model == "mnist_lsgan_embed" else y
            with torch.no_grad():
                fake = G(torch.randn(B, noise), yf)
            if model == "mnist_mlp":
                d_loss = bce(D(x, y), ones) + bce(D(fake, yf), zeros)
            else:
                d_loss = 0.5 * (mse(D(x, y), ones) + mse(D(fake, yf), zeros))
            cond_g = torch.randint(0, 10, (B,)) if model == "mnist_lsgan_embed" else y
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        d_params(False)
        out = D(G(torch.randn(B, noise), cond_g), cond_g)
        g_loss = mse(out, ones) if model == "mnist_lsgan_embed" else bce(out, ones)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        d_params(True)

    return step, B


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["mnist_mlp", "mnist_lsgan_embed", "anime_small"], required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=200, help="iterations per timed block")
    ap.add_argument("--repeats", type=int, default=5, help="timed blocks (the median is reported)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    step, batch = make_step(a.model)
    for _ in range(max(1, a.steps // 4)):  # warm-up
        step()
    ms = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        ms.append((time.perf_counter() - t0) * 1e3 / a.steps)
    ms.sort()
    print(json.dumps({"model": a.model, "batch": batch, "threads": a.threads, "ms_per_iter": round(ms[len(ms) // 2], 4),
                      "min_ms": round(ms[0], 4), "max_ms": round(ms[-1], 4), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
