# PyTorch references for `pnpm bench pruners`, written from the papers: SparseGPT (Frantar & Alistarh
# 2023, Algorithm 1 with lazy batch updates) and Wanda (Sun et al. 2023: |W| times the input's column
# norm, the smallest half of each output row removed). They read the same layer and calibration inputs
# as the bench's own run (raw float32 files it wrote) and use the same blocksize, dampening and 50%
# unstructured target. Prints one JSON line: seconds for the statistics and for the pruning, the peak
# memory above the inputs, and how the result compares with ours (mask agreement, largest weight
# difference).
#
# usage: torch_sparsegpt.py <sparsegpt|wanda> <dir with w.bin x.bin ours.bin> <rows=cols> <tokens> <blocksize> <percdamp> <threads>
import json
import resource
import sys
import time

import torch


def rss_bytes():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def wanda(w, x):
    t0 = time.perf_counter()
    norms = torch.sqrt((x.double() ** 2).sum(0)).float()
    t1 = time.perf_counter()
    score = w.abs() * norms.reshape(1, -1)
    drop = w.shape[1] - round(w.shape[1] * 0.5)
    idx = torch.topk(score, drop, dim=1, largest=False).indices
    w.scatter_(1, idx, 0.0)
    return t0, t1, time.perf_counter()


def sparsegpt(w, x, tokens, blocksize, percdamp):
    t0 = time.perf_counter()
    # H = 2/n X^T X, accumulated in float64 as ours is.
    xd = x.double()
    h = (2.0 / tokens) * (xd.t() @ xd)
    del xd
    t1 = time.perf_counter()

    rows, cols = w.shape
    dead = torch.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    damp = percdamp * torch.mean(torch.diag(h))
    h += damp * torch.eye(cols, dtype=h.dtype)
    # The upper Cholesky factor of H^-1: row i holds what the OBS step for column i needs.
    hinv = torch.cholesky_inverse(torch.linalg.cholesky(h))
    hinv = torch.linalg.cholesky(hinv, upper=True)
    del h
    hinv32 = hinv.float()
    mask = torch.zeros(rows, cols, dtype=torch.bool)
    total = rows * cols - round(rows * cols * 0.5)
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        count = i2 - i1
        w1 = w[:, i1:i2].double()
        err1 = torch.zeros(rows, count, dtype=torch.float64)
        hinv1 = hinv[i1:i2, i1:i2]
        # OBS saliency w^2 / [H^-1]_qq^2 over the block; prune this block's share of the total.
        score = w1 ** 2 / torch.diag(hinv1).reshape(1, -1) ** 2
        share = round(total * i2 / cols) - round(total * i1 / cols)
        m1 = torch.zeros_like(score, dtype=torch.bool)
        if share > 0:
            idx = torch.topk(score.flatten(), share, largest=False).indices
            m1.view(-1)[idx] = True
        for i in range(count):
            wcol = w1[:, i]
            d = hinv1[i, i]
            q = wcol.clone()
            q[m1[:, i]] = 0
            e = (wcol - q) / d
            w1[:, i:] -= e.unsqueeze(1) @ hinv1[i, i:].unsqueeze(0)
            w1[:, i] = q
            err1[:, i] = e
        w[:, i1:i2] = w1.float()
        mask[:, i1:i2] = m1
        if i2 < cols:
            w[:, i2:] -= err1.float() @ hinv32[i1:i2, i2:]
    w[mask] = 0
    return t0, t1, time.perf_counter()


def main():
    method, folder, size, tokens, blocksize, percdamp, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
    torch.set_num_threads(threads)
    w = torch.from_file(f'{folder}/w.bin', size=size * size, dtype=torch.float32).reshape(size, size).clone()
    x = torch.from_file(f'{folder}/x.bin', size=tokens * size, dtype=torch.float32).reshape(tokens, size).clone()
    ours = torch.from_file(f'{folder}/ours.bin', size=size * size, dtype=torch.float32).reshape(size, size).clone()
    base = rss_bytes()

    if method == 'wanda':
        t0, t1, t2 = wanda(w, x)
    else:
        t0, t1, t2 = sparsegpt(w, x, tokens, blocksize, percdamp)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    ours_kept = ours != 0
    theirs_kept = w != 0
    agree = (ours_kept == theirs_kept).double().mean().item()
    diff = (ours - w).abs().max().item()
    scale = w.abs().max().item()
    print(json.dumps({
        'torch': torch.__version__,
        'threads': torch.get_num_threads(),
        'statsS': t1 - t0,
        'pruneS': t2 - t1,
        'totalS': t2 - t0,
        'peakRssDelta': peak - base,
        'maskAgreement': agree,
        'maxWeightDiff': diff,
        'weightScale': scale,
    }))


main()
