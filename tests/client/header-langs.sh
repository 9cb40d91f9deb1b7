#!/bin/sh
# The installed client header from other languages: a C++ program
# (client/examples/offline.cpp, -std=c++11 -pedantic -Werror) builds against
# the installed static library through pkg-config and runs; the installed
# Clang module map (what Swift imports) builds module FedrecClient, found
# from PREFIX/include alone, for C and Objective-C.
# Usage: header-langs.sh BUILD_DIR SOURCE_DIR [EXTRA_CFLAGS]
set -eu
build=$1 src=$2 san=${3:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cmake --install "$build" --prefix "$work/prefix" >/dev/null
pc=$(dirname "$(find "$work/prefix" -name fedrec-client.pc | head -n1)")
[ -n "$pc" ] || fail "fedrec-client.pc not installed"
flags=$(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs --static fedrec-client)
command -v c++ >/dev/null || fail "no C++ compiler (build-essential)"
# shellcheck disable=SC2086
c++ -std=c++11 -Wall -Wextra -pedantic -Werror $san -o "$work/offline" \
    "$src/client/examples/offline.cpp" $flags || fail "C++ build"
out=$("$work/offline") || fail "C++ example exited $?: $out"
echo "$out"
echo "$out" | grep -q "no model yet (FR_ESTATE" || fail "C++: no FR_ESTATE"
echo "$out" | grep -q "refused: FR_EINVAL" || fail "C++: no FR_EINVAL"

command -v clang >/dev/null || fail "no clang (scripts/install-deps.sh installs it)"
inc=$work/prefix/include
[ -f "$inc/fedrec/module.modulemap" ] || fail "module.modulemap not installed"
printf '@import FedrecClient;\nint main(void) { return fr_client_count(0) != 0; }\n' >"$work/m.m"
printf '#include <fedrec/client.h>\nint main(void) { fr_client_config c; fr_client_config_init(&c); return c.max_k == 0; }\n' >"$work/c.c"
for f in m.m c.c; do
    log=$(clang -fmodules -fmodules-cache-path="$work/mc" -fsyntax-only \
        -Rmodule-import -I "$inc" "$work/$f" 2>&1) || fail "module build ($f): $log"
    echo "$log" | grep -q "importing module 'FedrecClient'" ||
        fail "$f did not import module FedrecClient: $log"
done
echo "module FedrecClient: imported by C and Objective-C"
