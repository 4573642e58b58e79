# runtime: Supervisor, Runtime (services, peer table, serving), RuntimeHandle, events.
add_library(shoal-runtime STATIC
  src/runtime/duplicates.c++
  src/runtime/event-bus.c++
  src/runtime/peer-table.c++
  src/runtime/supervisor.c++
)
target_include_directories(shoal-runtime PUBLIC include)
target_link_libraries(shoal-runtime PUBLIC shoal-session shoal-control-schema CapnProto::kj-async)

shoal_test(runtime-test unit
  SOURCES
    test/runtime/duplicates-test.c++
    test/runtime/event-bus-test.c++
    test/runtime/peer-table-test.c++
    test/runtime/supervisor-test.c++
  LIBS shoal-runtime)
