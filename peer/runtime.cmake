# runtime: Supervisor, Runtime (services, peer table, serving), RuntimeHandle, events.
add_library(shoal-runtime STATIC
  src/runtime/supervisor.c++
)
target_include_directories(shoal-runtime PUBLIC include)
target_link_libraries(shoal-runtime PUBLIC shoal-session CapnProto::kj-async)

shoal_test(runtime-test unit
  SOURCES test/runtime/supervisor-test.c++
  LIBS shoal-runtime)
