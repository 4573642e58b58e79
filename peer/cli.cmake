# cli: the `shoal` binary.
add_executable(shoal
  src/cli/client.c++
  src/cli/main.c++
  src/cli/serve.c++
)
target_link_libraries(shoal PRIVATE shoal-control CapnProto::capnp-json)
