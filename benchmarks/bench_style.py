"""Measure the lesson's style transfer step against a straightforward implementation of the same maths.

Both run the lesson's exact setup on a VGG16 trunk with random weights (speed does not depend on the
weights): a 512x512 PixelGenerator, VincentStyleLossToTarget(size=512, style_layers=[3, 6, 9, 11]),
ContentLossToTarget with its defaults, AdamW(lr=0.05). The straightforward version gives each loss its
own copy of the network, recomputes the target's statistics from the target image at every step, and
redoes every eigendecomposition at every step. It is run twice: with the copied network frozen, and
with its parameters left trainable, as `torchvision.models.vgg16().features` comes, so that their
gradients are computed and thrown away.

Each variant runs in its own subprocess so that its peak memory (maximum resident set size) is its
own. The script prints seconds per step and the achieved GFLOP/s, with FLOPs counted by torch's
FlopCounterMode, beside a float32 matrix-multiply peak measured in the same run. It also prints the
resident memory before the timed steps and its peak increase during them, sampled every 5 ms. Last come
the loss values of each variant at step 2, which must agree, and the speed-up ratios.

    python benchmarks/bench_style.py [--steps 3] [--size 512]
"""
import argparse
import copy
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def matmul_peak_gflops(n: int = 2048, repeats: int = 10) -> float:
    "Measure float32 matrix-multiply throughput, the practical compute peak of this machine."
    import torch
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm up the BLAS threads
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


def lesson_images(size: int):
    from tglcourse.utils import load_image_pil, pil_to_tensor
    content = pil_to_tensor(load_image_pil(ROOT / "images" / "chelsea.jpg", size=(size, size)))
    style = pil_to_tensor(load_image_pil(ROOT / "images" / "swirling_strokes.jpg", size=(size, size)))
    return content, style


def random_vgg16_backbone():
    import torch
    import torchvision
    from tglcourse.backbones import _vgg16_backbone
    torch.manual_seed(0)
    return _vgg16_backbone(torchvision.models.vgg16(weights=None), "random weights (benchmark)")


class StraightforwardVincentLoss:
    "The W2 style loss written plainly: own network, target statistics and eigendecompositions every call."
    def __init__(self, backbone, target, layers, trainable):
        import torch
        self.trunk = copy.deepcopy(backbone.features).requires_grad_(trainable)
        self.mean, self.std = backbone.mean.clone(), backbone.std.clone()
        self.target, self.layers = target, layers

    def features(self, x):
        h, out = (x - self.mean) / self.std, []
        for i, layer in enumerate(self.trunk[: max(self.layers) + 1]):
            h = layer(h)
            if i in self.layers:
                out.append(h)
        return out

    @staticmethod
    def moments(f):
        points = f.flatten(2).transpose(1, 2).double()
        mean = points.mean(1)
        centred = points - mean[:, None]
        return mean, centred.transpose(1, 2) @ centred / points.shape[1]

    def __call__(self, x):
        import torch
        with torch.no_grad():
            target_features = self.features(self.target)
        total = 0
        for f, t in zip(self.features(x), target_features):
            mean_x, cov_x = self.moments(f)
            mean_t, cov_t = self.moments(t)
            values, vectors = torch.linalg.eigh(cov_t[0])
            root_t = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
            middle = root_t @ cov_x[0] @ root_t
            cross = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
            w2 = (mean_x - mean_t).pow(2).sum() + cov_x[0].trace() + cov_t[0].trace() - 2 * cross
            total = total + w2.float()
        return total


class StraightforwardContentLoss(StraightforwardVincentLoss):
    "The content loss written plainly: own network, target features recomputed every call."
    def __call__(self, x):
        import torch
        with torch.no_grad():
            target_features = self.features(self.target)
        return sum(torch.nn.functional.mse_loss(f, t) for f, t in zip(self.features(x), target_features))


def run_variant(name: str, steps: int, size: int) -> dict:
    "Time `steps` optimisation steps of one variant after one warm-up step; runs inside a subprocess."
    import psutil
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from tglcourse.generation_utils import ContentLossToTarget, PixelGenerator, VincentStyleLossToTarget
    from tglcourse.backbones import share_features

    backbone = random_vgg16_backbone()
    content, style = lesson_images(size)
    gen = PixelGenerator(size, init_image=content)
    opt = torch.optim.AdamW(gen.parameters(), lr=0.05, weight_decay=1e-6)
    if name == "tglcourse":
        losses = [VincentStyleLossToTarget(style, size=size, style_layers=[3, 6, 9, 11], backbone=backbone),
                  ContentLossToTarget(content, backbone=backbone)]
        context = share_features
    else:
        trainable = name == "straightforward, trainable copies"
        content_layers = backbone.default_content_layers
        losses = [StraightforwardVincentLoss(backbone, style, [3, 6, 9, 11], trainable),
                  StraightforwardContentLoss(backbone, content, content_layers, trainable)]
        context = __import__("contextlib").nullcontext
    # Both variants keep the loaded VGG16 alive, because a user loads it once either way. The
    # straightforward losses add their own copies of its trunk on top.

    def step():
        with context():
            out = gen()
            values = [f(out) for f in losses]
            total = sum(values)
            opt.zero_grad(set_to_none=True)
            total.backward()
        opt.step()
        return [float(v) for v in values]

    with FlopCounterMode(display=False) as counter:
        step()  # also the warm-up step. Its content loss is 0 because the image starts as the content image.
    flops = counter.get_total_flops()
    process = psutil.Process()
    rss_before, peak = process.memory_info().rss, [0]
    sampling = threading.Event()

    def sample_rss():
        while not sampling.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample_rss)
    sampler.start()
    start = time.perf_counter()
    step_values = [step() for _ in range(steps)]
    seconds = (time.perf_counter() - start) / steps
    sampling.set()
    sampler.join()
    return {"name": name, "seconds_per_step": seconds, "gflop_per_step": flops / 1e9,
            "second_step_losses": step_values[0],
            "step_memory_mib": (peak[0] - rss_before) / 2 ** 20, "rss_before_steps_mib": rss_before / 2 ** 20}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant, after one warm-up step")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # set when the script runs itself in a subprocess
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.steps, args.size)))
        return

    import torch
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, size {args.size}, {args.steps} timed steps")
    peak = matmul_peak_gflops()
    print(f"float32 matmul peak measured now: {peak:.1f} GFLOP/s")
    results = []
    for variant in ("tglcourse", "straightforward, frozen copies", "straightforward, trainable copies"):
        out = subprocess.run([sys.executable, __file__, "--variant", variant, "--steps", str(args.steps),
                              "--size", str(args.size)], capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"\n{'variant':36} {'s/step':>8} {'GFLOP/step':>11} {'GFLOP/s':>8} {'% of peak':>9} "
          f"{'RSS before MiB':>15} {'step peak +MiB':>15}")
    for r in results:
        rate = r["gflop_per_step"] / r["seconds_per_step"]
        print(f"{r['name']:36} {r['seconds_per_step']:8.2f} {r['gflop_per_step']:11.1f} {rate:8.1f} "
              f"{100 * rate / peak:8.0f}% {r['rss_before_steps_mib']:15.0f} {r['step_memory_mib']:15.0f}")
    ours = results[0]
    print("\nloss values at step 2 (Vincent, content):")
    for r in results:
        print(f"  {r['name']:36} {r['second_step_losses'][0]:.6g}  {r['second_step_losses'][1]:.6g}")
    agree = all(abs(a - b) <= 1e-4 * max(1.0, abs(b)) for r in results[1:]
                for a, b in zip(r["second_step_losses"], ours["second_step_losses"]))
    print(f"  losses agree to 1e-4 relative: {agree}")
    print("\nspeed-up of tglcourse per step:")
    for r in results[1:]:
        print(f"  against {r['name']:36} {r['seconds_per_step'] / ours['seconds_per_step']:.2f}x")


if __name__ == "__main__":
    main()
