# control: the control API server (Cap'n Proto RPC over a Unix socket).
add_library(shoal-control STATIC
  src/control/control-replies.c++
  src/control/control-server.c++
)
target_include_directories(shoal-control PUBLIC include)
target_link_libraries(shoal-control PUBLIC shoal-runtime shoal-control-schema CapnProto::capnp-rpc)
