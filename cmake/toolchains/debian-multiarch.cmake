# Shared body of the Debian cross toolchain files: the including file sets
# FR_TRIPLET (the GNU triplet, which is also Debian's multiarch directory),
# FR_QEMU (the qemu-user binary) and CMAKE_SYSTEM_PROCESSOR.
#
# Compiler: Debian's gcc-<triplet> cross compiler, which already searches
# the multiarch directories (/usr/include/<triplet>, /usr/lib/<triplet>)
# where `dpkg --add-architecture` + `apt-get install libfoo-dev:<arch>` put
# the target's libraries. pkg-config is pointed at those .pc files only, so
# no host (amd64) library can leak into the link.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER ${FR_TRIPLET}-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE ${FR_TRIPLET})
find_program(FR_CROSS_PKG_CONFIG ${FR_TRIPLET}-pkg-config)
if(FR_CROSS_PKG_CONFIG)
  set(PKG_CONFIG_EXECUTABLE ${FR_CROSS_PKG_CONFIG} CACHE FILEPATH "" FORCE)
endif()
set(ENV{PKG_CONFIG_LIBDIR}
  "/usr/lib/${FR_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# Find the target's packages (nng's CMake config, libraries, headers) in
# the multiarch tree; build tools come from the host.
set(CMAKE_FIND_ROOT_PATH /usr/${FR_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# Target programs (tests, try_run) run under user-mode emulation. No -L:
# the multiarch libc6:<arch> (a dependency of the -dev packages) puts the
# target's loader at its usual path (/lib/ld-linux-*.so.*) and its libraries
# in /usr/lib/<triplet>. With -L /usr/<triplet> (the cross toolchain's own
# glibc copy) qemu 7.2 hangs in fork().
find_program(FR_QEMU_BIN ${FR_QEMU})
if(FR_QEMU_BIN)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${FR_QEMU_BIN})
endif()
