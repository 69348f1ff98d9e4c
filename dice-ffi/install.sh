#!/usr/bin/env bash
# Installs the dice C library into a prefix, laid out for C and C++ users:
#   PREFIX/include/dice.h, dice.hpp
#   PREFIX/lib/libdice.so.X.Y.Z (SONAME libdice.so.X, or libdice.so.0.Y before 1.0),
#              that SONAME's link, libdice.so, libdice.a
#   PREFIX/lib/pkgconfig/dice.pc                    (pkg-config --cflags --libs dice)
#   PREFIX/lib/cmake/dice/diceConfig.cmake ...      (find_package(dice) -> dice::dice, dice::dice_static)
#
# Usage: dice-ffi/install.sh PREFIX            builds the release libraries first
#        dice-ffi/install.sh PREFIX --from DIR  installs libdice.so / libdice.a already built in DIR
set -euo pipefail
prefix=${1:?usage: install.sh PREFIX [--from DIR]}
here=$(cd "$(dirname "$0")" && pwd)
manifest="$here/../Cargo.toml"

version=$(cargo metadata --manifest-path "$manifest" --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "dice-ffi"))')
major=${version%%.*}
# The SONAME's version: the compatibility line (build.rs): MAJOR, or 0.MINOR before 1.0.
if [ "$major" = 0 ]; then
  minor=${version#0.}
  line=0.${minor%%.*}
else
  line=$major
fi

if [ "${2:-}" = "--from" ]; then
  libs=${3:?--from needs a directory}
else
  cargo build --release --manifest-path "$manifest" -p dice-ffi --lib
  target_dir=$(cargo metadata --manifest-path "$manifest" --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  libs="$target_dir/release"
fi

mkdir -p "$prefix/include" "$prefix/lib/pkgconfig" "$prefix/lib/cmake/dice"
prefix=$(cd "$prefix" && pwd)
install -m 644 "$here/include/dice.h" "$here/include/dice.hpp" "$prefix/include/"
install -m 644 "$libs/libdice.a" "$prefix/lib/libdice.a"
install -m 755 "$libs/libdice.so" "$prefix/lib/libdice.so.$version"
ln -sfn "libdice.so.$version" "$prefix/lib/libdice.so.$line"
ln -sfn "libdice.so.$line" "$prefix/lib/libdice.so"

subst() {
  sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" -e "s|@MAJOR@|$major|g" \
    -e "s|@SONAME@|libdice.so.$line|g" "$1" > "$2"
}
subst "$here/packaging/dice.pc.in" "$prefix/lib/pkgconfig/dice.pc"
subst "$here/packaging/diceConfig.cmake.in" "$prefix/lib/cmake/dice/diceConfig.cmake"
subst "$here/packaging/diceConfigVersion.cmake.in" "$prefix/lib/cmake/dice/diceConfigVersion.cmake"
echo "installed dice $version into $prefix"
