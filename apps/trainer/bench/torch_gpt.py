#!/usr/bin/env python3
"""The trainer's GPT (apps/trainer/src/model/gpt.ts) and its training step in PyTorch, for
train.bench.mjs to time side by side with the tfjs backends.

Same model: token + learned position embeddings, pre-norm blocks of causal multi-head attention
and a tanh-GELU MLP, final layer norm, output tied to the token embedding; parameters carry the
trainer's GPT-2 names with nn.Linear's [out, in] layout, so the trainer's initial weights load
with load_state_dict(strict=True). Same step: mean next-token cross-entropy, backward, global-norm
clipping, Adam (betas 0.9/0.95, eps 1e-8), float32.

Standalone:  python3 torch_gpt.py --d 256 --layers 4 --heads 4 --ctx 128 --batch 16 --steps 5 --reps 3
             prints one JSON object (parameter count, initial loss, seconds per repetition, tokens/s).
--serve:     prints a JSON line describing the model, then answers each stdin line {"steps": k}
             with {"seconds": s, "losses": [...]} after running k steps; EOF ends it.
"""

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, d, heads, ctx):
        super().__init__()
        self.heads = heads
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        mask = torch.triu(torch.full((ctx, ctx), -1e9), diagonal=1)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x):
        b, t, d = x.shape
        hd = d // self.heads
        # [q | k | v] columns, each split into heads: [B,T,3,H,hd] -> [3,B,H,T,hd]
        q, k, v = self.c_attn(x).view(b, t, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        scores = (q * (1.0 / math.sqrt(hd))) @ k.transpose(-1, -2) + self.mask[:t, :t]
        ctx = torch.softmax(scores, dim=-1) @ v
        return self.c_proj(ctx.transpose(1, 2).reshape(b, t, d))


class Mlp(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.c_fc = nn.Linear(d, hidden)
        self.c_proj = nn.Linear(hidden, d)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, d, heads, ctx, hidden):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.attn = Attention(d, heads, ctx)
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
        self.mlp = Mlp(d, hidden)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Gpt(nn.Module):
    def __init__(self, vocab, d, layers, heads, ctx, mlp_ratio):
        super().__init__()
        if d % heads != 0:
            raise ValueError(f"--d ({d}) must be a multiple of --heads ({heads})")
        hidden = int(mlp_ratio * d)
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(ctx, d)
        self.h = nn.ModuleList([Block(d, heads, ctx, hidden) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d, eps=1e-5)
        self.register_buffer("pos", torch.arange(ctx), persistent=False)
        self._init(d, layers, hidden)

    @torch.no_grad()
    def _init(self, d, layers, hidden):
        # the trainer's initializers (gpt.ts gptParamSpecs), used when no weights are loaded
        depth = math.sqrt(2 * layers)
        self.wte.weight.normal_(0, 0.02)
        ctx = self.wpe.weight.shape[0]
        i = torch.arange(d)
        freq = torch.pow(10000.0, -(2 * (i // 2)).double() / d)
        angle = torch.arange(ctx).double()[:, None] * freq[None, :]
        sinus = torch.where(i % 2 == 0, torch.sin(angle), torch.cos(angle))
        self.wpe.weight.copy_((0.02 * math.sqrt(2) * sinus).float())
        for blk in self.h:
            blk.attn.c_attn.weight.normal_(0, 1 / math.sqrt(d))
            blk.attn.c_proj.weight.normal_(0, 1 / math.sqrt(d) / depth)
            blk.mlp.c_fc.weight.normal_(0, 1 / math.sqrt(d))
            blk.mlp.c_proj.weight.normal_(0, 1 / math.sqrt(hidden) / depth)
            for lin in (blk.attn.c_attn, blk.attn.c_proj, blk.mlp.c_fc, blk.mlp.c_proj):
                lin.bias.zero_()

    def forward(self, ids):
        t = ids.shape[1]
        x = self.wte(ids) + self.wpe(self.pos[:t])
        for blk in self.h:
            x = blk(x)
        # tied output layer: logits = h wteᵀ
        return self.ln_f(x) @ self.wte.weight.t()


def loss_of(model, ids, targets):
    logits = model(ids)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def read_int32(path):
    with open(path, "rb") as f:
        raw = bytearray(f.read())
    return torch.frombuffer(raw, dtype=torch.int32).long()


def load_weights(model, manifest_path):
    """Loads the trainer's parameters: a JSON manifest [{name, shape}] and a raw float32 file beside it."""
    with open(manifest_path) as f:
        manifest = json.load(f)
    with open(manifest["file"], "rb") as f:
        flat = torch.frombuffer(bytearray(f.read()), dtype=torch.float32)
    state, offset = {}, 0
    for p in manifest["params"]:
        n = math.prod(p["shape"])
        state[p["name"]] = flat[offset : offset + n].view(*p["shape"]).clone()
        offset += n
    if offset != flat.numel():
        raise ValueError(f"{manifest['file']}: {flat.numel()} floats, manifest describes {offset}")
    # strict: every name and shape must match the trainer's, both ways
    model.load_state_dict(state, strict=True)


def blas_libraries():
    """The BLAS libraries mapped into this process (OpenBLAS vs the reference fallback)."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                if "blas" in os.path.basename(path).lower() or "openblas" in path.lower():
                    libs.add(path)
    except OSError:
        pass
    return sorted(libs)


def gemm_gflops(n=512, reps=5):
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab", type=int, default=63)
    ap.add_argument("--d", type=int, default=32)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ctx", type=int, default=32)
    ap.add_argument("--mlp-ratio", type=float, default=4)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weights", help="JSON manifest of the trainer's initial parameters (default: own init)")
    ap.add_argument("--data", help="int32 token stream to sample windows from (default: random tokens)")
    ap.add_argument("--check", help="int32 file: one batch of ids then its targets, [2, batch, ctx]; reports loss and grad norm on it")
    ap.add_argument("--steps", type=int, default=10, help="steps per timed repetition (standalone)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (standalone)")
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions (standalone)")
    ap.add_argument("--serve", action="store_true", help="answer {\"steps\": k} lines on stdin")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = Gpt(args.vocab, args.d, args.layers, args.heads, args.ctx, args.mlp_ratio)
    if args.weights:
        load_weights(model, args.weights)
    data = read_int32(args.data) if args.data else torch.randint(0, args.vocab, (100_000,))
    if int(data.max()) >= args.vocab or int(data.min()) < 0:
        raise ValueError(f"token ids must be in [0, {args.vocab}), data has [{int(data.min())}, {int(data.max())}]")
    if data.numel() < args.ctx + 1:
        raise ValueError(f"need at least {args.ctx + 1} tokens, data has {data.numel()}")

    info = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas": blas_libraries(),
        "params": sum(p.numel() for p in model.parameters()),
        "lnVocab": math.log(args.vocab),
    }
    if args.check:
        chk = read_int32(args.check).view(2, -1, args.ctx)
        loss = loss_of(model, chk[0], chk[1])
        loss.backward()
        norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in model.parameters()))
        model.zero_grad(set_to_none=True)
        info["checkLoss"] = loss.item()
        info["checkGradNorm"] = norm.item()
    info["gemm512Gflops"] = gemm_gflops()

    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    gen = torch.Generator().manual_seed(args.seed)
    offs = torch.arange(args.ctx)

    def step():
        starts = torch.randint(0, data.numel() - args.ctx, (args.batch, 1), generator=gen)
        ids = data[starts + offs]
        targets = data[starts + offs + 1]
        loss = loss_of(model, ids, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        return loss.item()

    def run(k):
        t0 = time.perf_counter()
        losses = [step() for _ in range(k)]
        return time.perf_counter() - t0, losses

    if args.serve:
        print(json.dumps(info), flush=True)
        for line in sys.stdin:
            if not line.strip():
                continue
            k = int(json.loads(line)["steps"])
            seconds, losses = run(k)
            print(json.dumps({"seconds": seconds, "losses": losses}), flush=True)
        return

    run(args.warmup)
    times = sorted(run(args.steps)[0] for _ in range(args.reps))
    median = times[len(times) // 2]
    info.update(
        {
            "stepsPerRep": args.steps,
            "seconds": times,
            "medianStepMs": 1e3 * median / args.steps,
            "tokensPerSec": args.batch * args.ctx * args.steps / median,
        }
    )
    print(json.dumps(info))


if __name__ == "__main__":
    main()
