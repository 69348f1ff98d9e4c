#!/usr/bin/env python3
"""Models dice-core's soft-sum kernels on other microarchitectures with llvm-mca.

Compiles dice-core to assembly, takes the hottest loop of each f32 soft-sum kernel (the loop
with the most vector adds and fused multiply-adds), and runs llvm-mca on it for each CPU,
beside the dot product the benches use as their baseline (8 independent accumulators, the
same instructions the bench's `baseline::dot` compiles to). Prints modelled cycles per 64
bytes of each input (16 f32 elements: 128 bytes read).

    python3 scripts/mca.py [--llvm-mca llvm-mca-19] [--cpus znver5,sapphirerapids]

The model only says how fast the core can run the loop with its data in L1; a pass over
memory is bounded by bandwidth instead. LLVM 19's znver5 model schedules 512-bit operations
like Zen 4 (two 256-bit halves), so it is pessimistic for AVX-512 on Zen 5.
"""

import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (kernel symbol stem, elements per loop iteration, label)
KERNELS = [
    ("sums_f32_512", 256, "AVX-512 soft sums f32"),
    ("sums_f32_256", 128, "AVX2 soft sums f32"),
]


def dot_loop(width):
    """The baseline's inner loop: 8 accumulators, one load and one FMA with a memory operand
    per vector."""
    reg, step = ("zmm", 64) if width == 512 else ("ymm", 32)
    body = []
    for k in range(8):
        body.append(f"vmovups\t{step * k}(%rdi,%rax,4), %{reg}{16 + k}")
        body.append(f"vfmadd231ps\t{step * k}(%rsi,%rax,4), %{reg}{16 + k}, %{reg}{k}")
    per = 8 * step // 4
    body += [f"addq\t${per}, %rax", "cmpq\t%rdx, %rax", "jb\t.Ldot"]
    return ".Ldot:\n\t" + "\n\t".join(body) + "\n", per


def hottest_loops(asm):
    """{function symbol: [instruction lines of its hottest loop]} for the kernels."""
    lines = asm.split("\n")
    funcs, cur = {}, None
    for i, line in enumerate(lines):
        m = re.match(r"^(_ZN9dice_core7kernels3x86\d+(sums_f32_(?:512|256))17h\w+E):", line)
        if m:
            cur = m.group(1)
            funcs[cur] = [i, None, m.group(2)]
        elif cur and line.startswith(".Lfunc_end"):
            funcs[cur][1] = i
            cur = None
    out = {}
    for name, (a, b, stem) in funcs.items():
        body = lines[a:b]
        labels = {l.rstrip(":"): j for j, l in enumerate(body) if re.match(r"^\.LBB\w+:", l)}
        best = None
        for j, line in enumerate(body):
            m = re.match(r"\s+j\w+\s+(\.LBB\w+)", line)
            if m and m.group(1) in labels and labels[m.group(1)] < j:
                seg = body[labels[m.group(1)] : j + 1]
                score = sum(1 for x in seg if re.search(r"vfmadd|vaddps", x))
                if best is None or score > best[0]:
                    best = (score, seg)
        seg = drop_inner_loops(best[1])
        seg = [x for x in seg if not x.strip().startswith((".", "#"))]
        squared = sum(1 for x in seg if "vfmadd" in x) > 2 * sum(1 for x in seg if "vaddps" in x)
        out[name] = (stem, "squared" if squared else "linear", seg)
    return out


def drop_inner_loops(seg):
    """The outer loop without the loops nested in it (the cold search for a bad element,
    which runs only when a block fails validation) nor the straight-line code that only they
    reach (between an unconditional jump and the next label)."""
    labels = {l.rstrip(":"): j for j, l in enumerate(seg) if re.match(r"^\.LBB\w+:", l)}
    keep = [True] * len(seg)
    for j, line in enumerate(seg[:-1]):
        m = re.match(r"\s+j\w+\s+(\.LBB\w+)", line)
        if m and m.group(1) in labels and 0 < labels[m.group(1)] < j:
            for k in range(labels[m.group(1)], j + 1):
                keep[k] = False
    dead = False
    for j, line in enumerate(seg):
        if re.match(r"^\.LBB\w+:", line):
            dead = False
        elif dead:
            keep[j] = False
        if re.match(r"\s+(jmp|ret)\b", line):
            dead = True
    return [x for x, k in zip(seg, keep) if k]


def cycles(mca, cpu, text, iterations=400):
    with tempfile.NamedTemporaryFile("w", suffix=".s", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        r = subprocess.run(
            [mca, f"-mcpu={cpu}", f"-iterations={iterations}", path],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(path)
    m = re.search(r"Total Cycles:\s+(\d+)", r.stdout)
    return int(m.group(1)) / iterations


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--llvm-mca", default="llvm-mca-19")
    ap.add_argument("--cpus", default="znver5,sapphirerapids")
    args = ap.parse_args()
    subprocess.run(
        ["cargo", "rustc", "-q", "-p", "dice-core", "--release", "--features", "std", "--",
         "--emit", "asm", "-C", "codegen-units=1"],
        cwd=ROOT,
        check=True,
    )
    asm_files = sorted(
        glob.glob(os.path.join(ROOT, "target/release/deps/dice_core-*.s")), key=os.path.getmtime
    )
    asm = open(asm_files[-1]).read()
    loops = hottest_loops(asm)
    per_iter = {stem: n for stem, n, _ in KERNELS}
    label = {stem: l for stem, _, l in KERNELS}
    print("modelled cycles per 64 bytes of each input (16 f32 elements), data in L1")
    for cpu in args.cpus.split(","):
        for width in (512, 256):
            text, n = dot_loop(width)
            c = cycles(args.llvm_mca, cpu, text)
            print(f"  {cpu:15} dot product {'AVX-512' if width == 512 else 'AVX2':7}      "
                  f"{c / (n / 16):6.2f}")
        for name, (stem, form, seg) in sorted(loops.items(), key=lambda x: x[1][:2]):
            c = cycles(args.llvm_mca, cpu, "\n".join(seg) + "\n")
            print(f"  {cpu:15} {label[stem]:24} {form:8} {c / (per_iter[stem] / 16):6.2f}")


if __name__ == "__main__":
    sys.exit(main())
