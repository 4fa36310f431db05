#!/usr/bin/python3
"""The baseline of bench/train-epoch: one epoch of the 3-conv CNN of tests/fixtures/fmnist-cnn3.json
on Fashion-MNIST with plain PyTorch, the way its users write it, with the hyperparameters of
minnow's defaults (SGD, momentum 0.9, Nesterov, weight decay 5e-4, lr 0.05, cosine over the
epochs, batch 128) and the same 54,000 / 6,000 train / validation split sizes.

  --variant dataloader   torchvision's FashionMNIST Dataset + DataLoader (ToTensor, Normalize)
  --variant tensor       the data held as one normalised float tensor, batches by index

Prints one JSON line: variant, threads, epochs, train_s (the training loop of the epochs),
epoch_s (train_s / epochs), total_s (the whole run, data loading included), test_acc.
Needs Debian's python3-torch and python3-torchvision (scripts/install-deps --bench)."""
import argparse
import gzip
import json
import math
import os
import shutil
import tempfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

FM = "/usr/share/datasets/fashion-mnist"


class Cnn3(nn.Module):
    """stem conv3x3 16 s1, conv3x3 32 s2, conv3x3 64 s2 (each conv without bias + BN + ReLU),
    global average pooling, linear 64 -> 10: the network minnow builds from fmnist-cnn3.json."""

    def __init__(self):
        super().__init__()
        layers = []
        cin = 1
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            layers += [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).reshape(shape)


def lr_at(step, steps_per_epoch, epochs, peak):
    return peak * 0.5 * (1 + math.cos(math.pi * step / (steps_per_epoch * epochs)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", choices=["dataloader", "tensor"], required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    start = time.perf_counter()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    perm = torch.randperm(60000)
    train_idx, val_idx = perm[:54000], perm[54000:]

    net = Cnn3()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)

    tmp = None
    if a.variant == "dataloader":
        import torchvision
        from torchvision import transforms
        # torchvision wants the unpacked files under ROOT/FashionMNIST/raw (it never downloads here)
        tmp = tempfile.mkdtemp()
        raw = os.path.join(tmp, "FashionMNIST", "raw")
        os.makedirs(raw)
        for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
            with gzip.open(os.path.join(FM, name + ".gz"), "rb") as src, open(os.path.join(raw, name), "wb") as dst:
                shutil.copyfileobj(src, dst)
        tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.2860,), (0.3530,))])
        train_set = torchvision.datasets.FashionMNIST(tmp, train=True, transform=tf, download=False)
        test_set = torchvision.datasets.FashionMNIST(tmp, train=False, transform=tf, download=False)
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(train_set, train_idx), batch_size=a.batch,
                                             shuffle=True, num_workers=0)
        test_loader = torch.utils.data.DataLoader(test_set, batch_size=1024, num_workers=0)
        steps = len(loader)

        def batches():
            return iter(loader)
    else:
        xs = read_idx(os.path.join(FM, "train-images-idx3-ubyte.gz")).float().div_(255)
        ys = read_idx(os.path.join(FM, "train-labels-idx1-ubyte.gz")).long()
        xs = xs[train_idx].unsqueeze(1)
        ys = ys[train_idx]
        mean, std = xs.mean(), xs.std()
        xs = (xs - mean) / std
        xt = (read_idx(os.path.join(FM, "t10k-images-idx3-ubyte.gz")).float().div_(255).unsqueeze(1) - mean) / std
        yt = read_idx(os.path.join(FM, "t10k-labels-idx1-ubyte.gz")).long()
        steps = (len(xs) + a.batch - 1) // a.batch

        def batches():
            p = torch.randperm(len(xs))
            for i in range(steps):
                j = p[i * a.batch:(i + 1) * a.batch]
                yield xs[j], ys[j]

        test_loader = [(xt[i:i + 1024], yt[i:i + 1024]) for i in range(0, len(xt), 1024)]

    train_s = 0.0
    step = 0
    for _ in range(a.epochs):
        net.train()
        t0 = time.perf_counter()
        for x, y in batches():
            for g in opt.param_groups:
                g["lr"] = lr_at(step, steps, a.epochs, 0.05)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            step += 1
        train_s += time.perf_counter() - t0

    net.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in test_loader:
            correct += int((net(x).argmax(1) == y).sum())
            total += len(y)
    if tmp:
        shutil.rmtree(tmp)
    print(json.dumps({"variant": a.variant, "threads": a.threads, "epochs": a.epochs, "train_s": round(train_s, 3),
                      "epoch_s": round(train_s / a.epochs, 3), "total_s": round(time.perf_counter() - start, 3),
                      "test_acc": round(correct / total, 4)}))


if __name__ == "__main__":
    main()
