# mutant: the registry of deliberate defects (include/shoal/peer/mutant.h) that the conformance
# suite's self-test switches on with `shoal serve --mutant NAME`. Built into every peer library so
# that hooks anywhere can ask isMutant(); with SHOAL_MUTANTS off isMutant() is a constant false.
add_library(shoal-mutant STATIC src/mutant/mutant.c++)
target_include_directories(shoal-mutant PUBLIC include)
if(SHOAL_MUTANTS)
  target_compile_definitions(shoal-mutant PUBLIC SHOAL_MUTANTS=1)
else()
  target_compile_definitions(shoal-mutant PUBLIC SHOAL_MUTANTS=0)
endif()
target_link_libraries(shoal-mutant PUBLIC CapnProto::kj)
