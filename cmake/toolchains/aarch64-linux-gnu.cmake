# 64-bit ARM (Linux phones, Raspberry Pi OS 64-bit, ARM servers) with
# Debian's gcc-aarch64-linux-gnu and arm64 multiarch libraries:
#   cmake -S . -B build-aarch64 \
#     -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
# scripts/cross-test.sh aarch64 installs what is needed and runs the tests.
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(FR_TRIPLET aarch64-linux-gnu)
set(FR_QEMU qemu-aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/debian-multiarch.cmake)
