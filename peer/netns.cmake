# netns: multi-host tests in network namespaces that each test creates and removes itself (CTest
# label `netns`; root only — elsewhere they exit 77 and CTest reports them skipped). The
# link-emulator stands in for netem where the kernel lacks it. See test/netns/README.md.
add_executable(link-emulator test/netns/link-emulator.c++)
target_link_libraries(link-emulator PRIVATE CapnProto::kj)

function(shoal_netns_test name script)
  add_test(NAME ${name}
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test/netns/${script} ${ARGN})
  set_tests_properties(${name} PROPERTIES LABELS netns SKIP_RETURN_CODE 77 TIMEOUT 120)
endfunction()

shoal_netns_test(netns-lossy-link lossy-link.sh $<TARGET_FILE:link-emulator>
  ${CMAKE_CURRENT_SOURCE_DIR}/test/netns/measure.py)
shoal_netns_test(netns-discovery-three discovery-three.sh $<TARGET_FILE:shoal>)
shoal_netns_test(netns-discovery-leave discovery-leave.sh $<TARGET_FILE:shoal>)
shoal_netns_test(netns-discovery-restart discovery-restart.sh $<TARGET_FILE:shoal>)
shoal_netns_test(netns-discovery-partition discovery-partition.sh $<TARGET_FILE:shoal>)
shoal_netns_test(netns-mdns mdns.sh $<TARGET_FILE:shoal>)
shoal_netns_test(netns-beacon-inputs beacon-inputs.sh $<TARGET_FILE:shoal> ${PROJECT_SOURCE_DIR}/schema)
shoal_netns_test(netns-discovery-interfaces discovery-interfaces.sh $<TARGET_FILE:shoal>
  ${CMAKE_CURRENT_SOURCE_DIR}/test/netns/beacon-tool.py)
shoal_netns_test(netns-discovery-ipv6 discovery-ipv6.sh $<TARGET_FILE:shoal>)
# A download across the lossy link between peers found by beacon, then a partition mid-download:
# 32 MiB in ./dev test, the issue's 256 MiB under label soak (by hand: ctest -L soak).
shoal_netns_test(netns-download-lossy download-lossy.sh $<TARGET_FILE:shoal>
  $<TARGET_FILE:link-emulator> ${CMAKE_CURRENT_SOURCE_DIR}/test/netns/measure.py 32)
shoal_netns_test(netns-download-lossy-256 download-lossy.sh $<TARGET_FILE:shoal>
  $<TARGET_FILE:link-emulator> ${CMAKE_CURRENT_SOURCE_DIR}/test/netns/measure.py 256)
set_tests_properties(netns-download-lossy PROPERTIES TIMEOUT 300)
set_tests_properties(netns-download-lossy-256 PROPERTIES LABELS "netns;soak" TIMEOUT 1800)
