# runtime: Supervisor, Runtime (services, peer table, serving), RuntimeHandle, events.
add_library(shoal-runtime STATIC
  src/runtime/admission.c++
  src/runtime/chunk-readers.c++
  src/runtime/config.c++
  src/runtime/connections.c++
  src/runtime/discovery-service.c++
  src/runtime/download-service.c++
  src/runtime/downloads.c++
  src/runtime/duplicates.c++
  src/runtime/event-bus.c++
  src/runtime/peer-table.c++
  src/runtime/redial-backoff.c++
  src/runtime/request-server.c++
  src/runtime/runtime.c++
  src/runtime/runtime-handle.c++
  src/runtime/services.c++
  src/runtime/supervisor.c++
  src/runtime/upload-limit.c++
)
target_include_directories(shoal-runtime PUBLIC include)
target_link_libraries(shoal-runtime PUBLIC shoal-download shoal-session shoal-library shoal-transport
  shoal-discovery shoal-control-schema
  CapnProto::kj-async)

shoal_test(runtime-test unit
  SOURCES
    test/runtime/admission-test.c++
    test/runtime/duplicates-test.c++
    test/runtime/event-bus-test.c++
    test/runtime/peer-table-test.c++
    test/runtime/redial-backoff-test.c++
    test/runtime/report-throttle-test.c++
    test/runtime/supervisor-test.c++
    test/runtime/upload-limit-test.c++
    test/runtime/request-server-test.c++
    test/runtime/request-server-stale-test.c++
    test/runtime/chunk-readers-test.c++
  LIBS shoal-runtime)

shoal_test(runtime-integration-test unit
  SOURCES
    test/runtime/runtime-test.c++
    test/runtime/wire-test.c++
    test/runtime/control-stop-test.c++
  LIBS shoal-runtime shoal-control shoal-conformance-engine)
