# 32-bit ARM with hardware floating point (ARMv7 IoT boards, Raspberry Pi
# OS 32-bit) with Debian's gcc-arm-linux-gnueabihf and armhf multiarch
# libraries; 32-bit size_t:
#   cmake -S . -B build-armhf \
#     -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/arm-linux-gnueabihf.cmake
# scripts/cross-test.sh armhf installs what is needed and runs the tests.
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(FR_TRIPLET arm-linux-gnueabihf)
set(FR_QEMU qemu-arm)
include(${CMAKE_CURRENT_LIST_DIR}/debian-multiarch.cmake)
