#!/usr/bin/env python3
"""Writes dice-core/src/surfel_table.rs: the surface normals of the 256 neighbour codes of a
2x2x2 neighbourhood (marching cubes), as DeepMind's surface-distance ships them in
surface_distance/lookup_tables.py (Apache License 2.0, Copyright 2018 Google LLC).

    python dice-core/tests/golden/generate_surfel_table.py PATH/TO/surface-distance > dice-core/src/surfel_table.rs
"""
import sys

sys.path.insert(0, sys.argv[1])
from surface_distance import lookup_tables  # noqa: E402

normals = lookup_tables._NEIGHBOUR_CODE_TO_NORMALS
assert len(normals) == 256
print("//! The surface normals of the 256 codes of a 2×2×2 neighbourhood (marching cubes); the")
print("//! length of a normal is its triangle's area in voxel units. From DeepMind's surface-distance")
print("//! (`surface_distance/lookup_tables.py`, Apache License 2.0, Copyright 2018 Google LLC),")
print("//! written by `tests/golden/generate_surfel_table.py`; do not edit.")
print()
print("/// Normals per neighbour code (bit `7 − (4a + 2b + c)` set when the voxel at offset")
print("/// `(a, b, c)` of the neighbourhood is inside).")
print("#[rustfmt::skip]")
print("pub(crate) const NORMALS: [&[[f64; 3]]; 256] = [")
for code, ns in enumerate(normals):
    items = ", ".join("[" + ", ".join(repr(float(v)) for v in n) + "]" for n in ns)
    print(f"    &[{items}],")
print("];")
