#!/usr/bin/env python3
"""Models dice-core's soft-pass kernels on other microarchitectures with llvm-mca.

Compiles dice-core to assembly (for x86-64, and for aarch64 with `--target
aarch64-unknown-linux-gnu`), takes the hottest loop of each kernel (the loop with the most vector
adds and fused multiply-adds: one per form, linear and squared), and runs llvm-mca on it for each
CPU, beside the dot product the benches use as their baseline (8 independent accumulators, one
load and one FMA per vector, as the bench's `baseline::dot` compiles). Prints modelled cycles per
64 bytes of each input (16 f32 or 8 f64 elements: 128 bytes read) and the ratio dot/kernel (1.0:
as fast as the dot product; the goal of the x86 kernels is 0.9).

    python3 scripts/mca.py [--llvm-mca llvm-mca-19] [--cpus znver5,sapphirerapids]
                           [--arm-cpus neoverse-v2,cortex-a78]

The model only says how fast the core can run the loop with its data in L1; a pass over
memory is bounded by bandwidth instead. LLVM 19's znver5 model schedules 512-bit operations
like Zen 4 (two 256-bit halves), so it is pessimistic for AVX-512 on Zen 5. No ARM hardware is
here: the aarch64 figures are the model's only. On aarch64 the portable soft sums (what ran there
before the NEON kernels) are modelled too, by their inner row loop only, without the per-block
fold of 16 lanes into f64 that runs after it: optimistic for them.
"""

import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Per architecture: the rustc target (None: the host), the kernels' symbol pattern (group 2 is
# the stem), the branch and end-of-path patterns of its assembly, what counts as a vector
# add/FMA, and the label of each stem.
ARCHS = {
    "x86_64": dict(
        target=None,
        symbol=r"^(_ZN9dice_core7kernels3x86\d+(sums_f32_(?:512|256))17h\w+E):",
        branch=r"\s+j\w+\s+(\.LBB\w+)",
        end=r"\s+(jmp|ret)\b",
        fma=r"vfmadd",
        add=r"vaddps",
        other=r"$^",
        own=r"",
        own_portable=r"",
        labels={"sums_f32_512": "AVX-512 soft sums f32", "sums_f32_256": "AVX2 soft sums f32"},
    ),
    "aarch64": dict(
        target="aarch64-unknown-linux-gnu",
        # The NEON kernels, and the portable soft sums they replace (its f32 and f64 copies).
        symbol=r"^(_ZN9dice_core7kernels(?:4neon\d+|8portable9)"
        r"(soft_sums_f32|soft_sums_f64|threshold_counts_f32|soft_sums)17h\w+E):",
        branch=r"\s+(?:b\.\w+|b|cbn?z\s+\w+,|tbn?z\s+\w+,\s*#\d+,)\s+(\.LBB\w+)",
        end=r"\s+(b|ret)(\s|$)",
        fma=r"fmla\s|fmul\s+v",
        add=r"fadd\s+v",
        other=r"fcmge\s|sub\s+v",
        # The NEON kernels' validation (the portable loops, also vectorized, compare instead).
        own=r"umax\s+v|fmin\s+v|fmax\s+v",
        own_portable=r"fcmge\s",
        labels={
            "soft_sums_f32": "NEON soft sums f32",
            "soft_sums_f64": "NEON soft sums f64",
            "threshold_counts_f32": "NEON threshold counts f32",
            "soft_sums.4s": "portable soft sums f32",
            "soft_sums.2d": "portable soft sums f64",
        },
    ),
}

# x86's kernels are not unrolled further: elements per loop iteration, per stem.
X86_ELEMENTS = {"sums_f32_512": 256, "sums_f32_256": 128}


def dot_loop(arch, width=512):
    """The baseline's inner loop: 8 accumulators, one load and one FMA per vector. Returns the
    assembly and the f32 elements of each input per iteration."""
    if arch == "aarch64":
        body = []
        for k in range(0, 8, 2):
            body.append(f"ldp\tq{16 + k}, q{17 + k}, [x0, #{16 * k}]")
            body.append(f"ldp\tq{24 + k}, q{25 + k}, [x1, #{16 * k}]")
        for k in range(8):
            body.append(f"fmla\tv{k}.4s, v{16 + k}.4s, v{24 + k}.4s")
        body += ["add\tx0, x0, #128", "add\tx1, x1, #128", "subs\tx2, x2, #32", "b.ne\t.Ldot"]
        return ".Ldot:\n\t" + "\n\t".join(body) + "\n", 32
    reg, step = ("zmm", 64) if width == 512 else ("ymm", 32)
    body = []
    for k in range(8):
        body.append(f"vmovups\t{step * k}(%rdi,%rax,4), %{reg}{16 + k}")
        body.append(f"vfmadd231ps\t{step * k}(%rsi,%rax,4), %{reg}{16 + k}, %{reg}{k}")
    per = 8 * step // 4
    body += [f"addq\t${per}, %rax", "cmpq\t%rdx, %rax", "jb\t.Ldot"]
    return ".Ldot:\n\t" + "\n\t".join(body) + "\n", per


def loaded_bytes(seg):
    """Bytes an aarch64 loop iteration loads from its inputs (stack reloads left out)."""
    total = 0
    for x in seg:
        if "[sp" in x or "[x29" in x:
            continue
        if re.match(r"\s+ldp\s+q", x):
            total += 32
        elif re.match(r"\s+ldr\s+q", x):
            total += 16
        else:
            m = re.match(r"\s+ld1\s+\{([^}]*)\}", x)
            if m:
                total += 16 * (m.group(1).count(",") + 1 if "-" not in m.group(1) else 4)
    return total


def hottest_loops(asm, a):
    """[(stem, form, instruction lines)]: for each kernel and form (linear, squared, counts),
    its hottest loop."""
    lines = asm.split("\n")
    funcs, cur = {}, None
    for i, line in enumerate(lines):
        m = re.match(a["symbol"], line)
        if m:
            cur = m.group(1)
            funcs[cur] = [i, None, m.group(2)]
        elif cur and line.startswith(".Lfunc_end"):
            funcs[cur][1] = i
            cur = None
    out = []
    for name, (lo, hi, stem) in funcs.items():
        body = lines[lo:hi]
        labels = {l.rstrip(":"): j for j, l in enumerate(body) if re.match(r"^\.LBB\w+:", l)}
        best = {}
        for j, line in enumerate(body):
            m = re.match(a["branch"], line)
            if m and m.group(1) in labels and labels[m.group(1)] < j:
                seg = drop_inner_loops(body[labels[m.group(1)] : j + 1], a)
                seg = [x for x in seg if not x.strip().startswith((".", "#", "//"))]
                fma = sum(1 for x in seg if re.search(a["fma"], x))
                add = sum(1 for x in seg if re.search(a["add"], x))
                other = sum(1 for x in seg if re.search(a["other"], x))
                own = a["own_portable"] if stem == "soft_sums" else a["own"]
                if not any(re.search(own, x) for x in seg):
                    continue
                if "counts" in stem:
                    form = "counts"
                elif fma == 0:
                    continue
                else:
                    # Linear: one product (p·g) to two sums per element; squared: three.
                    form = "squared" if fma >= add else "linear"
                score = fma + add + other
                if form not in best or score > best[form][0]:
                    best[form] = (score, seg)
        for form, (_, seg) in best.items():
            if stem == "soft_sums":  # the portable generic: tell its f32 and f64 copies apart
                f64 = any(".2d" in x for x in seg if re.search(a["fma"], x))
                stem = "soft_sums.2d" if f64 else "soft_sums.4s"
            out.append((stem, form, seg))
    return out


def drop_inner_loops(seg, a):
    """The outer loop without the loops nested in it (the cold search for a bad element,
    which runs only when a block fails validation) nor the straight-line code that only they
    reach (between an unconditional jump and the next label)."""
    labels = {l.rstrip(":"): j for j, l in enumerate(seg) if re.match(r"^\.LBB\w+:", l)}
    keep = [True] * len(seg)
    for j, line in enumerate(seg[:-1]):
        m = re.match(a["branch"], line)
        if m and m.group(1) in labels and 0 < labels[m.group(1)] < j:
            for k in range(labels[m.group(1)], j + 1):
                keep[k] = False
    dead = False
    for j, line in enumerate(seg):
        if re.match(r"^\.LBB\w+:", line):
            dead = False
        elif dead:
            keep[j] = False
        if re.match(a["end"], line) and j < len(seg) - 1:
            dead = True
    return [x for x, k in zip(seg, keep) if k]


def cycles(mca, cpu, text, triple, iterations=400):
    with tempfile.NamedTemporaryFile("w", suffix=".s", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        r = subprocess.run(
            [mca, f"-mtriple={triple}", f"-mcpu={cpu}", f"-iterations={iterations}", path],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(path)
    m = re.search(r"Total Cycles:\s+(\d+)", r.stdout)
    return int(m.group(1)) / iterations


def compile_asm(target):
    """dice-core's release assembly for `target` (None: the host)."""
    extra = ["--target", target] if target else []
    subprocess.run(
        ["cargo", "rustc", "-q", "-p", "dice-core", "--release", "--features", "std", *extra,
         "--", "--emit", "asm", "-C", "codegen-units=1"],
        cwd=ROOT,
        check=True,
    )
    deps = os.path.join(ROOT, "target", target or "", "release", "deps", "dice_core-*.s")
    return open(sorted(glob.glob(deps), key=os.path.getmtime)[-1]).read()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--llvm-mca", default="llvm-mca-19")
    ap.add_argument("--cpus", default="znver5,sapphirerapids", help="x86-64 CPUs ('' for none)")
    ap.add_argument("--arm-cpus", default="neoverse-v2,cortex-a78", help="aarch64 CPUs ('' for none)")
    args = ap.parse_args()
    print("modelled cycles per 64 bytes of each input (16 f32 or 8 f64 elements), data in L1;")
    print("ratio = dot product / kernel (the kernel's share of the dot product's throughput)")
    for arch, cpus, triple in (("x86_64", args.cpus, "x86_64"), ("aarch64", args.arm_cpus, "aarch64")):
        cpus = [c for c in cpus.split(",") if c]
        if not cpus:
            continue
        a = ARCHS[arch]
        loops = hottest_loops(compile_asm(a["target"]), a)
        for cpu in cpus:
            widths = (512, 256) if arch == "x86_64" else (128,)
            dots = {}
            for width in widths:
                text, n = dot_loop(arch, width)
                dots[width] = cycles(args.llvm_mca, cpu, text, triple) / (n / 16)
                name = {512: "AVX-512", 256: "AVX2", 128: "NEON"}[width]
                print(f"  {cpu:15} dot product {name:7}              {dots[width]:6.2f}")
            for stem, form, seg in sorted(loops):
                if arch == "x86_64":
                    per64 = X86_ELEMENTS[stem] / 16
                    dot = dots[512 if "512" in stem else 256]
                else:
                    per64 = loaded_bytes(seg) / 2 / 64
                    dot = dots[128]
                c = cycles(args.llvm_mca, cpu, "\n".join(seg) + "\n", triple) / per64
                print(f"  {cpu:15} {a['labels'][stem]:26} {form:8} {c:6.2f}   ratio {dot / c:4.2f}")


if __name__ == "__main__":
    sys.exit(main())
