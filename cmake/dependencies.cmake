# Every dependency comes from a Debian package installed by scripts/setup.sh.
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv)
find_package(OpenSSL 3.0 REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(prometheus-cpp CONFIG REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(ZLIB REQUIRED)
find_package(Threads REQUIRED)

# Debian's node-llhttp ships the generated C sources rather than a library.
set(LLHTTP_SOURCE_DIR /usr/share/llhttp CACHE PATH "llhttp C sources")
set(LLHTTP_INCLUDE_DIR /usr/share/include/llhttp CACHE PATH "llhttp header")
add_library(llhttp STATIC
  ${LLHTTP_SOURCE_DIR}/api.c ${LLHTTP_SOURCE_DIR}/http.c ${LLHTTP_SOURCE_DIR}/llhttp.c)
target_include_directories(llhttp SYSTEM PUBLIC ${LLHTTP_INCLUDE_DIR})
set_target_properties(llhttp PROPERTIES POSITION_INDEPENDENT_CODE ON C_STANDARD 99)
target_compile_options(llhttp PRIVATE -w)
# Strict mode: CRLF after chunk data, LF after CR, no TAB/FF/8-bit bytes in request targets.
# The loose build skips any two bytes after a chunk ("5\r\nhelloXX0\r\n\r\n" parses).
target_compile_definitions(llhttp PRIVATE LLHTTP_STRICT_MODE=1)

find_library(BROTLIDEC_LIBRARY brotlidec REQUIRED)
find_path(BROTLI_INCLUDE_DIR brotli/decode.h REQUIRED)
add_library(brotli::dec UNKNOWN IMPORTED)
set_target_properties(brotli::dec PROPERTIES
  IMPORTED_LOCATION ${BROTLIDEC_LIBRARY} INTERFACE_INCLUDE_DIRECTORIES ${BROTLI_INCLUDE_DIR})
