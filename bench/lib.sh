# Sourced by the benchmark scripts (POSIX sh): the repository root, the
# MovieLens 100K folder ($FR_DATA_DIR, default ../shared/data/ml-100k next
# to the checkout) and the build folder ($FR_BUILD_DIR, default build,
# relative to the root), and two helpers. The caller sets bench_name.
root=$(cd "$(dirname "$0")/.." && pwd)
data=${FR_DATA_DIR:-$root/../shared/data/ml-100k}
build=${FR_BUILD_DIR:-$root/build}
case $build in /*) ;; *) build=$root/$build ;; esac

# bench_tool NAME: the path of build/bin/NAME, built first if missing.
bench_tool() {
    if [ ! -x "$build/bin/$1" ]; then
        cmake --build "$build" --target "$1" -j2 >/dev/null || return 1
    fi
    echo "$build/bin/$1"
}

# bench_need_ml100k: exits 1 with a message naming FR_DATA_DIR when the
# data set is not there.
bench_need_ml100k() {
    if [ ! -r "$data/u1.base" ]; then
        echo "$bench_name: MovieLens 100K not found in $data (set FR_DATA_DIR)" >&2
        exit 1
    fi
}
