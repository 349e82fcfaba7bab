#!/usr/bin/env python3
"""Training parity of the engine's CPU backend with PyTorch (issue 11), one config family per run.

    test_parity.py --binary build/cgan_gpu --config configs/mnist_mlp.json --workdir DIR [--set K=V]...

`cgan_gpu trace` trains --steps iterations on the CPU backend and writes what each one drew (real
batch, labels, condition vectors, noise, mismatched pairs, dropout masks) and its losses, and for the
first --full iterations every gradient and every weight and batch-norm statistic after the Adam
updates. This script builds the same generator and discriminator with tools/cgan_torch.py from the
engine's initial weights and replays the iterations in PyTorch, in float64, with the same inputs
(torch.optim.Adam, BCE-with-logits, squared or hinge loss (cgan_torch.loss_term), batch norm in training
mode, the engine's dropout masks, and in the fully checked iterations the engine's side of a ReLU /
LeakyReLU kink for the values within rounding of it: cgan_torch.kink_side). It checks

  * iterations 1..--full, each stage from the engine's own state: every loss, every gradient
    (D's after its D step, G's after its G step), every weight after Adam (against
    torch.optim.Adam fed the engine's gradients) and every batch-norm statistic and spectral-norm
    vector u, v (torch.nn.utils.spectral_norm: one power iteration per training forward),
    err = ||engine - torch|| / ||torch|| <= 1e-5;
  * in those iterations, every ReLU / LeakyReLU value further than 1e-5 rms from the kink on the
    side float64 puts it (a defect, never rounding: check_kinks);
  * with train.augment, every D input of every iteration (real, fake, the mismatched pair, G's fake)
    through DiffAugment from the engine's traced draws, which the trace must hold (an engine that
    ignored train.augment traces none), the fully checked iterations' against the engine's augmented
    images; the count of augmented inputs replayed and compared must be the expected one;
  * with train.ema, the engine's average of G after each of those iterations against the same average
    taken in PyTorch of the engine's G (copies up to train.ema.start, then decay avg + (1 - decay) w),
    with a decay other than 0.5 over at least two averaging updates (else decay and 1 - decay, or an
    average that restarts each step, could not show);
  * iterations 1..--steps with PyTorch training on from its own weights: the loss trajectory,
    |engine - torch| / max(|torch|, 1e-3) <= --traj-tol.

The reference runs in float64, so the measured error is the engine's float32 rounding (about
1e-7..2e-6 of a tensor's norm): 1e-5 leaves room for another BLAS's summation order while a wrong
formula (a 0.1 % wrong leaky slope gives 2e-4..5e-4) fails. docs/DECISIONS.md explains the two
exceptions (biases before batch norm, the trajectory's looser bound). Prints the largest errors;
exits 1 when any bound is exceeded, keeping DIR for a look.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import cgan_torch  # noqa: E402

TOL = 1e-5
DT = torch.float64  # the reference's precision (--dtype)


def rel_err(a, b):
    a, b = a.double().reshape(-1), b.double().reshape(-1)
    nb = b.norm().item()
    d = (a - b).norm().item()
    return d / nb if nb > 0 else d


class Checker:
    def __init__(self):
        self.worst = {}  # category -> (err, name)
        self.failures = []
        self.augmented = {"replayed": 0, "compared": 0}  # train.augment: D inputs augmented / checked
        self.kinks = {"ambiguous": 0, "flipped": 0, "wrong": 0}  # check_kinks: the full replays' totals

    def check(self, category, name, engine, ref, tol=TOL, abs_err=False):
        e = (engine - ref).abs().max().item() if abs_err else rel_err(engine, ref)
        if category not in self.worst or e > self.worst[category][0]:
            self.worst[category] = (e, name)
        if not e <= tol:
            self.failures.append(f"{name}: relative error {e:.3e} > {tol:g}")
        return e


def augments(cfg):
    """Whether the config (as the engine stored it) augments D's inputs (train.augment)."""
    return bool([p for p in cfg["train"].get("augment", {"policy": ""})["policy"].split(",") if p])


def augmented_inputs_per_iteration(cfg):
    """D's inputs per iteration that train.augment passes through DiffAugment: real and fake per D
    step, plus the mismatched pair with a three-term loss, plus the G step's fake."""
    three = cgan_torch.loss_kinds(cfg["loss"])[2] is not None
    return int(cfg["train"]["d_steps"]) * (3 if three else 2) + 1


def loss_fn(kind, out, target, weight):
    return cgan_torch.loss_term(kind, out, target, weight)


def masks(tr, full, prefix):
    """The engine's decisions in one forward, by layer index: dropout keep masks and, when `full`
    (the replay from the engine's own state; traced in fully traced iterations), ReLU / LeakyReLU
    outputs (cgan_torch.kink_side)."""
    m = {}
    for k, v in tr.items():
        for kind in ("mask.", "side.") if full else ("mask.",):
            if k.startswith(prefix + kind):
                m[int(k[len(prefix) + len(kind):])] = v.to(DT)
    return m


def check_kinks(chk, nets):  # nets: (name, CganNet) pairs
    """The activations' kink decisions of the forwards since the last call (cgan_torch.kink_side):
    a value the engine put on the other side of a ReLU / LeakyReLU kink than float64 does, further
    from it than rounding reaches, is a defect; those within rounding are counted."""
    for net_name, net in nets:
        for log in net.kink_log:
            for key in ("ambiguous", "flipped", "wrong"):
                chk.kinks[key] += log[key]
            if log["wrong"]:
                chk.failures.append(f"{net_name} layer {log['layer']}: {log['wrong']} values on the "
                                    f"other side of the activation's kink than float64 puts them, beyond rounding "
                                    f"(|x| > {cgan_torch.KINK_BAND:g} rms)")
        net.kink_log.clear()


def net_tensors(tr, prefix, spec):
    return cgan_torch.to_torch_names(cgan_torch.split_prefix(tr, prefix), spec)


def zero_grad_biases(spec):
    """Biases whose exact gradient is 0: a linear or conv2d directly followed by batch norm (the
    norm removes any per-feature / per-channel shift). Their computed gradients are rounding noise
    in any precision, so they are checked against the network's whole gradient instead."""
    kinds = [cgan_torch._layer(e)[0] for e in spec["layers"]]
    return {f"{i}.bias" for i in range(len(kinds) - 1) if kinds[i] in ("linear", "conv2d")
            and kinds[i + 1] == "batchnorm"}


def check_grads(chk, cat, prefix, net, spec, engine):
    """Each parameter's gradient against autograd's, relative to its norm."""
    zero = zero_grad_biases(spec)
    total = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in net.parameters())).item()
    for name, prm in net.named_parameters():
        if name in zero:  # both must be ~0 against the whole gradient
            e = engine[name].double().norm().item() / total
            chk.check(cat + " (exactly 0: bias before BN)", prefix + name, torch.tensor(e), torch.tensor(0.0),
                      abs_err=True)
        else:
            chk.check(cat, prefix + name, engine[name], prm.grad)


class ShadowAdam:
    """torch.optim.Adam stepping a copy of the engine's weights with the engine's own gradients.

    The engine's weights after each Adam step are compared with it rather than with the reference
    model's own update: Adam's early steps move each weight by about lr * sign(g), so the rounding of
    a near-zero gradient entry would otherwise become an lr-sized difference; the gradients are
    compared on their own (check_grads). Valid while every iteration so far was traced in full."""

    def __init__(self, net, opt_cfg):
        self.p = {k: v.detach().clone().requires_grad_(True) for k, v in net.named_parameters()}
        self.opt = torch.optim.Adam(list(self.p.values()), lr=opt_cfg["lr"], betas=(opt_cfg["beta1"], opt_cfg["beta2"]),
                                    eps=opt_cfg["eps"])

    def check(self, chk, cat, prefix, engine_grads, engine_after):
        for k, v in self.p.items():
            v.grad = engine_grads[k].to(DT).clone()
        self.opt.step()
        for k, v in self.p.items():
            chk.check(cat, prefix + k, engine_after[k], v.detach())


def load_state(net, sd):
    """Parameters and batch-norm statistics from {state_dict key: tensor} (missing keys kept)."""
    own = net.state_dict()
    net.load_state_dict({k: sd[k].to(own[k].dtype) if k in sd else own[k] for k in own})


def iteration(cfg, shape, G, D, optG, optD, tr, full, chk, shadow):
    """One engine iteration replayed in PyTorch; returns [(name, engine loss, torch loss)].
    full: check every gradient, update and statistic; G and D must then hold the engine's state
    before the iteration, and D takes the engine's weights after each D step (each stage is
    checked from the engine's own inputs, so a difference is never an echo of an earlier one)."""
    lk, lk_g, mismatch = cgan_torch.loss_kinds(cfg["loss"])  # hinge: G's term is -D(G(z)) ("linear")
    three = mismatch is not None
    w = float(cfg["loss"]["d_weight"])
    real_t = float(cfg["loss"].get("real_target", 1.0))  # hinge has none
    g64 = lambda k: tr[k].to(DT) if k in tr else None  # noqa: E731
    lab = lambda k: tr[k].long() if k in tr else None  # noqa: E731
    losses = []

    augmenting = augments(cfg)

    def aug(x, name):
        """train.augment: D's input `name` through DiffAugment with the engine's draws, checked
        against the augmented image the engine traced (in full mode: both from the same state).
        With the config augmenting, the trace must hold the draws and the image (an engine that
        ignored train.augment would write neither); without it, neither may be there."""
        if not augmenting:
            if (name + ".params" in tr or name in tr) and f"{name}: traced, but the config has no train.augment" \
                    not in chk.failures:
                chk.failures.append(f"{name}: traced, but the config has no train.augment")
            return x
        if name + ".params" not in tr or name not in tr:
            msg = f"{name}: train.augment is on but the trace lacks {name}.params or {name}"
            if msg not in chk.failures:  # once per input, not once per iteration
                chk.failures.append(msg)
            return x
        y = cgan_torch.diff_augment(x, tr[name + ".params"], cfg, shape)
        chk.augmented["replayed"] += 1
        if full:
            chk.check("augmented D inputs", name, tr[name], y.detach())
            chk.augmented["compared"] += 1
        return y

    for sub in range(int(cfg["train"]["d_steps"])):
        p = f"d{sub}."
        x_real, y_real, c_real = g64(p + "x_real"), lab(p + "y_real"), g64(p + "cond_real")
        random = (p + "y_fake") in tr
        yf = lab(p + "y_fake") if random else y_real
        cf = g64(p + "cond_fake") if random else c_real
        optD.zero_grad()
        with torch.no_grad():
            fake = G(g64(p + "z"), yf, cf, masks(tr, full, p + "gen."))
        l_r = loss_fn(lk, D(aug(x_real, p + "aug.real"), y_real, c_real, masks(tr, full, p + "real.")), real_t, w)
        l_f = loss_fn(lk, D(aug(fake, p + "aug.fake"), yf, cf, masks(tr, full, p + "fake.")), 0.0, w)
        total = l_r + l_f
        eng = tr[p + "losses"].double()
        losses += [(p + "loss_real", eng[0], l_r), (p + "loss_fake", eng[3], l_f)]
        if three:
            yo, co = lab(p + "y_other"), g64(p + "cond_other")
            if mismatch == "real_other_tags":
                out_m = D(aug(x_real, p + "aug.mis"), yo, co, masks(tr, full, p + "mis."))
            else:
                with torch.no_grad():
                    fake2 = G(g64(p + "z_mis"), yo, co, masks(tr, full, p + "gen_mis."))
                out_m = D(aug(fake2, p + "aug.mis"), y_real, c_real, masks(tr, full, p + "mis."))
            l_m = loss_fn(lk, out_m, 0.0, w)
            total = total + l_m
            losses.append((p + "loss_mis", eng[9], l_m))
        total.backward()
        if full:
            grads = net_tensors(tr, p + "grad.discriminator.", cfg["discriminator"])
            check_grads(chk, "grad D", f"{p}grad D.", D, cfg["discriminator"], grads)
        optD.step()
        if full:
            after = net_tensors(tr, p + "after.discriminator.", cfg["discriminator"])
            shadow["D"].check(chk, "weights D after Adam", f"{p}D.", grads, after)
            load_state(D, after)  # the G step starts from the engine's D, as the next stage's check
    # the generator step
    random = "g.y_fake" in tr
    yf = lab("g.y_fake") if random else y_real
    cf = g64("g.cond_fake") if random else c_real
    optG.zero_grad()
    fake = G(g64("g.z"), yf, cf, masks(tr, full, "g.gen."))
    l_g = loss_fn(lk_g, D(aug(fake, "g.aug.fake"), yf, cf, masks(tr, full, "g.disc.")), 1.0, 1.0)
    l_g.backward()
    losses.append(("g.loss", tr["g.losses"].double()[6], l_g))
    if full:
        grads = net_tensors(tr, "g.grad.generator.", cfg["generator"])
        check_grads(chk, "grad G", "grad G.", G, cfg["generator"], grads)
    optG.step()
    if full:
        after = net_tensors(tr, "after.generator.", cfg["generator"])
        shadow["G"].check(chk, "weights G after Adam", "G.", grads, after)
        for net, key in ((G, "generator"), (D, "discriminator")):  # BN running statistics, SN u and v
            after = net_tensors(tr, f"after.{key}.", cfg[key])
            for name, t in net.named_buffers():
                if not name.endswith("num_batches_tracked"):
                    chk.check("BN stats, SN u/v (end)", f"after {key}.{name}", after[name], t)
    return [(n, e.item(), t.item()) for n, e, t in losses]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--set", action="append", default=[], dest="sets")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--full", type=int, default=2, help="iterations checked tensor by tensor")
    ap.add_argument("--traj-tol", type=float, default=2e-2)
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                    help="the reference's precision (float32: to measure PyTorch's own float32 drift)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    # A failed run keeps its work directory for a look; the next run starts from an empty one (else
    # the engine refuses it: "already holds a run").
    shutil.rmtree(a.workdir, ignore_errors=True)
    t0 = time.time()
    cmd = [a.binary, "trace", "--config", a.config, "--out", a.workdir, "--steps", str(a.steps), "--full", str(a.full),
           "--device", "cpu"]
    for s in a.sets:
        cmd += ["--set", s]
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, CGAN_CPU_THREADS="1"))
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        print("FAIL: cgan_gpu trace failed")
        return 1
    t1 = time.time()
    ck = cgan_torch.load_checkpoint(os.path.join(a.workdir, "init.safetensors"))
    cfg = ck.config
    global DT
    DT = torch.float64 if a.dtype == "float64" else torch.float32
    G, D = ck.generator.to(DT).train(), ck.discriminator.to(DT).train()

    def adam(net, o):
        return torch.optim.Adam(net.parameters(), lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"])

    optG, optD = adam(G, cfg["optim"]["generator"]), adam(D, cfg["optim"]["discriminator"])
    chk = Checker()
    shadow = {"G": ShadowAdam(G, cfg["optim"]["generator"]), "D": ShadowAdam(D, cfg["optim"]["discriminator"])}
    engine_state = {"generator": G.state_dict(), "discriminator": D.state_dict()}  # before iteration 1
    # train.ema: the average of G's weights and batch-norm statistics after each G step, in PyTorch from the
    # engine's G after each fully checked iteration (a copy up to step `start`, then decay avg + (1 - decay) w)
    ema_cfg = cfg["train"].get("ema")
    ema_ref = ({k: v.to(DT).clone() for k, v in engine_state["generator"].items() if not k.endswith("num_batches_tracked")}
               if ema_cfg else None)
    ema_updates = 0  # averaging updates (iterations past train.ema.start) checked against the engine's
    worst_traj = (0.0, "")
    for k in range(1, a.steps + 1):
        tr, _ = cgan_torch.read_safetensors(os.path.join(a.workdir, f"step_{k}.safetensors"))
        if k <= a.full:  # tensor by tensor, from the engine's state before this iteration
            Gc, Dc = (n.to(DT).train() for n in cgan_torch.build_models(cfg, ck.shape))
            load_state(Gc, engine_state["generator"])
            load_state(Dc, engine_state["discriminator"])
            for name, e, t in iteration(cfg, ck.shape, Gc, Dc, adam(Gc, cfg["optim"]["generator"]),
                                        adam(Dc, cfg["optim"]["discriminator"]), tr, True, chk, shadow):
                chk.check(f"loss (iterations 1-{a.full})", f"iteration {k} {name}", torch.tensor(e), torch.tensor(t))
            check_kinks(chk, (("G", Gc), ("D", Dc)))
            engine_state = {key: net_tensors(tr, f"after.{key}.", cfg[key]) for key in ("generator", "discriminator")}
            if ema_cfg:
                d = float(ema_cfg["decay"])
                ema_updates += k > int(ema_cfg["start"])
                eng = net_tensors(tr, "after.generator_ema.", cfg["generator"])
                for name in ema_ref:
                    w = engine_state["generator"][name].to(DT)
                    ema_ref[name] = w.clone() if k <= int(ema_cfg["start"]) else d * ema_ref[name] + (1 - d) * w
                    chk.check("EMA of G (end)", f"iteration {k} generator_ema.{name}", eng[name], ema_ref[name])
        # the loss trajectory: PyTorch trains on from its own weights
        for name, e, t in iteration(cfg, ck.shape, G, D, optG, optD, tr, False, chk, None):
            err = abs(e - t) / max(abs(t), 1e-3)
            if err > worst_traj[0]:
                worst_traj = (err, f"iteration {k} {name} (engine {e:.7g}, torch {t:.7g})")
            if not err <= a.traj_tol:
                chk.failures.append(f"iteration {k} {name}: engine {e:.7g} torch {t:.7g} (error {err:.3e} > "
                                    f"{a.traj_tol:g})")
    # train.ema: the check must be able to tell decay from 1 - decay (decay != 0.5) and see the average
    # carried over more than one update (an average of an average)
    if ema_cfg and not (float(ema_cfg["decay"]) != 0.5 and ema_updates >= 2):
        chk.failures.append(f"train.ema: decay {float(ema_cfg['decay']):.6g} over {ema_updates} averaging updates checked; the "
                            f"check needs decay != 0.5 and at least 2 (raise --full or lower train.ema.start)")
    # train.augment: every D input of every iteration went through DiffAugment, and those of the
    # fully checked iterations were compared with the engine's augmented images
    per_it = augmented_inputs_per_iteration(cfg) if augments(cfg) else 0
    n_full = min(a.full, a.steps)
    want = {"replayed": (a.steps + n_full) * per_it, "compared": n_full * per_it}
    for what, n in want.items():
        if chk.augmented[what] != n:
            chk.failures.append(f"train.augment: {chk.augmented[what]} augmented D inputs {what}, expected {n}")
    t2 = time.time()
    print(f"{cfg['name']}: engine trace {t1 - t0:.2f} s, PyTorch replay {t2 - t1:.2f} s")
    if ema_cfg:
        print(f"  train.ema: decay {float(ema_cfg['decay']):.6g}, {ema_updates} averaging updates checked")
    if per_it:
        print(f"  train.augment: {chk.augmented['compared']} augmented D inputs compared with the engine's, "
              f"{chk.augmented['replayed']} replayed ({per_it} per iteration)")
    if n_full:
        print(f"  activation kinks (iterations 1-{n_full}): {chk.kinks['ambiguous']} values within "
              f"{cgan_torch.KINK_BAND:g} rms of the kink, {chk.kinks['flipped']} of them on the engine's side "
              f"rather than float64's, {chk.kinks['wrong']} on the other side beyond it")
    for cat in sorted(chk.worst):
        e, name = chk.worst[cat]
        print(f"  max relative error, {cat:28s} {e:.3e}  ({name})")
    print(f"  max loss error over {a.steps} iterations {worst_traj[0]:.3e}  ({worst_traj[1]})")
    if chk.failures:
        print(f"FAIL: {len(chk.failures)} comparisons out of bounds:")
        for f in chk.failures[:20]:
            print("  " + f)
        return 1
    print("PASS")
    shutil.rmtree(a.workdir, ignore_errors=True)  # kept on failure, for a look
    return 0


if __name__ == "__main__":
    sys.exit(main())
