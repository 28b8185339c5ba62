# cmake/arm64-linux-gnu.cmake: cross toolchain for Debian arm64 (multiarch).
# Used by scripts/arm64.sh (make test-arm64): gcc-aarch64-linux-gnu compiles,
# the :arm64 libraries in /usr/lib/aarch64-linux-gnu link, and qemu-user
# runs each test binary (CTest prefixes every test command with the
# emulator). pkg-config is pointed at the arm64 .pc files by the script.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# The arm64 loader and libc are installed (libc6:arm64), so no -L is needed.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
